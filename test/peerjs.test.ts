import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { sign } from 'hono/jwt';
import { OUTBOX_MESSAGES, OUTBOX_MS, OUTBOX_PEERS } from '../src/protocol/limits.ts';
import { Client, eventually, inProcess, type Json, skipNotice, startServer, target, type TestServer } from './helpers.ts';
import { RawClient } from './raw-client.ts';

/**
 * The PeerJS face on the wire: raw WebSockets speaking what the `peerjs` client speaks (the
 * real client runs in test/e2e/peerjs.test.ts). Every message, error and limit of the face;
 * it runs against every target (bun, deno, cluster), where consecutive reads of `srv.url`
 * land on different nodes.
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ maxConnectionsPerIp: 0, graceMs: 1500, rate: 0 });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;

const peerUrl = (base: string, params: Record<string, string>, path = 'peerjs') => {
  const url = new URL(path, base);
  for (const [k, v] of Object.entries(params)) url.searchParams.set(k, v);
  return url.href;
};
const urlFor = (id: string, token = `tok-${id}`, key = 'peerjs', base = srv.url) => peerUrl(base, { key, id, token, version: '1.5.5' });

/** A PeerJS peer on a WebSocket: connect and wait for OPEN. */
async function peer(id: string, token?: string, base?: string): Promise<Client> {
  const c = await Client.connect(urlFor(id, token, 'peerjs', base));
  expect(await c.next()).toEqual({ type: 'OPEN' });
  return c;
}

/** The next frame on a raw socket, parsed. */
async function rawNext(c: RawClient, ms = 3000): Promise<Json> {
  const deadline = Date.now() + ms;
  while (c.texts.length === 0) {
    if (Date.now() > deadline) throw new Error('no frame');
    await Bun.sleep(5);
  }
  return JSON.parse(c.texts.shift()!);
}

const offer = (n = 1) => ({ sdp: { type: 'offer', sdp: `v=0 ${n}` }, type: 'data', connectionId: `dc_${n}`, label: 'chat', serialization: 'binary', reliable: true });
const answer = (n = 1) => ({ sdp: { type: 'answer', sdp: `v=0 ${n}` }, type: 'data', connectionId: `dc_${n}` });
const cand = (i: number, cid = 'dc_1') => ({ candidate: { candidate: `candidate:${i} 1 udp 1 127.0.0.1 ${9000 + i} typ host`, sdpMid: '0' }, type: 'data', connectionId: cid });

