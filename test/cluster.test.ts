import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { RedisClient } from 'bun';
import { Client, eventually, type Json, loggedIn, spawnServer, type SpawnedServer, startCluster, type TestServer } from './helpers.ts';
import { TcpProxy } from './proxy.ts';
import { freePort, haveRedis, type RedisProcess, requireRedis, startRedis } from './redis.ts';

/**
 * Several nodes, one namespace, through a real redis-server on a free loopback port. The
 * integration suite also runs whole against a two-node cluster (SIGNALBOX_TARGET=cluster);
 * this file covers what only a cluster has: nodes dying, Redis restarting, shared ports.
 */
const run = requireRedis('the cluster tests');
const SRC = `${import.meta.dir}/../src/main.ts`;

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;
const cand = (i: number) => ({ candidate: `candidate:${i} 1 udp 2122260223 10.0.0.1 ${9000 + i} typ host`, sdpMid: '0' });

describe.skipIf(!run)('two nodes, in this process', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startCluster({ maxConnectionsPerIp: 0 });
  });
  afterAll(() => srv.stop());

  test('A on node 1 calls B on node 2 through the whole conversation', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    const nodes = await Promise.all([a, b].map(async (c) => c));
    expect(nodes.length).toBe(2);
    a.send({ type: 'offer', name: bn, offer: { type: 'offer', sdp: 'v=0' } });
    expect(await b.next()).toEqual({ type: 'offer', offer: { type: 'offer', sdp: 'v=0' }, name: an });
    b.send({ type: 'answer', name: an, answer: { type: 'answer', sdp: 'v=0' } });
    expect(await a.next()).toEqual({ type: 'answer', answer: { type: 'answer', sdp: 'v=0' }, name: bn });
    for (let i = 0; i < 50; i++) {
      a.send({ type: 'candidate', name: bn, candidate: cand(i) });
      b.send({ type: 'candidate', name: an, candidate: cand(100 + i) });
    }
    for (let i = 0; i < 50; i++) {
      expect(await b.next()).toEqual({ type: 'candidate', candidate: cand(i), name: an });
      expect(await a.next()).toEqual({ type: 'candidate', candidate: cand(100 + i), name: bn });
    }
    // The routing rules hold across nodes: a third user is refused, nothing reaches the call.
    const [m] = (await loggedIn(srv.url, uniq('mallory'))) as [Client];
    m.send({ type: 'candidate', name: an, candidate: 'evil' });
    expect(await m.next()).toMatchObject({ code: 'not_in_call' });
    m.send({ type: 'offer', name: bn, offer: 'evil' });
    expect(await m.next()).toMatchObject({ code: 'busy' });
    a.send({ type: 'leave', name: bn });
    expect(await b.next()).toEqual({ type: 'leave', name: an });
    await Promise.all([a.quiet(100), b.quiet(0)]);
    // Calls end on close across nodes too.
    b.send({ type: 'offer', name: an, offer: 'again' });
    await a.next();
    await b.close();
    expect(await a.next()).toEqual({ type: 'leave', name: bn });
    for (const c of [a, m]) c.close();
  });

  test('each client really landed on a different node', async () => {
    const urls = [srv.url, srv.url];
    expect(urls[0]).not.toBe(urls[1]);
    const healths = await Promise.all(urls.map(async (u) => (await (await fetch(u.replace('ws', 'http') + 'healthz')).json()) as Json));
    expect(healths[0]!.node).not.toBe(healths[1]!.node);
  });

  test('a name taken on one node cannot be taken on the other, even at the same moment', async () => {
    for (let round = 0; round < 10; round++) {
      const name = uniq('contested');
      const [x, y] = await Promise.all([Client.connect(srv.url), Client.connect(srv.url)]);
      x.send({ type: 'login', name });
      y.send({ type: 'login', name });
      const replies = await Promise.all([x.next(), y.next()]);
      expect(replies.filter((r) => r.success === true)).toHaveLength(1);
      expect(replies.filter((r) => r.success === false && r.reason === 'name_taken')).toHaveLength(1);
      x.close();
      y.close();
    }
  });

  test('a user offline everywhere is user_not_found, from either node', async () => {
    const [a] = (await loggedIn(srv.url, uniq('a'))) as [Client];
    a.send({ type: 'offer', name: 'nobody-anywhere', offer: 'sdp' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'user_not_found', name: 'nobody-anywhere', request: 'offer' });
    a.close();
  });
});

