import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sign } from 'hono/jwt';
import { Client, loggedIn, startServer, target, type TestServer } from './helpers.ts';
import { tableNames } from './doc-tables.ts';

/**
 * GET /metrics, /healthz and /readyz over the wire. Under the cluster target every node is
 * scraped and the samples are added up: each outcome must be counted once, on the node
 * that decided it, so the sums are exact there too.
 */

type Samples = Map<string, number>;

/** Parse the text exposition format strictly: HELP and TYPE before each family's samples. */
function parse(text: string): Samples {
  const samples: Samples = new Map();
  const typed = new Map<string, string>();
  let helped = '';
  for (const line of text.split('\n')) {
    if (line === '') continue;
    let m = /^# HELP ([a-zA-Z_:][a-zA-Z0-9_:]*) \S.*$/.exec(line);
    if (m) {
      helped = m[1]!;
      continue;
    }
    m = /^# TYPE ([a-zA-Z_:][a-zA-Z0-9_:]*) (counter|gauge)$/.exec(line);
    if (m) {
      expect(m[1]).toBe(helped);
      expect(typed.has(m[1]!)).toBe(false);
      typed.set(m[1]!, m[2]!);
      continue;
    }
    m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*\})? (-?[0-9.e+]+)$/.exec(line);
    if (m === null) throw new Error(`not a sample line: ${line}`);
    expect(typed.has(m[1]!)).toBe(true);
    if (typed.get(m[1]!) === 'counter') expect(m[1]!.endsWith('_total')).toBe(true);
    const key = `${m[1]}${m[2] ?? ''}`;
    expect(samples.has(key)).toBe(false);
    samples.set(key, Number(m[3]));
  }
  return samples;
}

async function scrape(base: string, headers: Record<string, string> = {}): Promise<Samples> {
  const res = await fetch(`${base}/metrics`, { headers });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  return parse(await res.text());
}

/** Every node's samples added up (identity labels such as build_info's node are summed away by name). */
async function scrapeAll(srv: TestServer): Promise<Samples> {
  const total: Samples = new Map();
  for (const s of await Promise.all(srv.nodes.map((n) => scrape(n)))) {
    for (const [k, v] of s) total.set(k, (total.get(k) ?? 0) + v);
  }
  return total;
}

const diff = (before: Samples, after: Samples, key: string) => {
  expect(after.has(key)).toBe(true);
  return after.get(key)! - (before.get(key) ?? 0);
};

/** What a client sent or received, as the server counts it: the JSON text's length. */
const size = (frames: unknown[]) => frames.reduce<number>((n, f) => n + (typeof f === 'string' ? f.length : JSON.stringify(f).length), 0);

/** A client that remembers the text of every frame it sends. */
class Counted extends Client {
  readonly sent: string[] = [];
  override send(msg: unknown) {
    const text = typeof msg === 'string' ? msg : JSON.stringify(msg);
    this.sent.push(text);
    this.ws.send(text);
  }
  static async open(url: string): Promise<Counted> {
    const c = new Counted(url);
    await c.opened;
    return c;
  }
}

let seq = 0;
const uniq = (base: string) => `${base}-m${++seq}`;
const sdp = (kind: string) => ({ type: kind, sdp: `v=0\r\no=- ${kind}\r\n` });
const cand = (i: number) => ({ candidate: `candidate:${i} 1 udp 2122260223 10.0.0.1 ${9000 + i} typ host`, sdpMid: '0', sdpMLineIndex: 0 });

