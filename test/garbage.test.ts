import { afterAll, beforeAll, describe, expect, test } from 'bun:test';
import { GARBAGE } from './corpus.ts';
import { Client, loggedIn, startServer, target, type TestServer } from './helpers.ts';
import { RawClient } from './raw-client.ts';

/**
 * A corpus of hostile frames. Each one gets exactly one error (or a documented close),
 * and afterwards the connection (where it stays open) and the server still work.
 */
let srv: TestServer;
beforeAll(async () => {
  srv = await startServer({ maxFrame: 2 * 1024 * 1024, rate: 0, maxConnectionsPerIp: 0 });
});
afterAll(() => srv.stop());

let seq = 0;
const uniq = (base: string) => `${base}-${++seq}`;

async function expectOneError(c: Client, frame: string | Uint8Array, code: string) {
  c.ws.send(frame);
  const reply = await c.next();
  expect(reply.type === 'error' ? reply.code : `${reply.type}:${reply.reason}`).toBe(code);
  await c.quiet(20);
}

describe('garbage corpus', () => {
  const corpus = GARBAGE;

  for (const [what, frame, code] of corpus) {
    test(what, async () => {
      const c = await Client.connect(srv.url);
      await expectOneError(c, frame, code);
      await c.login(uniq('after'));
      c.close();
    });
  }

  test('a thousand unknown types, one error each, in order', async () => {
    const c = await Client.connect(srv.url);
    for (let i = 0; i < 1000; i++) c.send({ type: `unknown-${i}` });
    await c.waitFor(1000);
    const replies = c.received.splice(0);
    expect(replies.map((r) => r.message)).toEqual(Array.from({ length: 1000 }, (_, i) => `Command not found: unknown-${i}`));
    await c.quiet(50);
    await c.login(uniq('after'));
    c.close();
  });

  test('a logged-in user sending garbage keeps its call', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send({ type: 'offer', name: bn, offer: 'sdp' });
    await b.next();
    for (const [, frame, code] of corpus.filter(([, , code]) => code !== 'not_logged_in' && code !== 'login:invalid_name')) {
      await expectOneError(a, frame, code);
    }
    a.send({ type: 'candidate', name: bn, candidate: 'still here' });
    expect(await b.next()).toEqual({ type: 'candidate', candidate: 'still here', name: an });
    a.close();
    b.close();
  });

  test('a deeply nested payload is relayed or refused, never a crash', async () => {
    const [an, bn] = [uniq('a'), uniq('b')];
    const [a, b] = (await loggedIn(srv.url, an, bn)) as [Client, Client];
    a.send(`{"type":"offer","name":${JSON.stringify(bn)},"offer":${'{"a":'.repeat(10_000)}1${'}'.repeat(10_000)}}`);
    const [toB, toA] = await Promise.race([
      b.next().then((m) => [m, null] as const),
      a.next().then((m) => [null, m] as const),
    ]);
    if (toB) expect(toB.type).toBe('offer');
    else expect(toA!.type).toBe('error');
    expect(srv.hub?.stats.errors.internal ?? 0).toBe(0);
    a.close();
    b.close();
  });

  test('invalid UTF-8 in a text frame closes that connection with 1007; the server stays up', async () => {
    const raw = await RawClient.connect(srv.url);
    raw.socket.write(Buffer.from([0x81, 0x82, 0, 0, 0, 0, 0xff, 0xfe])); // masked text frame, key 0
    await Promise.race([raw.ended, Bun.sleep(2000)]);
    // Deno's WebSocket layer refuses the frame before our code sees it and drops the
    // connection without a close frame; on Bun the client gets 1007.
    if (target === 'deno') expect(raw.socket.destroyed).toBe(true);
    else expect(raw.closeCode).toBe(1007);
    raw.destroy();
    const [c] = await loggedIn(srv.url, uniq('still-up'));
    c!.close();
  });
});