describe('PeerJS: connecting', () => {
  test('OPEN on connect; HEARTBEAT is taken without a reply', async () => {
    const a = await peer(uniq('a'));
    a.send({ type: 'HEARTBEAT' });
    await a.quiet(100);
    a.close();
  });

  test('an id the server hands out: GET <path><key>/id, random, with CORS for the page', async () => {
    const r = await fetch(`${srv.http}/peerjs/id?ts=1&version=1.5.5`, { headers: { Origin: 'http://app.example' } });
    expect(r.status).toBe(200);
    expect(r.headers.get('access-control-allow-origin')).toBe('http://app.example');
    const id = await r.text();
    expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(await (await fetch(`${srv.http}/peerjs/id`)).text()).not.toBe(id);
    (await peer(id)).close();
  });

  test('missing parameters: ERROR, then the socket closes', async () => {
    const missing: Array<Record<string, string>> = [{ key: 'peerjs', id: 'x' }, { key: 'peerjs', token: 't' }, { id: 'x', token: 't' }];
    for (const params of missing) {
      const c = await Client.connect(peerUrl(srv.url, params));
      const m = await c.next();
      expect(m).toMatchObject({ type: 'ERROR', payload: { code: 'invalid_message' } });
      expect(m.payload.msg).toContain('key=…&id=…&token=…');
      await c.closed;
    }
  });

  test('the query cannot speak for the server: an unknown parameter is ignored', async () => {
    const c = await Client.connect(peerUrl(srv.url, { key: 'peerjs', id: uniq('q'), token: 't', refused: 'spoofed' }));
    expect(await c.next()).toEqual({ type: 'OPEN' });
    c.close();
  });

  test('a wrong key: INVALID-KEY, then the socket closes', async () => {
    const c = await Client.connect(urlFor(uniq('k'), 't', 'not-the-key'));
    expect(await c.next()).toEqual({ type: 'INVALID-KEY', payload: { msg: 'Invalid key provided.' } });
    await c.closed;
  });

  test('an id or token out of bounds: ERROR naming the field', async () => {
    const long = await Client.connect(urlFor('x'.repeat(65)));
    expect(await long.next()).toMatchObject({ type: 'ERROR', payload: { code: 'invalid_message', msg: expect.stringMatching(/^id: /) } });
    await long.closed;
    const ctl = await Client.connect(urlFor('bad\u0001id'));
    expect((await ctl.next()).payload.msg).toStartWith('id: ');
    const token = await Client.connect(urlFor(uniq('t'), 'x'.repeat(4097)));
    expect((await token.next()).payload.msg).toStartWith('token: ');
  });

  test('an id in use with another token: ID-TAKEN, and the holder notices nothing', async () => {
    const id = uniq('taken');
    const a = await peer(id, 'first');
    const b = await Client.connect(urlFor(id, 'second'));
    expect(await b.next()).toMatchObject({ type: 'ID-TAKEN', payload: { code: 'name_taken' } });
    await b.closed;
    await a.quiet(50);
    a.close();
  });

  test('GET <path>peerjs without an upgrade says what it is', async () => {
    const r = await fetch(`${srv.http}/peerjs`);
    expect(r.status).toBe(426);
    expect(await r.text()).toContain('WebSocket');
  });
});

