/**
 * A generator process that opens `count` logged-in connections and holds them until its
 * stdin closes (or `maxLifetimeMs` passes). The capacity scenario runs several: one process
 * may open at most `ulimit -n` files, so no single generator can hold what a server holds.
 * Usage: bun bench/holder.ts '<json HolderJob>'. Prints one JSON line when all are open.
 */
import { DIALECTS, type DialectName } from './lib/dialect.ts';
import { createAddressPool, openLoggedIn } from './lib/session.ts';
import type { WsConn } from './lib/ws-client.ts';

export interface HolderJob {
  host: string;
  /** Servers to spread the connections over (round-robin): one today, several in a cluster. */
  ports: number[];
  dialect: DialectName;
  count: number;
  prefix: string;
  addrBase: number;
  concurrency?: number;
  maxLifetimeMs?: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as HolderJob;
const { host, ports, count, prefix, addrBase, concurrency = 256, maxLifetimeMs = 300_000 } = job;
const dialect = DIALECTS[job.dialect];
const addr = createAddressPool(addrBase, 64);
const held: WsConn[] = [];
const errors: string[] = [];
let failed = 0;
let next = 0;
setTimeout(() => process.exit(3), maxLifetimeMs).unref();

const t0 = performance.now();
await Promise.all(
  Array.from({ length: Math.min(concurrency, count) }, async () => {
    while (next < count && failed < 500) {
      const i = next++;
      const port = ports[i % ports.length]!;
      try {
        const { conn } = await openLoggedIn({ host, port, dialect }, `${prefix}${i}`, addr(), 15_000);
        held.push(conn);
      } catch (e) {
        failed++;
        if (errors.length < 3) errors.push(String((e as Error).message).slice(0, 200));
      }
    }
  }),
);
const stillOpen = held.filter((c) => c.state === 'open').length;
console.log(JSON.stringify({ held: stillOpen, failed, errors, ms: Math.round(performance.now() - t0) }));

// Hold until told to stop; count what the server dropped meanwhile.
for await (const _ of process.stdin) break;
const dropped = held.filter((c) => c.state !== 'open').length;
for (const c of held) c.terminate();
console.log(JSON.stringify({ dropped }));
process.exit(0);
