import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Client, loggedIn, startServer, type TestServer } from './helpers.ts';

let srv: TestServer;
beforeAll(async () => {
  // Hundreds of clients share 127.0.0.1 here; the per-address cap has its own tests.
  srv = await startServer({ maxConnectionsPerIp: 0 });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;

describe('seed protocol', () => {
  test('login succeeds, and a taken name is refused with a reason', async () => {
    const name = uniq('alice');
    const [a] = await loggedIn(srv.url, name);
    const b = await Client.connect(srv.url);
    b.send({ type: 'login', name });
    expect(await b.next()).toMatchObject({ type: 'login', success: false, reason: 'name_taken' });
    // The refused connection may still log in under another name.
    await b.login(uniq('bob'));
    await a!.quiet();
    a!.close();
    b.close();
  });

  test('a whole conversation: offer, answer, candidates both ways in order, leave', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    const offer = { type: 'offer', sdp: 'v=0 offer' };
    a.send({ type: 'offer', name: bn, offer });
    expect(await b.next()).toEqual({ type: 'offer', offer, name: an });

    const answer = { type: 'answer', sdp: 'v=0 answer' };
    b.send({ type: 'answer', name: an, answer });
    expect(await a.next()).toEqual({ type: 'answer', answer, name: bn });

    const cand = (i: number) => ({ candidate: `candidate:${i} 1 udp 2122260223 127.0.0.1 ${5000 + i} typ host`, sdpMid: '0', sdpMLineIndex: 0 });
    for (let i = 0; i < 5; i++) {
      a.send({ type: 'candidate', name: bn, candidate: cand(i) });
      b.send({ type: 'candidate', name: an, candidate: cand(100 + i) });
    }
    for (let i = 0; i < 5; i++) {
      expect(await b.next()).toEqual({ type: 'candidate', candidate: cand(i), name: an });
      expect(await a.next()).toEqual({ type: 'candidate', candidate: cand(100 + i), name: bn });
    }
    // The end-of-candidates marker travels as null.
    a.send({ type: 'candidate', name: bn, candidate: null });
    expect(await b.next()).toEqual({ type: 'candidate', candidate: null, name: an });

    a.send({ type: 'leave', name: bn });
    expect(await b.next()).toEqual({ type: 'leave', name: an });
    // Both sides' call state is cleared: a second leave is refused on either side.
    a.send({ type: 'leave', name: bn });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'not_in_call' });
    b.send({ type: 'leave', name: an });
    expect(await b.next()).toMatchObject({ type: 'error', code: 'not_in_call' });
    await Promise.all([a.quiet(), b.quiet()]);
    a.close();
    b.close();
  });

  test('the seed client may send leave without a name: it ends its current call', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    b.send({ type: 'leave' });
    expect(await a.next()).toEqual({ type: 'leave', name: bn });
    b.send({ type: 'leave' });
    expect(await b.next()).toMatchObject({ type: 'error', code: 'not_in_call' });
    a.close();
    b.close();
  });

  test('a connection closed mid-call frees its name at once and tells its partner', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    b.send({ type: 'answer', name: an, answer: 'sdp' });
    await a.next();
    await b.close();
    expect(await a.next()).toEqual({ type: 'leave', name: bn });
    const [b2] = await loggedIn(srv.url, bn); // the name is free again
    a.send({ type: 'offer', name: bn, offer: 'again' });
    expect(await b2!.next()).toEqual({ type: 'offer', offer: 'again', name: an });
    a.close();
    b2!.close();
  });

  test('the relayed name is the sender as the server knows it, never the claim', async () => {
    const [an, bn] = [uniq('alice'), uniq('bob')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'offer', name: bn, offer: 'sdp', from: 'mallory', sender: 'mallory' });
    const got = await b.next();
    expect(got).toEqual({ type: 'offer', offer: 'sdp', name: an });
    a.close();
    b.close();
  });

  test('prototype keys are ordinary names', async () => {
    const names = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', 'prototype', 'valueOf'];
    const clients = await loggedIn(srv.url, ...names);
    const [x, y] = clients as [Client, Client];
    x.send({ type: 'offer', name: 'constructor', offer: 'sdp' });
    expect(await y.next()).toEqual({ type: 'offer', offer: 'sdp', name: '__proto__' });
    const z = await Client.connect(srv.url);
    z.send({ type: 'login', name: '__proto__' });
    expect(await z.next()).toMatchObject({ success: false, reason: 'name_taken' });
    z.send({ type: 'offer', name: 'isPrototypeOf', offer: 'sdp' });
    expect(await z.next()).toMatchObject({ code: 'not_logged_in' });
    for (const c of [...clients, z]) c.close();
  });

  test('names: 1–64 Unicode characters, no control characters', async () => {
    const c = await Client.connect(srv.url);
    const bad = ['', 'x'.repeat(65), 'tab\there', 'nul\u0000', 'del\u007f', 'c1\u0085', '\ud800'];
    for (const name of bad) {
      c.send({ type: 'login', name });
      expect(await c.next()).toMatchObject({ type: 'login', success: false, reason: 'invalid_name' });
    }
    c.send({ type: 'login', name: 42 });
    expect(await c.next()).toMatchObject({ type: 'login', success: false, reason: 'invalid_name' });
    // 64 emoji are 64 characters (128 UTF-16 units): accepted.
    await c.login('😀'.repeat(64));
    const d = await Client.connect(srv.url);
    await d.login(`名前 with spaces ${uniq('')}`);
    c.close();
    d.close();
  });

  test('GET /healthz reports status, connections, users and uptime', async () => {
    const [a] = await loggedIn(srv.url, uniq('h'));
    const body = await srv.health();
    expect(body).toMatchObject({ status: 'ok' });
    expect(body.connections).toBeGreaterThanOrEqual(1);
    expect(body.users).toBeGreaterThanOrEqual(1);
    expect(typeof body.uptime).toBe('number');
    a!.close();
  });

  test('a plain GET / answers without upgrading', async () => {
    const res = await fetch(`${srv.http}/`);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('signalbox');
  });

  test('no frame is sent before the client speaks (no "Hello world")', async () => {
    const c = await Client.connect(srv.url);
    await c.quiet(150);
    c.close();
  });
});