describe('PeerJS: relaying', () => {
  test('OFFER, ANSWER, CANDIDATE cross with src stamped by the server and the payload as sent', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const a = await peer(an);
    const b = await peer(bn);
    a.send({ type: 'OFFER', dst: bn, src: 'someone-else', payload: offer() });
    expect(await b.next()).toEqual({ type: 'OFFER', src: an, dst: bn, payload: offer() });
    b.send({ type: 'ANSWER', dst: an, payload: answer() });
    expect(await a.next()).toEqual({ type: 'ANSWER', src: bn, dst: an, payload: answer() });
    for (let i = 0; i < 20; i++) {
      a.send({ type: 'CANDIDATE', dst: bn, payload: cand(i) });
      b.send({ type: 'CANDIDATE', dst: an, payload: cand(100 + i) });
    }
    for (let i = 0; i < 20; i++) {
      expect(await b.next()).toEqual({ type: 'CANDIDATE', src: an, dst: bn, payload: cand(i) });
      expect(await a.next()).toEqual({ type: 'CANDIDATE', src: bn, dst: an, payload: cand(100 + i) });
    }
    await Promise.all([a.quiet(50), b.quiet(0)]);
    a.close();
    b.close();
  });

  test('many links at once: data and media to one peer, connections to several, both directions', async () => {
    const [an, bn, cn] = [uniq('a'), uniq('b'), uniq('c')];
    const [a, b, c] = [await peer(an), await peer(bn), await peer(cn)];
    a.send({ type: 'OFFER', dst: bn, payload: offer(1) });
    a.send({ type: 'OFFER', dst: bn, payload: { ...offer(2), type: 'media' } });
    a.send({ type: 'OFFER', dst: cn, payload: offer(3) });
    c.send({ type: 'OFFER', dst: bn, payload: offer(4) });
    b.send({ type: 'OFFER', dst: an, payload: offer(5) });
    expect((await b.next((m) => m.payload?.connectionId === 'dc_1')).type).toBe('OFFER');
    expect((await b.next((m) => m.payload?.connectionId === 'dc_2')).type).toBe('OFFER');
    expect((await b.next((m) => m.payload?.connectionId === 'dc_4')).src).toBe(cn);
    expect((await c.next()).payload.connectionId).toBe('dc_3');
    expect((await a.next()).payload.connectionId).toBe('dc_5');
    // Every pair is linked: answers and candidates pass in every direction, nobody is busy.
    b.send({ type: 'ANSWER', dst: an, payload: answer(1) });
    b.send({ type: 'ANSWER', dst: cn, payload: answer(4) });
    c.send({ type: 'CANDIDATE', dst: an, payload: cand(1, 'dc_3') });
    a.send({ type: 'CANDIDATE', dst: bn, payload: cand(2, 'dc_5') });
    // (Across senders, and across nodes in a cluster, there is no order to rely on.)
    expect(await a.next((m) => m.type === 'ANSWER')).toMatchObject({ src: bn, payload: answer(1) });
    expect(await c.next()).toMatchObject({ type: 'ANSWER', src: bn, payload: answer(4) });
    expect(await a.next()).toMatchObject({ type: 'CANDIDATE', src: cn, payload: cand(1, 'dc_3') });
    expect(await b.next()).toMatchObject({ type: 'CANDIDATE', src: an, payload: cand(2, 'dc_5') });
    await Promise.all([a.quiet(50), b.quiet(0), c.quiet(0)]);
    for (const x of [a, b, c]) x.close();
  });

  test('ANSWER or CANDIDATE from a peer with no link: EXPIRE about the target, which hears nothing', async () => {
    const [an, bn, mn] = [uniq('a'), uniq('b'), uniq('mallory')];
    const [a, b, m] = [await peer(an), await peer(bn), await peer(mn)];
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    await b.next();
    for (const type of ['ANSWER', 'CANDIDATE']) {
      m.send({ type, dst: an, payload: cand(1) });
      expect(await m.next()).toEqual({
        type: 'EXPIRE',
        src: an,
        payload: { code: 'not_in_call', msg: `You are not in a call with "${an}". Send an offer first.`, request: type },
      });
    }
    await Promise.all([a.quiet(100), b.quiet(0)]);
    for (const x of [a, b, m]) x.close();
  });

  test('a link ends with its session: the next holder of the id is not linked to anyone', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = [await peer(an), await peer(bn)];
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    await b.next();
    await a.close();
    // b still believes in the link; the new holder's side refuses (checked where its links live).
    const a2 = await peer(an, 'someone-new');
    b.send({ type: 'CANDIDATE', dst: an, payload: cand(1) });
    b.send({ type: 'ANSWER', dst: an, payload: answer() });
    expect(await b.next()).toMatchObject({ type: 'EXPIRE', src: an, payload: { code: 'not_in_call', request: 'CANDIDATE' } });
    expect(await b.next()).toMatchObject({ type: 'EXPIRE', src: an, payload: { code: 'not_in_call', request: 'ANSWER' } });
    await a2.quiet(100);
    a2.close();
    b.close();
  });

  test('LEAVE is relayed between linked peers and unlinks them; LEAVE without dst leaves the server', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = [await peer(an), await peer(bn)];
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    await b.next();
    a.send({ type: 'LEAVE', dst: bn, payload: { connectionId: 'dc_1' } });
    expect(await b.next()).toEqual({ type: 'LEAVE', src: an, dst: bn });
    b.send({ type: 'CANDIDATE', dst: an, payload: cand(1) });
    expect(await b.next()).toMatchObject({ type: 'EXPIRE', src: an, payload: { code: 'not_in_call' } });
    a.send({ type: 'LEAVE' });
    expect((await a.closed).code).toBe(1000);
    // The id is free at once.
    (await peer(an, 'another-token')).close();
    b.close();
  });

  test('an OFFER to oneself: EXPIRE with self_target', async () => {
    const an = uniq('a');
    const a = await peer(an);
    a.send({ type: 'OFFER', dst: an, payload: offer() });
    expect(await a.next()).toMatchObject({ type: 'EXPIRE', src: an, payload: { code: 'self_target' } });
    a.close();
  });

  test('bad frames: ERROR with the code, and the connection still works', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = [await peer(an), await peer(bn)];
    const cases: Array<[string | Uint8Array, string]> = [
      ['{"type":', 'invalid_json'],
      ['[1]', 'invalid_message'],
      [new Uint8Array([1, 2]), 'binary_frame'],
      ['{"type":"DANCE"}', 'unknown_type'],
      ['{"type":"EXPIRE","dst":"x"}', 'unknown_type'],
      [JSON.stringify({ type: 'OFFER', dst: bn, payload: 'sdp' }), 'invalid_message'],
      [JSON.stringify({ type: 'CANDIDATE', payload: {} }), 'invalid_message'],
    ];
    for (const [frame, code] of cases) {
      a.ws.send(frame);
      expect(await a.next()).toMatchObject({ type: 'ERROR', payload: { code } });
    }
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    expect(await b.next()).toMatchObject({ type: 'OFFER', src: an });
    a.close();
    b.close();
  });
});

