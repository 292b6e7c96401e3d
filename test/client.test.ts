import { afterAll, beforeAll, describe, expect, expectTypeOf, test } from 'bun:test';
import { rmSync } from 'node:fs';
import { backoffDelay, type ClientEvents, type ClientOptions, createClient, type SignalboxClient, SignalboxError } from 'signalbox/client';
import { Client, eventually, startServer, type TestServer, target } from './helpers.ts';
import { TcpProxy } from './proxy.ts';

/** The typed client (`signalbox/client`) against a real server, over real sockets. */

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ maxConnectionsPerIp: 0, graceMs: 5000, roomSize: 4, discovery: true });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;
const open: SignalboxClient[] = [];
afterAll(async () => {
  await Promise.all(open.map((c) => c.close()));
});

const fast: ClientOptions = { backoff: { initialMs: 20, maxMs: 100 } };

/** A logged-in client, and every event it receives, in order. */
async function online(name: string, url = srv.url, options: ClientOptions = fast) {
  const client = createClient(url, options);
  open.push(client);
  const events: Array<{ type: keyof ClientEvents; event: any }> = [];
  for (const type of ['message', 'close', 'reconnecting', 'reconnected', 'state'] as const) {
    client.on(type, (event) => events.push({ type, event }));
  }
  await client.login(name);
  const messages = () => events.filter((e) => e.type === 'message').map((e) => e.event);
  return { client, events, messages };
}

const sdp = (type: 'offer' | 'answer', n = 0) => ({ type, sdp: `v=0 ${n}` });
const ice = (n: number) => ({ candidate: `candidate:${n} 1 udp 1 127.0.0.1 ${5000 + n} typ host`, sdpMid: '0', sdpMLineIndex: 0 });