describe('errors, each followed by proof that the connection and server still work', () => {
  // After every error the same connection logs in (or relays) and gets a normal reply.
  async function stillWorks(c: Client, name?: string) {
    if (name) await c.login(name);
    const probe = await Client.connect(srv.url);
    await probe.login(uniq('probe'));
    probe.close();
  }

  const cases: Array<[string, (c: Client) => void, Record<string, unknown>]> = [
    ['invalid JSON', (c) => c.send('{"type": "login", '), { code: 'invalid_json' }],
    ['a binary frame', (c) => c.ws.send(new Uint8Array([123, 125])), { code: 'binary_frame' }],
    ['a JSON array', (c) => c.send('[1,2]'), { code: 'invalid_message' }],
    ['a JSON string', (c) => c.send('"login"'), { code: 'invalid_message' }],
    ['an unknown type', (c) => c.send({ type: 'dance' }), { code: 'unknown_type', message: 'Command not found: dance' }],
    ['a missing type', (c) => c.send({ name: 'x' }), { code: 'unknown_type', message: 'Command not found: undefined' }],
    ['a message before login', (c) => c.send({ type: 'offer', name: 'x', offer: 'sdp' }), { code: 'not_logged_in' }],
  ];
  for (const [what, act, expected] of cases) {
    test(what, async () => {
      const c = await Client.connect(srv.url);
      act(c);
      expect(await c.next()).toMatchObject({ type: 'error', ...expected });
      await c.quiet(50);
      await stillWorks(c, uniq('after'));
      c.close();
    });
  }

  test('an unknown type echoes at most a short prefix of what was sent', async () => {
    const c = await Client.connect(srv.url);
    c.send({ type: 'x'.repeat(10_000) });
    const err = await c.next();
    expect(err.code).toBe('unknown_type');
    expect(err.message.length).toBeLessThan(100);
    c.close();
  });

  test('a field that fails the schema is named', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'offer', name: bn, offer: 42 });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'invalid_message', field: 'offer' });
    a.send({ type: 'offer', offer: 'sdp' });
    expect(await a.next()).toMatchObject({ code: 'invalid_message', field: 'name', message: 'name: is required' });
    a.send({ type: 'answer', name: bn });
    expect(await a.next()).toMatchObject({ code: 'invalid_message', field: 'answer' });
    a.send({ type: 'candidate', name: bn, candidate: [1] });
    expect(await a.next()).toMatchObject({ code: 'invalid_message', field: 'candidate' });
    await b.quiet(50);
    a.send({ type: 'offer', name: bn, offer: 'ok' });
    expect(await b.next()).toMatchObject({ type: 'offer', offer: 'ok' });
    a.close();
    b.close();
  });

  test('a second login on the same connection', async () => {
    const name = uniq('twice');
    const [a] = (await loggedIn(srv.url, name)) as [Client];
    a.send({ type: 'login', name: uniq('other') });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'already_logged_in' });
    await stillWorks(a);
    a.close();
  });

  test('a target user that does not exist (offer, candidate)', async () => {
    const [a] = (await loggedIn(srv.url, uniq('lonely'))) as [Client];
    for (const [type, field] of [['offer', 'offer'], ['candidate', 'candidate']] as const) {
      a.send({ type, name: 'nobody-here', [field]: 'x' });
      expect(await a.next()).toMatchObject({ type: 'error', code: 'user_not_found', name: 'nobody-here', request: type });
    }
    // An answer to someone who never called is refused by the routing rules first.
    a.send({ type: 'answer', name: 'nobody-here', answer: 'x' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'not_in_call', name: 'nobody-here', request: 'answer' });
    await stillWorks(a);
    a.close();
  });

  test('leave to a user you are not in a call with (the seed crashed here)', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'leave', name: 'ghost' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'not_in_call', name: 'ghost' });
    a.send({ type: 'leave', name: bn });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'not_in_call', name: bn });
    await b.quiet(50);
    await stillWorks(a);
    a.close();
    b.close();
  });
});