describe('PeerJS: one namespace with the seed protocol', () => {
  test('a PeerJS id and a seed name cannot be the same', async () => {
    const id = uniq('shared');
    const p = await peer(id);
    const s = await Client.connect(srv.url);
    s.send({ type: 'login', name: id });
    expect(await s.next()).toMatchObject({ type: 'login', success: false, reason: 'name_taken' });
    const seedName = uniq('seedy');
    await s.login(seedName);
    const q = await Client.connect(urlFor(seedName));
    expect(await q.next()).toMatchObject({ type: 'ID-TAKEN' });
    p.close();
    s.close();
  });

  test('they cannot signal each other: protocol_mismatch both ways, nothing delivered', async () => {
    const [pn, sn] = [uniq('peer'), uniq('seed')];
    const p = await peer(pn);
    const s = await Client.connect(srv.url);
    await s.login(sn);
    p.send({ type: 'OFFER', dst: sn, payload: offer() });
    expect(await p.next()).toMatchObject({ type: 'EXPIRE', src: sn, payload: { code: 'protocol_mismatch', request: 'OFFER' } });
    s.send({ type: 'offer', name: pn, offer: 'sdp' });
    expect(await s.next()).toMatchObject({ type: 'error', code: 'protocol_mismatch', name: pn, request: 'offer' });
    s.send({ type: 'candidate', name: pn, candidate: 'c' });
    expect(await s.next()).toMatchObject({ type: 'error', code: 'protocol_mismatch' });
    await Promise.all([p.quiet(100), s.quiet(0)]);
    // Neither is left in a call: the seed user can call someone else.
    const [other] = [uniq('other')];
    const o = await Client.connect(srv.url);
    await o.login(other);
    s.send({ type: 'offer', name: other, offer: 'sdp' });
    expect(await o.next()).toMatchObject({ type: 'offer', name: sn });
    for (const x of [p, s, o]) x.close();
  });
});