describe('signalbox/client', () => {
  test('a two-party call: offer, answer, candidates both ways, hang up, all as typed events', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const { client: alice, messages: toAlice } = await online(an);
    const { client: bob, messages: toBob } = await online(bn);
    expect(alice.state).toBe('online');
    expect(alice.name).toBe(an);

    // Bob answers whatever calls him, and sends a candidate back: the app's side of a call.
    bob.on('offer', ({ name, offer }) => {
      bob.answer(name, sdp('answer'));
      bob.candidate(name, ice(100));
      expect(offer).toEqual(sdp('offer'));
    });
    const answered = alice.once('answer');
    alice.call(bn, sdp('offer'));
    expect(await answered).toEqual({ type: 'answer', answer: sdp('answer'), name: bn });
    for (let i = 0; i < 3; i++) alice.candidate(bn, ice(i));
    alice.candidate(bn, null);
    await eventually(() => toBob().filter((m) => m.type === 'candidate').length === 4);
    await eventually(() => toAlice().some((m) => m.type === 'candidate'));
    const hungUp = bob.once('leave');
    alice.hangUp(bn);
    expect(await hungUp).toEqual({ type: 'leave', name: an });

    expect(toBob().map((m) => m.type)).toEqual(['login', 'offer', 'candidate', 'candidate', 'candidate', 'candidate', 'leave']);
    expect(toBob().filter((m) => m.type === 'candidate').map((m) => m.candidate)).toEqual([ice(0), ice(1), ice(2), null]);
    expect(toAlice().map((m) => m.type)).toEqual(['login', 'answer', 'candidate']);
  });

  test('login failures reject with the reason, and the client can try another name', async () => {
    const taken = uniq('taken');
    await online(taken);
    const client = createClient(srv.url);
    open.push(client);
    const err = await client.login(taken).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SignalboxError);
    expect(err).toMatchObject({ code: 'name_taken', reply: { type: 'login', success: false, reason: 'name_taken' } });
    expect(await client.login('').catch((e: SignalboxError) => e.code)).toBe('invalid_name');
    const [first, second] = await Promise.allSettled([client.login(taken), client.login(taken)]);
    expect([first, second].map((r) => r.status === 'rejected' && (r.reason as SignalboxError).code)).toEqual(['name_taken', 'already_logged_in']);
    expect(client.state).toBe('connected');
    const ok = await client.login(uniq('free'));
    expect(ok).toMatchObject({ type: 'login', success: true, resumed: false });
    expect(ok.resume).toMatch(/^[\w-]{22}$/); // resumable by default
    expect(await client.login('again').catch((e: SignalboxError) => e.code)).toBe('already_logged_in');
  });

  test('requests pair with their replies; refusals reject and are also error events', async () => {
    const { client, messages } = await online(uniq('req'));
    const room = uniq('room');
    expect(await client.join(room)).toEqual([]);
    expect(await client.join(room)).toEqual([]); // joining again repeats joined
    await client.leaveRoom(room);
    expect(await client.leaveRoom(room).catch((e: SignalboxError) => [e.code, e.reply])).toEqual([
      'not_in_room',
      expect.objectContaining({ type: 'error', code: 'not_in_room', room, request: 'leave-room' }),
    ]);
    expect(await client.join('bad\u0000room').catch((e: SignalboxError) => e.code)).toBe('invalid_message');
    expect(await client.list({ limit: 0 }).catch((e: SignalboxError) => e.code)).toBe('invalid_message');
    const page = await client.list({ limit: 100 });
    expect(page.users).toContain(client.name!);
    // A relay has no reply: its refusal is an error event only.
    const refused = client.once('error');
    client.call(uniq('nobody'), sdp('offer'));
    expect(await refused).toMatchObject({ code: 'user_not_found', request: 'offer' });
    expect(messages().filter((m) => m.type === 'error').map((m) => m.code)).toEqual(['not_in_room', 'invalid_message', 'invalid_message', 'user_not_found']);
    // A full room (roomSize 4) rejects with room_full.
    const full = uniq('full');
    const members = await Promise.all([1, 2, 3, 4].map((i) => online(uniq(`m${i}`))));
    for (const m of members) await m.client.join(full);
    expect(await client.join(full).catch((e: SignalboxError) => e.code)).toBe('room_full');
  });

  test('a 4-person room: every pair completes offer, answer and candidates', async () => {
    const room = uniq('mesh');
    const people = await Promise.all(['a', 'b', 'c', 'd'].map((p) => online(uniq(p))));
    const done = new Set<string>();
    for (const { client } of people) {
      // Everyone answers offers from room peers, then sends a candidate.
      client.on('offer', ({ name }) => {
        client.answer(name, sdp('answer'));
        client.candidate(name, ice(1));
      });
      client.on('answer', ({ name }) => client.candidate(name, ice(2)));
      client.on('candidate', ({ name }) => done.add(`${name}→${client.name}`));
    }
    // Each newcomer calls every peer already there.
    for (const [i, { client }] of people.entries()) {
      const peers = await client.join(room);
      expect(peers.sort()).toEqual(people.slice(0, i).map((p) => p.client.name!).sort());
      for (const peer of peers) client.call(peer, sdp('offer', i));
    }
    const names = people.map((p) => p.client.name!);
    const pairs = names.flatMap((x) => names.filter((y) => y !== x).map((y) => `${x}→${y}`));
    await eventually(() => pairs.every((p) => done.has(p)), 3000, 'every pair exchanged candidates');
    expect(pairs.length).toBe(12);
    const [first] = people;
    // Every later member's arrival, once. (In a cluster, joins made on different nodes may
    // reach a member in another order than they happened: compare as sets.)
    const joined = () => first!.messages().filter((m) => m.type === 'peer-joined').map((m) => m.name as string);
    await eventually(() => joined().length === names.length - 1, 3000, 'every peer-joined');
    expect(joined().sort()).toEqual(names.slice(1).sort());
    expect(people.flatMap((p) => p.messages()).filter((m) => m.type === 'error')).toEqual([]);
  });

  test('a socket cut mid-call: reconnects by itself, resumes, keeps the call, gets every queued message in order', async () => {
    const proxy = await TcpProxy.start(srv.url);
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const alice = await online(an, proxy.url);
    const bob = await online(bn);
    bob.client.on('offer', ({ name }) => bob.client.answer(name, sdp('answer')));
    const answered = alice.client.once('answer');
    alice.client.call(bn, sdp('offer'));
    await answered;

    const dropped = bob.client.once('peer-disconnected');
    proxy.down(); // the network goes: no close frame either way
    expect(await dropped).toEqual({ type: 'peer-disconnected', name: an });
    await eventually(() => alice.client.state === 'reconnecting');
    // While alice is away: bob's messages wait on the server, alice's in her client.
    for (let i = 0; i < 5; i++) bob.client.candidate(an, ice(i));
    bob.client.call(an, sdp('offer', 2)); // a renegotiation, also queued
    alice.client.candidate(bn, ice(50));
    alice.client.candidate(bn, ice(51));
    await Bun.sleep(150); // a few refused attempts
    expect(alice.events.filter((e) => e.type === 'reconnecting').length).toBeGreaterThan(1);

    const back = alice.client.once('reconnected');
    proxy.up();
    expect(await back).toEqual({ resumed: true });
    await eventually(() => alice.messages().length === 9, 3000, 'queued messages delivered');
    expect(alice.messages().slice(2)).toEqual([
      expect.objectContaining({ type: 'login', success: true, name: an, resumed: true }),
      ...[0, 1, 2, 3, 4].map((i) => ({ type: 'candidate', candidate: ice(i), name: bn })),
      { type: 'offer', offer: sdp('offer', 2), name: bn },
    ]);
    await eventually(() => bob.messages().filter((m) => m.type === 'candidate').length === 2, 2000, 'alice queue flushed');
    const toBob = bob.messages().slice(2);
    expect(toBob).toEqual([
      { type: 'peer-disconnected', name: an },
      { type: 'peer-reconnected', name: an },
      { type: 'candidate', candidate: ice(50), name: an },
      { type: 'candidate', candidate: ice(51), name: an },
    ]);
    // The call is still linked: a hang-up goes through.
    const left = bob.client.once('leave');
    alice.client.hangUp(bn);
    expect(await left).toEqual({ type: 'leave', name: an });
    const closes = alice.events.filter((e) => e.type === 'close').map((e) => e.event);
    expect(closes.every((c) => c.reconnecting)).toBe(true);
    expect(closes[0].code).toBe(1006);
    await proxy.close();
  });

  test('requests in flight when the socket is cut are sent again and still settle', async () => {
    const proxy = await TcpProxy.start(srv.url);
    const { client } = await online(uniq('inflight'), proxy.url);
    const [kept, gone] = [uniq('kept'), uniq('gone')];
    await client.join(gone);
    // Written to the socket just before it dies: each may or may not have reached the server.
    const joining = client.join(kept);
    const leaving = client.leaveRoom(gone);
    proxy.down();
    await eventually(() => client.state === 'reconnecting');
    proxy.up();
    expect(await joining).toEqual([]);
    expect(await leaving).toBeUndefined();
    // Whatever happened to the first copies, the server now agrees.
    expect(await client.join(kept)).toEqual([]);
    expect(await client.leaveRoom(gone).catch((e: SignalboxError) => e.code)).toBe('not_in_room');
    await proxy.close();
  });

  // A cluster is restarted a node at a time (a client resumes on another node): see cluster.test.ts.
  test.skipIf(target === 'cluster')('the server restarts: the client comes back with a fresh session when resume is impossible', async () => {
    const own = await startServer({ graceMs: 5000 });
    const port = new URL(own.url).port;
    const { client, events } = await online(uniq('restart'), own.url);
    await own.stop(); // 1001 to every client
    await eventually(() => events.some((e) => e.type === 'close' && e.event.code === 1001));
    const again = await startServer({ port: Number(port), graceMs: 5000 });
    try {
      expect(await client.once('reconnected')).toEqual({ resumed: false });
      expect(client.state).toBe('online');
      expect(await client.join('after-restart')).toEqual([]);
    } finally {
      await client.close();
      await again.stop();
    }
  });

  test('close() sends 1000: the session ends at once and the client stays closed', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const { client: alice, events } = await online(an);
    const bob = new Client(srv.url);
    await bob.opened;
    await bob.login(bn);
    alice.call(bn, sdp('offer'));
    await bob.nextOfType('offer');
    await alice.close();
    expect(await bob.next()).toEqual({ type: 'leave', name: an }); // not peer-disconnected
    expect(alice.state).toBe('closed');
    expect(events.filter((e) => e.type === 'close').map((e) => e.event)).toEqual([{ code: 1000, reason: 'closed by the client', reconnecting: false }]);
    expect(() => alice.call(bn, sdp('offer'))).toThrow(SignalboxError);
    expect(await alice.join('x').catch((e: SignalboxError) => e.code)).toBe('closed');
    await Bun.sleep(100);
    expect(events.some((e) => e.type === 'reconnecting')).toBe(false);
    bob.close();
  });

  test('the send queue is bounded while reconnecting', async () => {
    const proxy = await TcpProxy.start(srv.url);
    const { client } = await online(uniq('q'), proxy.url, { ...fast, queueLimit: 3 });
    proxy.down();
    await eventually(() => client.state === 'reconnecting');
    for (let i = 0; i < 3; i++) client.candidate('someone', ice(i));
    expect(() => client.candidate('someone', ice(3))).toThrow(expect.objectContaining({ code: 'send_queue_full' }));
    await client.close();
    await proxy.close();
  });
});