/** Poll an async condition (every 50 ms) until it holds. */
async function until(check: () => Promise<boolean>, ms: number, what: string) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms} ms`);
    await Bun.sleep(50);
  }
}

/** Log in as `name` at `url`, retrying while the name is taken; the client once it succeeds. */
async function loginWhenFree(url: string, name: string, ms: number): Promise<Client> {
  const deadline = Date.now() + ms;
  for (;;) {
    const c = await Client.connect(url);
    c.send({ type: 'login', name });
    const reply = await c.next();
    if (reply.success === true) return c;
    c.close();
    if (reply.reason !== 'name_taken' || Date.now() > deadline) throw new Error(`login as ${name}: ${JSON.stringify(reply)}`);
    await Bun.sleep(50);
  }
}

/** A signalbox process of its own (so it can be killed), on a cluster. */
function node(redis: RedisProcess, prefix: string, extra: string[] = []): Promise<SpawnedServer> {
  return spawnServer([process.execPath, SRC, '--host', '127.0.0.1', '--port', '0', '--redis', redis.url, '--redis-prefix', prefix, '--max-connections-per-ip', '0', ...extra]);
}

describe.skipIf(!run)('nodes as processes', () => {
  let redis: RedisProcess;
  beforeAll(async () => {
    redis = await startRedis();
  });
  afterAll(() => redis?.stop());

  test('killing node 2 with SIGKILL gets A a leave within the configured bound', async () => {
    const ttl = 1000;
    const prefix = `kill${process.pid}:`;
    const [n1, n2] = await Promise.all([node(redis, prefix, ['--presence-ttl-ms', String(ttl)]), node(redis, prefix, ['--presence-ttl-ms', String(ttl)])]);
    const [a] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'alice')) as [Client];
    const [b] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'bob')) as [Client];
    // A 1:1 call (an offer before they share a room, so it links them), then a room.
    a.send({ type: 'offer', name: 'bob', offer: 'sdp' });
    await b.nextOfType('offer');
    const room = 'standup';
    a.send({ type: 'join', room });
    await a.nextOfType('joined');
    b.send({ type: 'join', room });
    await b.nextOfType('joined');
    expect(await a.next()).toEqual({ type: 'peer-joined', room, name: 'bob' });
    const t0 = Date.now();
    n2.proc.kill('SIGKILL');
    const leave = await a.next((m) => m.type === 'leave', 5000);
    expect(leave).toEqual({ type: 'leave', name: 'bob' });
    // Bound: the name's TTL plus one check interval (half the TTL), plus slack for a busy machine.
    expect(Date.now() - t0).toBeLessThan(ttl * 1.5 + 1000);
    expect(await a.next((m) => m.type === 'peer-left', 3000)).toEqual({ type: 'peer-left', room, name: 'bob' });
    // The name is free again, on the surviving node.
    const [b2] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'bob')) as [Client];
    a.close();
    b2!.close();
    await n1.stop();
  }, 20_000);

  test('Redis restarts mid-call: unavailable while it is down, nothing lost or doubled once it is back', async () => {
    const prefix = `restart${process.pid}:`;
    const [n1, n2] = await Promise.all([node(redis, prefix), node(redis, prefix)]);
    const [a] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'alice')) as [Client];
    const [b] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'bob')) as [Client];
    a.send({ type: 'offer', name: 'bob', offer: 'sdp' });
    await b.nextOfType('offer');

    await redis.stop();
    // Down: a message to the other node gets a clear error; the connections stay open.
    a.send({ type: 'candidate', name: 'bob', candidate: cand(0) });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'unavailable', name: 'bob', request: 'candidate' });
    const late = await Client.connect(`ws://127.0.0.1:${n1.port}/`);
    late.send({ type: 'login', name: 'carol' });
    expect(await late.next()).toMatchObject({ type: 'login', success: false, reason: 'unavailable' });
    expect(a.ws.readyState).toBe(WebSocket.OPEN);
    expect(b.ws.readyState).toBe(WebSocket.OPEN);

    await redis.restart(0);
    // Once back (the first message that arrives says so), every later one arrives once, in order.
    const sent: number[] = [];
    let first = -1;
    for (let i = 1; i <= 300 && first === -1; i++) {
      a.send({ type: 'candidate', name: 'bob', candidate: cand(i) });
      sent.push(i);
      await Bun.sleep(20);
      const got = b.received.find((m) => m.type === 'candidate');
      if (got) first = Number(/candidate:(\d+)/.exec(got.candidate.candidate)![1]);
    }
    expect(first).toBeGreaterThan(0);
    for (let i = 1000; i < 1100; i++) a.send({ type: 'candidate', name: 'bob', candidate: cand(i) });
    b.send({ type: 'candidate', name: 'alice', candidate: cand(5000) });
    await b.waitFor(100, 10_000);
    await Bun.sleep(200);
    const numbers = b.received.filter((m) => m.type === 'candidate').map((m) => Number(/candidate:(\d+)/.exec(m.candidate.candidate)![1]));
    const after = numbers.filter((n) => n >= 1000);
    expect(after).toEqual(Array.from({ length: 100 }, (_, i) => 1000 + i));
    expect(new Set(numbers).size).toBe(numbers.length); // nothing twice
    // The call continues both ways; errors were only ever `unavailable`/`user_not_found` before it was back.
    expect(await a.next((m) => m.type === 'candidate', 5000)).toEqual({ type: 'candidate', candidate: cand(5000), name: 'bob' });
    expect(a.received.filter((m) => m.type === 'error').every((m) => ['unavailable', 'user_not_found'].includes(m.code))).toBe(true);
    // New logins work again.
    const [c] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'carol')) as [Client];
    for (const x of [a, b, c, late]) x.close();
    await Promise.all([n1.stop(), n2.stop()]);
  }, 30_000);

  test('a node that lost its lease asserts all its names, in batches: one another live node took is evicted, only that one', async () => {
    // More users than one refresh call carries (500), so the answer's positions cross batches.
    // A lease renewal every 500 ms: a node starved for a second (a busy CI machine) keeps its lease.
    const ttl = 1500;
    const prefix = `refresh${process.pid}:`;
    const n1 = await node(redis, prefix, ['--presence-ttl-ms', String(ttl), '--node-id', 'n1']);
    const url = `ws://127.0.0.1:${n1.port}/`;
    const names = Array.from({ length: 520 }, (_, i) => `r${i}`);
    const clients = await loggedIn(url, ...names);
    const store = new RedisClient(redis.url);
    const key = (n: string) => `${prefix}user:${n}`;
    // n1's holder id is its node id and a suffix per process; its lease is one key.
    const leases = (await store.send('KEYS', [`${prefix}node:n1.*`])) as string[];
    expect(leases).toHaveLength(1);
    const holder = leases[0]!.slice(`${prefix}node:`.length);
    expect(await store.get(key('r3'))).toBe(holder);
    // Another live node (its lease is there) holds these names now, as after n1 was cut off
    // from Redis for a whole TTL and someone claimed them; a dead node (no lease) holds r7.
    await store.send('SET', [`${prefix}node:n2.x`, '1', 'PX', '60000']);
    const stolen = [0, 250, 501, 519];
    for (const i of stolen) await store.set(key(names[i]!), 'n2.x');
    await store.set(key('r7'), 'n3.dead');
    // n1 finds its lease gone at its next renewal and asserts every name.
    await store.del(leases[0]!);
    const closes = await Promise.all(stolen.map((i) => Promise.race([clients[i]!.closed, Bun.sleep(5000).then(() => null)])));
    expect(closes.map((c) => c?.code)).toEqual(stolen.map(() => 4003));
    // Everyone else is still here, past several TTLs, and holds the name (r7 taken back from the dead node).
    await Bun.sleep(ttl * 2);
    expect(await store.exists(leases[0]!)).toBe(true);
    const held = (await store.send('MGET', names.map(key))) as Array<string | null>;
    names.forEach((n, i) => {
      if (stolen.includes(i)) expect(held[i]).toBe('n2.x');
      else {
        expect(held[i]).toBe(holder);
        expect(clients[i]!.ws.readyState).toBe(WebSocket.OPEN);
      }
    });
    // A name whose session ended is not claimed again by a refresh under way.
    clients[1]!.close();
    await eventually(() => clients[1]!.ws.readyState === WebSocket.CLOSED, 2000, 'r1 closed');
    await Bun.sleep(ttl);
    expect(await store.get(key('r1'))).toBeNull();
    for (const c of clients) c.close();
    store.close();
    await n1.stop();
  }, 30_000);

  test('presence costs one lease command per node per tick, not one per user', async () => {
    // Its own redis-server, so that nothing else's commands are counted.
    const own = await startRedis();
    const ttl = 600; // a lease renewal every 200 ms
    const n1 = await node(own, 'cost:', ['--presence-ttl-ms', String(ttl)]);
    const users = 300;
    const clients = await loggedIn(`ws://127.0.0.1:${n1.port}/`, ...Array.from({ length: users }, (_, i) => `c${i}`));
    const store = new RedisClient(own.url);
    const stats = async () => {
      const calls = new Map<string, number>();
      for (const m of ((await store.send('INFO', ['commandstats'])) as string).matchAll(/cmdstat_([\w|]+):calls=(\d+)/g)) calls.set(m[1]!, Number(m[2]));
      return calls;
    };
    const windowMs = 3000;
    const before = await stats();
    await Bun.sleep(windowMs);
    const after = await stats();
    const delta = (c: string) => (after.get(c) ?? 0) - (before.get(c) ?? 0);
    const total = [...after.keys()].filter((c) => c !== 'info').reduce((n, c) => n + delta(c), 0);
    // One SET per tick (15 in the window), and nothing per user: a TTL per name refreshed
    // every tick would cost a GET and a PEXPIRE per user per tick (9,000 here). The names'
    // own long TTL may be extended once in the window (two commands per user), and once
    // more if a starved node let its lease lapse; no more.
    expect(total).toBeLessThan(6 * users);
    expect(delta('set')).toBeGreaterThanOrEqual(3);
    expect(delta('set')).toBeLessThanOrEqual(windowMs / (ttl / 3) + 3);
    for (const c of clients) c.close();
    store.close();
    await n1.stop();
    await own.stop();
  }, 30_000);

  test('a SIGKILLed node: its names are dead once its lease is, and claimable at once although their keys remain', async () => {
    const ttl = 1000;
    const prefix = `lease${process.pid}:`;
    const args = ['--presence-ttl-ms', String(ttl), '--discovery'];
    const [n1, n2] = await Promise.all([node(redis, prefix, [...args, '--node-id', 'm1']), node(redis, prefix, [...args, '--node-id', 'm2'])]);
    const [b] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'bob')) as [Client];
    const store = new RedisClient(redis.url);
    const users = async () => ((await (await fetch(`http://127.0.0.1:${n1.port}/users`)).json()) as { users: string[] }).users;
    expect(await users()).toContain('bob');
    const [lease] = (await store.send('KEYS', [`${prefix}node:m2.*`])) as string[];
    const t0 = Date.now();
    n2.proc.kill('SIGKILL');
    await until(async () => !(await store.exists(lease!)), ttl * 2, 'the dead node’s lease expired');
    expect(Date.now() - t0).toBeLessThan(ttl + 1000);
    // bob's name key outlives the lease (it is bounded by a much longer TTL), yet bob is
    // not listed, and the name is taken on the surviving node at the first try.
    expect(await store.get(`${prefix}user:bob`)).toBe(lease!.slice(`${prefix}node:`.length));
    expect(await users()).not.toContain('bob');
    const [b2] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'bob')) as [Client];
    expect(await users()).toContain('bob');
    // A node restarted under the same --node-id does not bring its predecessor's names back:
    // carol's name is free again once the old process's lease is gone, not 30 TTLs later.
    const [c] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'carol')) as [Client];
    n1.proc.kill('SIGKILL');
    const t1 = Date.now();
    const n3 = await node(redis, prefix, [...args, '--node-id', 'm1']);
    const c2 = await loginWhenFree(`ws://127.0.0.1:${n3.port}/`, 'carol', ttl * 5);
    // Within the old lease's TTL plus the new process's start, not 30 TTLs.
    expect(Date.now() - t1).toBeLessThan(ttl * 2 + 2000);
    for (const x of [b, b2, c, c2]) x.close();
    store.close();
    await n3.stop();
  }, 20_000);

  test('a session that ends while its node is cut off from Redis is released when it is back: the partner hears leave, the name is free', async () => {
    // Shorter than the lease: node 1 stays alive for everyone, so only the owed release
    // can tell bob that alice is gone (her leave could not be published during the cut).
    const ttl = 3000;
    const prefix = `cut${process.pid}:`;
    const args = ['--presence-ttl-ms', String(ttl)];
    const proxy = await TcpProxy.start(redis.url);
    const n1 = await spawnServer([process.execPath, SRC, '--host', '127.0.0.1', '--port', '0', '--redis', `redis://${new URL(proxy.url).host}`, '--redis-prefix', prefix, '--max-connections-per-ip', '0', ...args]);
    const n2 = await node(redis, prefix, args);
    const [a] = (await loggedIn(`ws://127.0.0.1:${n1.port}/`, 'alice')) as [Client];
    const [b] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'bob')) as [Client];
    a.send({ type: 'offer', name: 'bob', offer: 'sdp' });
    await b.nextOfType('offer');
    proxy.down();
    await Bun.sleep(100);
    a.close();
    await Bun.sleep(300);
    proxy.up();
    const t0 = Date.now();
    expect(await b.next((m) => m.type === 'leave', ttl * 3)).toEqual({ type: 'leave', name: 'alice' });
    // Node 1's reconnect, then one peer check on node 2 (half the TTL), with slack.
    expect(Date.now() - t0).toBeLessThan(ttl + 2000);
    const [a2] = (await loggedIn(`ws://127.0.0.1:${n2.port}/`, 'alice')) as [Client];
    for (const x of [a2, b]) x.close();
    await Promise.all([n1.stop(), n2.stop()]);
    await proxy.close();
  }, 30_000);

  test('--workers 2: two processes on one port share the namespace', async () => {
    const port = await freePort();
    const prefix = `workers${process.pid}:`;
    const sup = await spawnServer([process.execPath, SRC, '--host', '127.0.0.1', '--port', String(port), '--workers', '2', '--redis', redis.url, '--redis-prefix', prefix, '--max-connections-per-ip', '0']);
    const url = `ws://127.0.0.1:${port}/`;
    // Both workers answer (the kernel spreads connections over them).
    const nodes = new Set<string>();
    await eventually(
      () => {
        void fetch(`http://127.0.0.1:${port}/healthz`, { headers: { connection: 'close' } })
          .then((r) => r.json())
          .then((h) => nodes.add((h as Json).node))
          .catch(() => {});
        return nodes.size === 2;
      },
      10_000,
      'both workers answering',
    );
    // Users spread over both processes call each other.
    const names = Array.from({ length: 20 }, (_, i) => `w${i}`);
    const clients = await loggedIn(url, ...names);
    for (let i = 0; i < 10; i++) clients[2 * i]!.send({ type: 'offer', name: names[2 * i + 1], offer: `o${i}` });
    for (let i = 0; i < 10; i++) expect(await clients[2 * i + 1]!.next()).toEqual({ type: 'offer', offer: `o${i}`, name: names[2 * i] });
    for (const c of clients) c.close();
    await sup.stop();
  }, 30_000);
});

if (!haveRedis) test.skip('cluster tests skipped: no redis-server', () => {});
