import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { Client, loggedIn, startServer, type TestServer } from './helpers.ts';

let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ maxConnectionsPerIp: 0, roomSize: 4, roomsPerUser: 2 });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;

/** Everyone joins `room` in order; returns once each has seen every later joiner. */
async function joinAll(room: string, clients: Client[]) {
  for (const c of clients) {
    c.send({ type: 'join', room });
    await c.nextOfType('joined');
  }
  await Promise.all(
    clients.map(async (c, i) => {
      for (let k = i + 1; k < clients.length; k++) await c.nextOfType('peer-joined');
    }),
  );
}

describe('rooms', () => {
  test('join: the joiner gets the members, the members get peer-joined', async () => {
    const room = uniq('room');
    const [an, bn, cn] = [uniq('a'), uniq('b'), uniq('c')];
    const [a, b, c] = (await loggedIn(srv.url, an, bn, cn)) as [Client, Client, Client];
    a.send({ type: 'join', room });
    expect(await a.next()).toEqual({ type: 'joined', room, peers: [] });
    b.send({ type: 'join', room });
    expect(await b.next()).toEqual({ type: 'joined', room, peers: [an] });
    expect(await a.next()).toEqual({ type: 'peer-joined', room, name: bn });
    c.send({ type: 'join', room });
    expect(await c.next()).toEqual({ type: 'joined', room, peers: [an, bn] });
    expect(await a.next()).toEqual({ type: 'peer-joined', room, name: cn });
    expect(await b.next()).toEqual({ type: 'peer-joined', room, name: cn });
    // Joining again is harmless: the same answer, nobody told twice.
    c.send({ type: 'join', room });
    expect(await c.next()).toEqual({ type: 'joined', room, peers: [an, bn] });
    await Promise.all([a.quiet(50), b.quiet(0)]);
    for (const x of [a, b, c]) x.close();
  });

  test('a 4-person room: every pair completes offer, answer and candidates directly', async () => {
    const room = uniq('mesh');
    const names = [uniq('p'), uniq('p'), uniq('p'), uniq('p')];
    const clients = await loggedIn(srv.url, ...names);
    await joinAll(room, clients);
    // Each member calls every member that joined after it: the mesh of a group call.
    for (let i = 0; i < 4; i++) {
      for (let j = i + 1; j < 4; j++) {
        const [x, y, xn, yn] = [clients[i]!, clients[j]!, names[i]!, names[j]!];
        x.send({ type: 'offer', name: yn, offer: `offer ${i}->${j}` });
        expect(await y.next()).toEqual({ type: 'offer', offer: `offer ${i}->${j}`, name: xn });
        y.send({ type: 'answer', name: xn, answer: `answer ${j}->${i}` });
        expect(await x.next()).toEqual({ type: 'answer', answer: `answer ${j}->${i}`, name: yn });
        x.send({ type: 'candidate', name: yn, candidate: { candidate: `c${i}${j}` } });
        y.send({ type: 'candidate', name: xn, candidate: { candidate: `c${j}${i}` } });
        expect(await y.next()).toEqual({ type: 'candidate', candidate: { candidate: `c${i}${j}` }, name: xn });
        expect(await x.next()).toEqual({ type: 'candidate', candidate: { candidate: `c${j}${i}` }, name: yn });
      }
    }
    // Mesh offers are not 1:1 calls: nobody is busy for an outsider.
    const [out] = (await loggedIn(srv.url, uniq('outsider'))) as [Client];
    out.send({ type: 'offer', name: names[0], offer: 'direct' });
    expect(await clients[0]!.next()).toEqual({ type: 'offer', offer: 'direct', name: out.log[0]!.name });
    await Promise.all(clients.slice(1).map((c) => c.quiet(50)));
    for (const c of [...clients, out]) c.close();
  });

  test('an outsider cannot send answers or candidates to a room member', async () => {
    const room = uniq('room');
    const [an, bn, mn] = [uniq('a'), uniq('b'), uniq('m')];
    const [a, b, m] = (await loggedIn(srv.url, an, bn, mn)) as [Client, Client, Client];
    for (const c of [a, b]) {
      c.send({ type: 'join', room });
      await c.nextOfType('joined');
    }
    m.send({ type: 'answer', name: an, answer: 'evil' });
    expect(await m.next()).toMatchObject({ code: 'not_in_call' });
    await a.next((x) => x.type === 'peer-joined');
    await a.quiet(50);
    for (const x of [a, b, m]) x.close();
  });

  test('leave-room and close send peer-left; an empty room is deleted', async () => {
    const room = uniq('room');
    const [an, bn, cn] = [uniq('a'), uniq('b'), uniq('c')];
    const [a, b, c] = (await loggedIn(srv.url, an, bn, cn)) as [Client, Client, Client];
    await joinAll(room, [a, b, c]);
    b.send({ type: 'leave-room', room });
    expect(await b.next()).toEqual({ type: 'left', room });
    expect(await a.next()).toEqual({ type: 'peer-left', room, name: bn });
    expect(await c.next()).toEqual({ type: 'peer-left', room, name: bn });
    // After leaving, the room's link is gone.
    b.send({ type: 'candidate', name: an, candidate: 'x' });
    b.send({ type: 'leave-room', room });
    expect(await b.next((m) => m.request === 'leave-room')).toMatchObject({ type: 'error', code: 'not_in_room', room });
    await c.close();
    expect(await a.next()).toEqual({ type: 'peer-left', room, name: cn });
    a.send({ type: 'leave-room', room });
    expect(await a.next()).toEqual({ type: 'left', room });
    if (srv.hub) expect(srv.hub.rooms.has(room)).toBe(false);
    a.close();
    b.close();
  });

  test('room_full and too_many_rooms', async () => {
    const room = uniq('small');
    const names = Array.from({ length: 5 }, () => uniq('u'));
    const clients = await loggedIn(srv.url, ...names);
    for (const c of clients.slice(0, 4)) {
      c.send({ type: 'join', room });
      await c.nextOfType('joined');
    }
    clients[4]!.send({ type: 'join', room });
    expect(await clients[4]!.next()).toMatchObject({ type: 'error', code: 'room_full', room, request: 'join' });
    const x = clients[4]!;
    x.send({ type: 'join', room: uniq('r') });
    await x.nextOfType('joined');
    x.send({ type: 'join', room: uniq('r') });
    await x.nextOfType('joined');
    x.send({ type: 'join', room: uniq('r') });
    expect(await x.next()).toMatchObject({ type: 'error', code: 'too_many_rooms' });
    for (const c of clients) c.close();
  });

  test('room names follow the name rules', async () => {
    const [a] = (await loggedIn(srv.url, uniq('a'))) as [Client];
    a.send({ type: 'join', room: '' });
    expect(await a.next()).toMatchObject({ type: 'error', code: 'invalid_message', field: 'room' });
    a.send({ type: 'join', room: 'x'.repeat(65) });
    expect(await a.next()).toMatchObject({ code: 'invalid_message', field: 'room' });
    a.send({ type: 'join', room: '__proto__' });
    expect(await a.next()).toEqual({ type: 'joined', room: '__proto__', peers: [] });
    a.close();
  });

  test('join before login is refused', async () => {
    const c = await Client.connect(srv.url);
    c.send({ type: 'join', room: 'r' });
    expect(await c.next()).toMatchObject({ code: 'not_logged_in' });
    c.close();
  });
});