describe('typed events', () => {
  // Checked by `make typecheck` (the suite is type-checked); at run time only the listeners register.
  test('payloads are typed from the server schemas, and payload types from the app', () => {
    type WebRtc = { description: { type: 'offer' | 'answer'; sdp?: string }; candidate: { candidate?: string } | null };
    const client = createClient<WebRtc>(srv.url);
    client.on('offer', (e) => {
      expectTypeOf(e.name).toEqualTypeOf<string>();
      expectTypeOf(e.offer).toEqualTypeOf<WebRtc['description']>();
    });
    client.on('candidate', (e) => expectTypeOf(e.candidate).toEqualTypeOf<WebRtc['candidate']>());
    client.on('error', (e) => {
      expectTypeOf(e.code).toEqualTypeOf<import('../src/protocol/errors.ts').ErrorCode>();
      expectTypeOf(e.request).toEqualTypeOf<string | undefined>();
    });
    client.on('login', (e) => {
      if (e.success) expectTypeOf(e.resume).toEqualTypeOf<string | undefined>();
      else expectTypeOf(e.reason).toEqualTypeOf<import('../src/protocol/errors.ts').LoginFailure>();
    });
    client.on('joined', (e) => expectTypeOf(e.peers).toEqualTypeOf<string[]>());
    client.on('reconnected', (e) => expectTypeOf(e.resumed).toEqualTypeOf<boolean>());
    expectTypeOf<ReturnType<typeof client.join>>().toEqualTypeOf<Promise<string[]>>();
    // @ts-expect-error: no such event
    client.on('offers', () => {});
    // @ts-expect-error: the app said descriptions are objects
    expect(() => client.call('bob', 'v=0')).toThrow(SignalboxError); // not logged in
    const seed = createClient(srv.url);
    expectTypeOf<Parameters<typeof seed.call>[1]>().toEqualTypeOf<string | Record<string, unknown>>();
  });
});

