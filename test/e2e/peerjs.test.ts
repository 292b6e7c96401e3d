import { describe, expect } from 'bun:test';
import { join } from 'node:path';
import { browserSuite } from './harness.ts';

/**
 * The real `peerjs` client (npm peerjs 1.5.5) in two headless Chromium pages, pointed at
 * signalbox by host and port: on one node, then on a two-node cluster with each page on a
 * different node. peerjs-runner.ts drives the pages in a loopback-only namespace and
 * reports facts; the tests here judge them.
 */
const TARGETS = ['one node', 'cluster'] as const;
const STEPS = ['open', 'data', 'media', 'reconnect', 'destroy'] as const;
const { facts, e2e } = browserSuite({
  runner: join(import.meta.dir, 'peerjs-runner.ts'),
  scenarios: TARGETS.flatMap((t) => STEPS.map((s) => `${t}: ${s}`)),
  args: () => [],
});

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

for (const where of TARGETS) {
  describe(`the peerjs client, ${where}`, () => {
    e2e('opens with an id the server hands out, and with one of its own', async () => {
      const f = await facts(`${where}: open`);
      expect(f.a).toMatch(UUID);
      expect(f.b).toBe(`bob-${where}`);
      // In the cluster the two pages really are on different nodes.
      expect(f.nodes).toBe(where === 'cluster');
      expect(f.pageErrors).toEqual([]);
    });

    e2e('peer.connect() opens a DataConnection; messages cross both ways', async () => {
      const f = await facts(`${where}: data`);
      const { a } = await facts(`${where}: open`);
      expect(f.b).toEqual([`${a}: hello from a`]);
      expect(f.a).toEqual([`bob-${where}: hello from b`]);
    });

    e2e('peer.call() with the fake camera delivers a MediaStream with frames, both ways', async () => {
      const f = await facts(`${where}: media`);
      for (const side of [f.a, f.b]) {
        expect(side.frames).toBeGreaterThan(0);
        expect(side.width).toBeGreaterThan(0);
      }
    });

    e2e('a dropped signaling socket reconnects with the same id within the grace period; what waited arrives', async () => {
      const f = await facts(`${where}: reconnect`);
      const { a } = await facts(`${where}: open`);
      // Meanwhile the id stayed a's (on every node): the session was held, not ended.
      expect(f.thief).toEqual([`unavailable-id: ID "${a}" is taken`]);
      // Same id both times, after the client's own "Lost connection to server".
      expect(f.opened).toEqual([a, a]);
      expect(f.errors).toEqual(['network: Lost connection to server.']);
      // b's connection made while a was away opened once a was back; the first one survived.
      expect(f.a).toEqual([`bob-${where}: hello from b`, `bob-${where}: while you were away`]);
      expect(f.b).toEqual([`${a}: hello from a`, `${a}: still here`]);
    });

    e2e('peer.destroy() on one side is seen by the other, and frees the id at once', async () => {
      const f = await facts(`${where}: destroy`);
      const b = `bob-${where}`;
      // Both data connections to b close on a's side, the one a opened and the one b opened.
      expect(f.closed.filter((c: string) => c.startsWith(`data ${b} dc_`))).toHaveLength(2);
      expect(f.again.opened).toEqual([b]);
      expect(f.again.errors).toEqual([]);
    });
  });
}