describe('PeerJS: absent peers, reconnects', () => {
  test('messages to a peer about to connect wait for it, in order', async () => {
    const [an, bn] = [uniq('a'), uniq('late')];
    const a = await peer(an);
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    for (let i = 0; i < 3; i++) a.send({ type: 'CANDIDATE', dst: bn, payload: cand(i) });
    await Bun.sleep(300);
    const b = await Client.connect(urlFor(bn));
    expect(await b.next()).toEqual({ type: 'OPEN' });
    expect(await b.next()).toEqual({ type: 'OFFER', src: an, dst: bn, payload: offer() });
    for (let i = 0; i < 3; i++) expect(await b.next()).toEqual({ type: 'CANDIDATE', src: an, dst: bn, payload: cand(i) });
    // The pair is linked: the answer goes back.
    b.send({ type: 'ANSWER', dst: an, payload: answer() });
    expect(await a.next()).toMatchObject({ type: 'ANSWER', src: bn });
    await a.quiet(50);
    a.close();
    b.close();
  });

  test(`EXPIRE, once, when the peer does not come within ${OUTBOX_MS} ms`, async () => {
    const [an, nobody] = [uniq('a'), uniq('nobody')];
    const a = await peer(an);
    const sent = Date.now();
    a.send({ type: 'OFFER', dst: nobody, payload: offer() });
    for (let i = 0; i < 3; i++) a.send({ type: 'CANDIDATE', dst: nobody, payload: cand(i) });
    const m = await a.next(() => true, OUTBOX_MS + 3000);
    expect(Date.now() - sent).toBeGreaterThanOrEqual(OUTBOX_MS - 50);
    expect(m).toEqual({ type: 'EXPIRE', src: nobody, payload: { code: 'user_not_found', msg: `User "${nobody}" is not logged in.`, request: 'OFFER' } });
    await a.quiet(1200);
    // Nothing is left for it: it arrives to an empty inbox.
    const late = await peer(nobody);
    await late.quiet(100);
    a.close();
    late.close();
  }, 15_000);

  test(`what is held is bounded: ${OUTBOX_PEERS} absent ids, ${OUTBOX_MESSAGES} messages each; beyond, EXPIRE at once`, async () => {
    const a = await peer(uniq('a'));
    const absent = Array.from({ length: OUTBOX_PEERS + 1 }, () => uniq('absent'));
    for (const [i, id] of absent.entries()) a.send({ type: 'OFFER', dst: id, payload: offer(i) });
    expect(await a.next()).toMatchObject({ type: 'EXPIRE', src: absent.at(-1), payload: { code: 'user_not_found', request: 'OFFER' } });
    for (let i = 1; i <= OUTBOX_MESSAGES; i++) a.send({ type: 'CANDIDATE', dst: absent[0]!, payload: cand(i) });
    expect(await a.next()).toMatchObject({ type: 'EXPIRE', src: absent[0], payload: { code: 'user_not_found', request: 'CANDIDATE' } });
    await a.quiet(100);
    // The sender's session ends: what it held goes with it.
    await a.close();
    if (inProcess) await eventually(() => srv.hub!.census().outbox === 0, 2000, 'the outbox is empty');
  });

  test('a dropped socket comes back with the same id and token within the grace period: links and messages kept', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const raw = await RawClient.connect(urlFor(an, 'secret-a'));
    expect(await rawNext(raw)).toEqual({ type: 'OPEN' });
    const b = await peer(bn);
    raw.sendJson({ type: 'OFFER', dst: bn, payload: offer() });
    expect(await b.next()).toMatchObject({ type: 'OFFER', src: an });
    raw.destroy(); // the network drops: no close frame
    await Bun.sleep(200);
    // Meanwhile b answers and sends candidates: kept for a.
    b.send({ type: 'ANSWER', dst: an, payload: answer() });
    b.send({ type: 'CANDIDATE', dst: an, payload: cand(7) });
    await b.quiet(100); // PeerJS has no word for "reconnecting": b hears nothing
    // Another token cannot take the id meanwhile.
    const thief = await Client.connect(urlFor(an, 'guess'));
    expect(await thief.next()).toMatchObject({ type: 'ID-TAKEN' });
    const back = await Client.connect(urlFor(an, 'secret-a'));
    expect(await back.next()).toEqual({ type: 'OPEN' });
    expect(await back.next()).toMatchObject({ type: 'ANSWER', src: bn });
    expect(await back.next()).toMatchObject({ type: 'CANDIDATE', src: bn, payload: cand(7) });
    back.send({ type: 'CANDIDATE', dst: bn, payload: cand(8) });
    expect(await b.next()).toMatchObject({ type: 'CANDIDATE', src: an, payload: cand(8) });
    back.close();
    b.close();
  });

  test('after the grace period the id is free and the session gone', async () => {
    const an = uniq('a');
    const raw = await RawClient.connect(urlFor(an, 'old'));
    expect(await rawNext(raw)).toEqual({ type: 'OPEN' });
    raw.destroy();
    await Bun.sleep(2200); // graceMs 1500
    (await peer(an, 'new')).close();
  });

  test('peer.disconnect() / destroy() (no close code) and a page going away (1001) free the id at once', async () => {
    for (const code of [undefined, 1000, 1001]) {
      const an = uniq('a');
      const raw = await RawClient.connect(urlFor(an, 'first'));
      expect(await rawNext(raw)).toEqual({ type: 'OPEN' });
      raw.socket.write(closeFrame(code));
      await raw.ended;
      // A reloaded page has a new random token: the id is its at once.
      (await peer(an, 'second')).close();
    }
  });
});