describe('reconnect backoff', () => {
  test('each wait is within [(1 − jitter)·base, base], grows by factor, and never exceeds maxMs', () => {
    const backoff = { initialMs: 100, maxMs: 5000, factor: 2, jitter: 0.5 };
    for (let attempt = 1; attempt <= 40; attempt++) {
      const base = Math.min(5000, 100 * 2 ** (attempt - 1));
      expect(backoffDelay(attempt, backoff, () => 0)).toBe(base);
      expect(backoffDelay(attempt, backoff, () => 0.999999)).toBe(Math.round(base * 0.5000005));
      for (let i = 0; i < 50; i++) {
        const d = backoffDelay(attempt, backoff);
        expect(d).toBeGreaterThanOrEqual(base / 2);
        expect(d).toBeLessThanOrEqual(base);
      }
    }
    expect(backoffDelay(1e6, backoff)).toBeLessThanOrEqual(5000);
    expect(backoffDelay(3, { initialMs: 10, jitter: 0 })).toBe(40);
  });

  test('a real outage: attempts are spaced by the announced waits, and maxAttempts gives up cleanly', async () => {
    const proxy = await TcpProxy.start(srv.url);
    const backoff = { initialMs: 40, maxMs: 120, factor: 2, jitter: 0.5 };
    const { client, events } = await online(uniq('outage'), proxy.url, { backoff, maxAttempts: 5 });
    const room = uniq('room');
    await client.join(room);
    proxy.down();
    const cut = performance.now();
    const attemptsBefore = proxy.attempts.length;
    const pending = client.join(uniq('never')).catch((e: SignalboxError) => e.code); // queued, rejected on giving up
    await eventually(() => client.state === 'closed', 5000, 'client gave up');
    const waits = events.filter((e) => e.type === 'reconnecting').map((e) => e.event);
    expect(waits.map((w) => w.attempt)).toEqual([1, 2, 3, 4, 5]);
    for (const { attempt, delayMs } of waits) {
      const base = Math.min(120, 40 * 2 ** (attempt - 1));
      expect(delayMs).toBeGreaterThanOrEqual(base / 2);
      expect(delayMs).toBeLessThanOrEqual(base);
    }
    // Each refused connection came no sooner than its wait after the previous one.
    const times = [cut, ...proxy.attempts.slice(attemptsBefore)];
    expect(times.length).toBe(6);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(waits[i - 1]!.delayMs - 5);
    expect(await pending).toBe('closed');
    expect(events.at(-1)).toEqual({ type: 'close', event: { code: 1006, reason: 'gave up after 5 attempts', reconnecting: false } });
    await proxy.close();
  });
});

