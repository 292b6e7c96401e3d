import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Client, type Json, loggedIn, startServer, type TestServer } from './helpers.ts';
import { RawClient } from './raw-client.ts';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ maxConnectionsPerIp: 0, graceMs: 1500, queueMessages: 8 });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;

/** The next frame a raw client receives, parsed. */
async function rawNext(c: RawClient, ms = 2000): Promise<Json> {
  const deadline = Date.now() + ms;
  while (c.texts.length === 0) {
    if (Date.now() > deadline) throw new Error('no frame');
    await Bun.sleep(5);
  }
  return JSON.parse(c.texts.shift()!);
}

/** A resumable user on a raw socket (so the test can cut it like a dropped network). */
async function resumable(name: string) {
  const raw = await RawClient.connect(srv.url);
  raw.sendJson({ type: 'login', name, resumable: true });
  const reply = await rawNext(raw);
  expect(reply).toMatchObject({ type: 'login', success: true, name, resumed: false });
  expect(reply.resume).toMatch(/^[\w-]{22}$/);
  return { raw, token: reply.resume as string };
}

describe('reconnect and resume', () => {
  test('a seed client (no resumable) keeps the seed behaviour: leave at once, no token', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    expect(a.log[0]!.resume).toBeUndefined();
    a.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    await a.close(4100); // even an abnormal code: not resumable, so no grace
    expect(await b.next()).toEqual({ type: 'leave', name: an });
    b.close();
  });

  test('a socket cut mid-call resumes within grace, keeps its call, gets every queued message in order', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const { raw, token } = await resumable(an);
    const [b] = (await loggedIn(srv.url, bn)) as [Client];
    raw.sendJson({ type: 'offer', name: bn, offer: 'sdp' });
    expect(await b.next()).toEqual({ type: 'offer', offer: 'sdp', name: an });
    raw.destroy(); // the network drops: no close frame
    expect(await b.next()).toEqual({ type: 'peer-disconnected', name: an });
    // Meanwhile b keeps signalling: accepted, queued.
    b.send({ type: 'answer', name: an, answer: 'sdp' });
    for (let i = 0; i < 3; i++) b.send({ type: 'candidate', name: an, candidate: `c${i}` });
    await b.quiet(100);

    const back = await Client.connect(srv.url);
    back.send({ type: 'login', name: an, resume: token });
    const reply = await back.next();
    expect(reply).toMatchObject({ type: 'login', success: true, name: an, resumed: true });
    expect(reply.resume).not.toBe(token);
    expect(await back.next()).toEqual({ type: 'answer', answer: 'sdp', name: bn });
    for (let i = 0; i < 3; i++) expect(await back.next()).toEqual({ type: 'candidate', candidate: `c${i}`, name: bn });
    expect(await b.next()).toEqual({ type: 'peer-reconnected', name: an });
    // The call goes on: the link survived.
    back.send({ type: 'candidate', name: bn, candidate: 'after' });
    expect(await b.next()).toEqual({ type: 'candidate', candidate: 'after', name: an });
    b.send({ type: 'leave', name: an });
    expect(await back.next()).toEqual({ type: 'leave', name: bn });
    await back.quiet(50);
    back.close();
    b.close();
  });

  test('grace expiry: the partner gets leave, rooms get peer-left, the name is free', async () => {
    const [an, bn, cn] = [uniq('a'), uniq('b'), uniq('c')];
    const room = uniq('room');
    const { raw } = await resumable(an);
    const [b, c] = (await loggedIn(srv.url, bn, cn)) as [Client, Client];
    raw.sendJson({ type: 'join', room });
    await rawNext(raw);
    c.send({ type: 'join', room });
    await c.nextOfType('joined');
    raw.sendJson({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    const t0 = Date.now();
    raw.destroy();
    expect(await b.next()).toEqual({ type: 'peer-disconnected', name: an });
    expect(await c.next()).toEqual({ type: 'peer-disconnected', room, name: an });
    expect(await b.next(undefined, 4000)).toEqual({ type: 'leave', name: an });
    expect(await c.next(undefined, 4000)).toEqual({ type: 'peer-left', room, name: an });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(1400);
    const [again] = (await loggedIn(srv.url, an)) as [Client];
    expect(again.log[0]).toMatchObject({ success: true });
    for (const x of [again, b, c]) x.close();
  });

  test('while in grace: a login without the right token fails as for a live name', async () => {
    const an = uniq('a');
    const { raw, token } = await resumable(an);
    raw.destroy();
    await Bun.sleep(50);
    const x = await Client.connect(srv.url);
    x.send({ type: 'login', name: an });
    expect(await x.next()).toMatchObject({ type: 'login', success: false, reason: 'name_taken' });
    x.send({ type: 'login', name: an, resume: `${token.slice(0, -1)}${token.endsWith('A') ? 'B' : 'A'}` });
    expect(await x.next()).toMatchObject({ type: 'login', success: false, reason: 'name_taken' });
    x.send({ type: 'login', name: an, resume: token });
    expect(await x.next()).toMatchObject({ type: 'login', success: true, resumed: true });
    x.close(1000);
  });

  test('queue overflow is reported to the sender, never dropped silently', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const { raw, token } = await resumable(an);
    const [b] = (await loggedIn(srv.url, bn)) as [Client];
    raw.sendJson({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    raw.destroy();
    await b.nextOfType('peer-disconnected');
    for (let i = 0; i < 10; i++) b.send({ type: 'candidate', name: an, candidate: `c${i}` });
    // 8 fit (--queue-messages 8); the other 2 are refused, each with an error.
    expect(await b.next()).toMatchObject({ type: 'error', code: 'queue_full', name: an, request: 'candidate' });
    expect(await b.next()).toMatchObject({ type: 'error', code: 'queue_full' });
    await b.quiet(50);
    const back = await Client.connect(srv.url);
    back.send({ type: 'login', name: an, resume: token });
    await back.nextOfType('login');
    for (let i = 0; i < 8; i++) expect(await back.next()).toMatchObject({ candidate: `c${i}` });
    await back.quiet(50);
    back.close();
    b.close();
  });

  test('a deliberate close (1000) ends a resumable session at once', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const a = await Client.connect(srv.url);
    await a.login(an, { resumable: true });
    const [b] = (await loggedIn(srv.url, bn)) as [Client];
    a.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    await a.close(1000);
    expect(await b.next()).toEqual({ type: 'leave', name: an });
    b.close();
  });

  test('resuming while the old socket still looks alive takes the session over (4002)', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const old = await Client.connect(srv.url);
    const { resume } = await old.login(an, { resumable: true });
    const [b] = (await loggedIn(srv.url, bn)) as [Client];
    old.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    const fresh = await Client.connect(srv.url);
    fresh.send({ type: 'login', name: an, resume });
    expect(await fresh.next()).toMatchObject({ success: true, resumed: true });
    expect((await old.closed).code).toBe(4002);
    b.send({ type: 'candidate', name: an, candidate: 'to the new socket' });
    expect(await fresh.next((m) => m.type === 'candidate')).toMatchObject({ candidate: 'to the new socket' });
    fresh.close();
    b.close();
  });

  test('rooms survive a resume; the client gets a fresh snapshot', async () => {
    const [an, cn] = [uniq('a'), uniq('c')];
    const room = uniq('room');
    const { raw, token } = await resumable(an);
    const [c] = (await loggedIn(srv.url, cn)) as [Client];
    raw.sendJson({ type: 'join', room });
    await rawNext(raw);
    c.send({ type: 'join', room });
    await c.nextOfType('joined');
    raw.destroy();
    expect(await c.next((m) => m.type === 'peer-disconnected')).toEqual({ type: 'peer-disconnected', room, name: an });
    const back = await Client.connect(srv.url);
    back.send({ type: 'login', name: an, resume: token });
    await back.nextOfType('login');
    expect(await back.nextOfType('joined')).toEqual({ type: 'joined', room, peers: [cn] });
    expect(await c.next()).toEqual({ type: 'peer-reconnected', room, name: an });
    // Still a member: room events reach the resumed socket.
    c.send({ type: 'leave-room', room });
    expect(await back.next((m) => m.type === 'peer-left')).toEqual({ type: 'peer-left', room, name: cn });
    back.close();
    c.close();
  });

  test('a token for a session that already ended gives a fresh session (resumed: false)', async () => {
    const srv2 = await startServer({ graceMs: 100 });
    const raw = await RawClient.connect(srv2.url);
    raw.sendJson({ type: 'login', name: 'late', resumable: true });
    const { resume } = await rawNext(raw);
    raw.destroy();
    await Bun.sleep(400);
    const c = await Client.connect(srv2.url);
    c.send({ type: 'login', name: 'late', resume });
    expect(await c.next()).toMatchObject({ success: true, resumed: false });
    c.close();
    await srv2.stop();
  });

  test('--grace-ms 0 turns resume off', async () => {
    const srv2 = await startServer({ graceMs: 0 });
    const c = await Client.connect(srv2.url);
    const reply = await c.login('x', { resumable: true });
    expect(reply.resume).toBeUndefined();
    c.close();
    await srv2.stop();
  });
});