/** A masked close frame, with no code or with `code`. */
function closeFrame(code?: number): Buffer {
  const payload = code === undefined ? Buffer.alloc(0) : Buffer.from([code >> 8, code & 0xff]);
  const out = Buffer.alloc(6 + payload.length);
  out[0] = 0x88;
  out[1] = 0x80 | payload.length;
  for (let i = 0; i < payload.length; i++) out[6 + i] = payload[i]!; // mask of zeros
  return out;
}

describe('PeerJS: limits and auth', () => {
  let limited: TestServer;
  beforeAll(async () => {
    limited = await startServer({ maxConnectionsPerIp: 0, maxUsers: 2, rate: 5, burst: 5, maxFrame: 1024 });
  });
  afterAll(() => limited.stop());

  test('the same caps: users (ERROR server_full), frame size (1009), rate (ERROR rate_limited)', async () => {
    // One node (--max-users counts the users of a node).
    const base = limited.url;
    const a = await peer(uniq('a'), undefined, base);
    const b = await peer(uniq('b'), undefined, base);
    const c = await Client.connect(urlFor(uniq('c'), 't', 'peerjs', base));
    expect(await c.next()).toMatchObject({ type: 'ERROR', payload: { code: 'server_full' } });
    await c.closed;
    for (let i = 0; i < 10; i++) a.send({ type: 'HEARTBEAT' });
    expect(await a.next()).toMatchObject({ type: 'ERROR', payload: { code: 'rate_limited' } });
    b.send({ type: 'OFFER', dst: 'x', payload: { sdp: 'x'.repeat(2000) } });
    expect((await b.closed).code).toBe(1009);
    a.close();
  });

  test('with --auth-secret: a JWT in the token parameter, whose sub is the id; it also resumes', async () => {
    const secret = 'a-test-secret-that-is-at-least-32-chars';
    const authed = await startServer({ maxConnectionsPerIp: 0, authSecret: secret, graceMs: 1500 });
    try {
      const now = Math.floor(Date.now() / 1000);
      const jwt = (sub: string, exp = now + 60) => sign({ sub, exp }, secret, 'HS256');
      const id = uniq('alice');
      const good = await jwt(id);
      const raw = await RawClient.connect(urlFor(id, good, 'peerjs', authed.url));
      expect(await rawNext(raw)).toEqual({ type: 'OPEN' });
      for (const [token, msg] of [
        ['random-peerjs-token', 'Invalid or expired token'],
        [await jwt(id, now - 60), 'Invalid or expired token'],
        [await jwt(uniq('someone-else')), 'Your token does not allow this name. Log in with the name in your token.'],
      ] as const) {
        const c = await Client.connect(urlFor(uniq('x'), token, 'peerjs', authed.url));
        const m = await c.next();
        expect(m.type).toBe('ERROR');
        expect(m.payload.msg).toBe(msg);
        await c.closed;
      }
      // The JWT is the session's token: a dropped socket resumes with it.
      raw.destroy();
      await Bun.sleep(100);
      const back = await Client.connect(urlFor(id, good, 'peerjs', authed.url));
      expect(await back.next()).toEqual({ type: 'OPEN' });
      back.close();
    } finally {
      await authed.stop();
    }
  });
});