describe('many calls at once', () => {
  test('100 pairs × 100 candidates: each delivered exactly once, in order, to the right recipient only', async () => {
    const pairs = 100;
    const perPair = 100;
    const callers: Client[] = [];
    const callees: Client[] = [];
    const tag = uniq('load');
    await Promise.all(
      Array.from({ length: pairs }, async (_, i) => {
        const [a, b] = (await loggedIn(srv.url, `${tag}-a${i}`, `${tag}-b${i}`)) as [Client, Client];
        callers[i] = a;
        callees[i] = b;
      }),
    );
    for (let i = 0; i < pairs; i++) {
      callers[i]!.send({ type: 'offer', name: `${tag}-b${i}`, offer: `offer ${i}` });
    }
    await Promise.all(callees.map((b) => b.nextOfType('offer')));
    for (let n = 0; n < perPair; n++) {
      for (let i = 0; i < pairs; i++) {
        callers[i]!.send({ type: 'candidate', name: `${tag}-b${i}`, candidate: { candidate: `c ${i} ${n}`, sdpMid: '0' } });
      }
    }
    await Promise.all(callees.map((b) => b.waitFor(perPair, 20_000)));
    for (let i = 0; i < pairs; i++) {
      const got = callees[i]!.received.splice(0);
      expect(got.length).toBe(perPair);
      got.forEach((m, n) => expect(m).toEqual({ type: 'candidate', candidate: { candidate: `c ${i} ${n}`, sdpMid: '0' }, name: `${tag}-a${i}` }));
    }
    await Promise.all([...callers, ...callees].map((c) => c.quiet(0)));
    await Promise.all([...callers, ...callees].map((c) => c.close()));
    // Every name is free again.
    const again = await loggedIn(srv.url, `${tag}-a0`, `${tag}-b99`);
    for (const c of again) c.close();
  }, 30_000);
});