describe('GET /metrics counts what happens', () => {
  let srv: TestServer;
  beforeAll(async () => {
    srv = await startServer({ maxConnectionsPerIp: 0 });
  });
  afterAll(() => srv.stop());

  test('connections, users, calls, relayed messages, errors and bytes, scraped before and after', async () => {
    const before = await scrapeAll(srv);
    const [an, bn, cn] = [uniq('a'), uniq('b'), uniq('c')];
    const a = await Counted.open(srv.url);
    const b = await Counted.open(srv.url);
    const c = await Counted.open(srv.url);
    const opened = await scrapeAll(srv);
    expect(diff(before, opened, 'signalbox_connections')).toBe(3);
    expect(diff(before, opened, 'signalbox_connections_anonymous')).toBe(3);

    await a.login(an);
    await b.login(bn);
    await c.login(cn);
    a.send({ type: 'offer', name: bn, offer: sdp('offer') });
    await b.nextOfType('offer');
    b.send({ type: 'answer', name: an, answer: sdp('answer') });
    await a.nextOfType('answer');
    for (let i = 0; i < 3; i++) a.send({ type: 'candidate', name: bn, candidate: cand(i) });
    for (let i = 0; i < 3; i++) await b.nextOfType('candidate');
    // Refusals: c calls b, who is busy; c sends garbage; a second login on the same name.
    c.send({ type: 'offer', name: bn, offer: sdp('offer') });
    expect(await c.nextOfType('error')).toMatchObject({ code: 'busy' });
    c.send('{not json');
    expect(await c.nextOfType('error')).toMatchObject({ code: 'invalid_json' });
    const d = await Counted.open(srv.url);
    d.send({ type: 'login', name: an });
    expect(await d.nextOfType('login')).toMatchObject({ success: false, reason: 'name_taken' });
    d.send({ type: 'login', name: '' });
    expect(await d.nextOfType('login')).toMatchObject({ success: false, reason: 'invalid_name' });

    const inCall = await scrapeAll(srv);
    expect(diff(before, inCall, 'signalbox_connections')).toBe(4);
    expect(diff(before, inCall, 'signalbox_connections_anonymous')).toBe(1);
    expect(diff(before, inCall, 'signalbox_users')).toBe(3);
    expect(diff(before, inCall, 'signalbox_calls')).toBe(1);
    expect(diff(before, inCall, 'signalbox_logins_total')).toBe(3);
    expect(diff(before, inCall, 'signalbox_login_failures_total{reason="name_taken"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_login_failures_total{reason="invalid_name"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_messages_relayed_total{type="offer"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_messages_relayed_total{type="answer"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_messages_relayed_total{type="candidate"}')).toBe(3);
    expect(diff(before, inCall, 'signalbox_errors_total{code="busy"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_errors_total{code="invalid_json"}')).toBe(1);
    expect(diff(before, inCall, 'signalbox_errors_total{code="user_not_found"}')).toBe(0);

    // Bytes: every frame the clients sent, and every frame they received, to the byte.
    const clients = [a, b, c, d];
    expect(diff(before, inCall, 'signalbox_received_bytes_total')).toBe(size(clients.flatMap((x) => x.sent)));
    expect(diff(before, inCall, 'signalbox_sent_bytes_total')).toBe(size(clients.flatMap((x) => x.log)));

    a.send({ type: 'leave', name: bn });
    await b.nextOfType('leave');
    const after = await scrapeAll(srv);
    expect(diff(before, after, 'signalbox_calls')).toBe(0);
    expect(diff(before, after, 'signalbox_messages_relayed_total{type="leave"}')).toBe(1);

    await Promise.all(clients.map((x) => x.close()));
    // Closing is seen by the server a moment after the client: poll.
    for (let i = 0; i < 100; i++) {
      const closed = await scrapeAll(srv);
      if (diff(before, closed, 'signalbox_connections') === 0 && diff(before, closed, 'signalbox_users') === 0) return;
      await Bun.sleep(20);
    }
    throw new Error('connections and users did not go back down');
  });

  test('build info, uptime and memory', async () => {
    const s = await scrape(srv.nodes[0]!);
    const info = [...s.keys()].find((k) => k.startsWith('signalbox_build_info{'));
    expect(info).toBeDefined();
    expect(info).toContain(`runtime="${target === 'deno' ? 'deno' : 'bun'}"`);
    expect(info).toMatch(/version="[^"]+"/);
    if (target === 'cluster') expect(info).toContain('node="');
    expect(s.get('signalbox_uptime_seconds')).toBeGreaterThanOrEqual(0);
    expect(s.get('process_resident_memory_bytes')).toBeGreaterThan(1_000_000);
    expect(s.get('signalbox_heap_used_bytes')).toBeGreaterThan(0);
    if (target === 'cluster') expect([...s].find(([k]) => k.startsWith('signalbox_redis_up{'))?.[1]).toBe(1);
    else expect([...s.keys()].some((k) => k.startsWith('signalbox_redis_up'))).toBe(false);
  });

  test('docs/deploy.md describes every metric reported, and none that is not', async () => {
    const reported = new Set([...(await scrape(srv.nodes[0]!)).keys()].map((k) => k.replace(/\{.*/, '')));
    const documented = new Set(tableNames(await Bun.file(new URL('../docs/deploy.md', import.meta.url)).text(), '<!-- metrics'));
    expect([...reported].filter((m) => !documented.has(m))).toEqual([]);
    // Redis's gauge exists only in a cluster.
    expect([...documented].filter((m) => !reported.has(m) && !(m === 'signalbox_redis_up' && target !== 'cluster'))).toEqual([]);
  });

  test('GET /healthz is alive and GET /readyz is ready', async () => {
    for (const node of srv.nodes) {
      const health = await fetch(`${node}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toMatchObject({ status: 'ok', connections: expect.any(Number), users: expect.any(Number), uptime: expect.any(Number) });
      const ready = await fetch(`${node}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toMatchObject({ status: 'ready' });
    }
  });
});

describe('rejected upgrades, by reason', () => {
  /** Try to open a WebSocket that the server should refuse; resolves once it failed. */
  const refused = async (url: string, headers?: Record<string, string>) => {
    const c = new Client(url, undefined, headers);
    await expect(c.opened).rejects.toThrow();
  };
  const wsOf = (http: string) => `${http.replace('http', 'ws')}/`;

  test('origin, server_full and too_many_from_ip', async () => {
    const srv = await startServer({ allowedOrigins: ['https://ok.example'], maxConnectionsPerIp: 1 });
    try {
      // One node's address: limits are per node.
      const node = srv.nodes[0]!;
      const before = await scrape(node);
      await refused(wsOf(node), { Origin: 'https://evil.example' });
      const first = new Client(wsOf(node), undefined, { Origin: 'https://ok.example' });
      await first.opened;
      await refused(wsOf(node));
      const after = await scrape(node);
      expect(diff(before, after, 'signalbox_upgrades_rejected_total{reason="origin"}')).toBe(1);
      expect(diff(before, after, 'signalbox_upgrades_rejected_total{reason="too_many_from_ip"}')).toBe(1);
      await first.close();
    } finally {
      await srv.stop();
    }
    const full = await startServer({ maxConnections: 1, maxConnectionsPerIp: 0 });
    try {
      const node = full.nodes[0]!;
      const first = await Client.connect(wsOf(node));
      await refused(wsOf(node));
      expect((await scrape(node)).get('signalbox_upgrades_rejected_total{reason="server_full"}')).toBe(1);
      await first.close();
    } finally {
      await full.stop();
    }
  });

  test('token: none, and a forged one', async () => {
    const secret = 'metrics-test-secret-0123456789abcdef';
    const srv = await startServer({ authSecret: secret });
    try {
      const node = srv.nodes[0]!;
      await refused(wsOf(node));
      const forged = await sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, `${secret}x`, 'HS256');
      await refused(`${wsOf(node)}?token=${forged}`);
      expect((await scrape(node)).get('signalbox_upgrades_rejected_total{reason="token"}')).toBe(2);
      const good = await sign({ sub: 'alice', exp: Math.floor(Date.now() / 1000) + 60 }, secret, 'HS256');
      const [alice] = await loggedIn(`${wsOf(node)}?token=${good}`, 'alice');
      await alice!.close();
    } finally {
      await srv.stop();
    }
  });
});

describe('who may read /metrics', () => {
  test('--no-metrics: 404', async () => {
    const srv = await startServer({ metrics: false });
    try {
      expect((await fetch(`${srv.http}/metrics`)).status).toBe(404);
    } finally {
      await srv.stop();
    }
  });

  test('--metrics-token: 401 without the bearer token or with a wrong one, 200 with it', async () => {
    const token = 'scrape-me-0123456789';
    const srv = await startServer({ metricsToken: token });
    try {
      const none = await fetch(`${srv.http}/metrics`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toBe('Bearer');
      expect((await fetch(`${srv.http}/metrics`, { headers: { Authorization: `Bearer ${token}x` } })).status).toBe(401);
      const ok = await scrape(srv.http, { Authorization: `Bearer ${token}` });
      expect(ok.get('signalbox_connections')).toBe(0);
      // Liveness and readiness stay open for health checkers.
      expect((await fetch(`${srv.http}/healthz`)).status).toBe(200);
      expect((await fetch(`${srv.http}/readyz`)).status).toBe(200);
    } finally {
      await srv.stop();
    }
  });
});