describe('PeerJS: options', () => {
  test('--peerjs-path and --peerjs-key move the endpoints; --discovery lists ids (401 without); --allowed-origins holds', async () => {
    const other = await startServer({ maxConnectionsPerIp: 0, peerjsPath: '/myapp', peerjsKey: 'k1', discovery: true, allowedOrigins: ['http://good.example'] });
    try {
      // CORS only for allowed origins, and the WebSocket refused to the others, as for the seed.
      const idFrom = (origin: string) => fetch(`${other.http}/myapp/k1/id`, { headers: { Origin: origin } });
      expect((await idFrom('http://good.example')).headers.get('access-control-allow-origin')).toBe('http://good.example');
      expect((await idFrom('http://evil.example')).headers.get('access-control-allow-origin')).toBeNull();
      const ws = peerUrl(new URL('/myapp/', other.url).href, { key: 'k1', id: uniq('o'), token: 't' });
      await expect(RawClient.connect(ws, { Origin: 'http://evil.example' })).rejects.toThrow('403');
      const base = new URL('/myapp/', other.url).href;
      const id = uniq('p');
      const c = await Client.connect(peerUrl(base, { key: 'k1', id, token: 't' }));
      expect(await c.next()).toEqual({ type: 'OPEN' });
      expect((await fetch(`${other.http}/myapp/k1/id`)).status).toBe(200);
      expect(await (await fetch(`${other.http}/myapp/k1/peers`)).json()).toContain(id);
      expect((await fetch(`${other.http}/myapp/wrong/peers`)).status).toBe(401);
      // Not at the default path any more.
      expect((await fetch(`${other.http}/peerjs`)).status).toBe(404);
      c.close();
    } finally {
      await other.stop();
    }
    expect((await fetch(`${srv.http}/peerjs/peers`)).status).toBe(401);
  });

  test('--no-peerjs: no endpoints', async () => {
    const off = await startServer({ peerjs: false });
    try {
      expect((await fetch(`${off.http}/peerjs/id`)).status).toBe(404);
      await expect(RawClient.connect(urlFor('x', 't', 'peerjs', off.url))).rejects.toThrow('404');
    } finally {
      await off.stop();
    }
  });
});

describe('PeerJS: counted with everything else', () => {
  skipNotice('the PeerJS metrics test reads hub.stats');
  test.skipIf(!inProcess)('relays, errors and logins land in hub.stats', async () => {
    const stats = srv.hub!.stats;
    const before = { offers: stats.relayed.offer, mismatch: stats.errors.protocol_mismatch, logins: stats.logins, failures: { ...stats.loginFailures } };
    const [an, bn, sn] = [uniq('a'), uniq('b'), uniq('s')];
    const [a, b] = [await peer(an), await peer(bn)];
    const s = await Client.connect(srv.url);
    await s.login(sn);
    a.send({ type: 'OFFER', dst: bn, payload: offer() });
    await b.next();
    a.send({ type: 'OFFER', dst: sn, payload: offer() });
    await a.next();
    expect(stats.relayed.offer - before.offers).toBe(1);
    expect(stats.errors.protocol_mismatch - before.mismatch).toBe(1);
    expect(stats.logins - before.logins).toBe(3);
    // Refused logins, once each: one the hub refuses (ID-TAKEN), one refused at the handshake.
    const taken = await Client.connect(urlFor(an, 'not-the-token'));
    expect((await taken.next()).type).toBe('ID-TAKEN');
    const badKey = await Client.connect(urlFor(uniq('k'), 't', 'wrong'));
    expect((await badKey.next()).type).toBe('INVALID-KEY');
    expect(stats.loginFailures.name_taken - before.failures.name_taken).toBe(1);
    expect(stats.loginFailures.unauthorized - before.failures.unauthorized).toBe(1);
    for (const x of [a, b, s]) x.close();
  });
});

if (target === 'cluster') console.warn('PeerJS wire tests: consecutive clients land on different nodes');