describe('docs/client.md', () => {
  test('documents every public method and every server message event', async () => {
    const doc = await Bun.file(new URL('../docs/client.md', import.meta.url)).text();
    const { SignalboxClient } = await import('signalbox/client');
    const methods = [SignalboxClient.prototype, Object.getPrototypeOf(SignalboxClient.prototype)]
      .flatMap((p) => Object.getOwnPropertyNames(p))
      .filter((m) => m !== 'constructor' && m !== 'emit');
    expect(methods.length).toBeGreaterThan(12);
    const table = doc.slice(doc.indexOf('| method |'));
    for (const m of methods) expect({ m, documented: table.includes(`| \`${m}`) || table.includes(`\`${m}\` |`) || table.includes(`/ \`${m}\``) }).toEqual({ m, documented: true });
    const { ServerMessage } = await import('../src/protocol/server.ts');
    for (const { entries } of ServerMessage.options) expect(doc).toContain(`\`${entries.type.literal}\``);
  });
});

describe('the browser bundle', () => {
  test('bundles for browsers without valibot or any import, small, and works', async () => {
    const out = await Bun.build({ entrypoints: [new URL('../src/client/index.ts', import.meta.url).pathname], target: 'browser', minify: true });
    expect(out.success).toBe(true);
    expect(out.outputs.length).toBe(1);
    const code = await out.outputs[0]!.text();
    expect(code).not.toContain('valibot');
    expect(code).not.toMatch(/\bimport\s*[({"'a-zA-Z*]|\brequire\(/);
    for (const name of ['createClient', 'SignalboxError', 'backoffDelay']) expect(code).toContain(name);
    console.log(`signalbox/client browser bundle: ${code.length} bytes minified, ${Bun.gzipSync(code).length} gzipped`);
    expect(code.length).toBeLessThan(12 * 1024); // a budget: grow it on purpose, not by accident

    // The bundle itself logs in and joins a room.
    const file = `${process.env.TMPDIR ?? '/tmp'}/signalbox-client-${process.pid}.js`;
    await Bun.write(file, code);
    try {
      const bundled = (await import(file)) as typeof import('signalbox/client');
      const client = bundled.createClient(srv.url);
      await client.login(uniq('bundled'));
      expect(await client.join(uniq('room'))).toEqual([]);
      await client.close();
    } finally {
      rmSync(file, { force: true });
    }
  });
});
