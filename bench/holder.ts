/**
 * A generator process that opens `count` logged-in connections and holds them until its
 * stdin closes (or `maxLifetimeMs` passes). The capacity scenarios run several: one process
 * may open at most `ulimit -n` files, so no single generator can hold what a server holds.
 * Usage: bun bench/holder.ts '<json HolderJob>'. Prints one JSON line when all are open
 * (and, with `pairs`, in calls), and one more after stdin closes.
 */
import { DIALECTS, type DialectName } from './lib/dialect.ts';
import { createAddressPool, type Inbox, openLoggedIn, setupCall } from './lib/session.ts';
import type { WsConn } from './lib/ws-client.ts';

export interface HolderJob {
  host: string;
  /** Servers to spread the connections over (round-robin): one, or a cluster's nodes. */
  ports: number[];
  dialect: DialectName;
  count: number;
  prefix: string;
  addrBase: number;
  /** Logins in flight at once. */
  concurrency?: number;
  loginTimeoutMs?: number;
  /**
   * Then make connections 2j and 2j+1 call partners (offer, answer). With several ports
   * they sit on different servers (round-robin), so every call crosses between processes.
   */
  pairs?: boolean;
  maxLifetimeMs?: number;
}

const job = JSON.parse(process.argv[2] ?? '{}') as HolderJob;
const { host, ports, count, prefix, addrBase, concurrency = 256, loginTimeoutMs = 15_000, maxLifetimeMs = 300_000 } = job;
const dialect = DIALECTS[job.dialect];
const addr = createAddressPool(addrBase, 64);
const held: Array<{ conn: WsConn; inbox: Inbox } | undefined> = new Array(count);
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
        held[i] = await openLoggedIn({ host, port, dialect }, `${prefix}${i}`, addr(), loginTimeoutMs);
      } catch (e) {
        failed++;
        if (errors.length < 3) errors.push(String((e as Error).message).slice(0, 200));
      }
    }
  }),
);
const loginMs = Math.round(performance.now() - t0);

let calls = 0;
let callsFailed = 0;
let callMs = 0;
if (job.pairs) {
  const t1 = performance.now();
  let j = 0;
  await Promise.all(
    Array.from({ length: Math.min(concurrency, count >> 1) }, async () => {
      while (2 * j + 1 < count && callsFailed < 500) {
        const a = held[2 * j];
        const b = held[2 * j + 1];
        const names: [string, string] = [`${prefix}${2 * j}`, `${prefix}${2 * j + 1}`];
        j++;
        if (a === undefined || b === undefined) continue;
        try {
          await setupCall({ host, port: ports[0]!, dialect }, a.inbox, b.inbox, names, loginTimeoutMs);
          calls++;
        } catch (e) {
          callsFailed++;
          if (errors.length < 6) errors.push(String((e as Error).message).slice(0, 200));
        }
      }
    }),
  );
  callMs = Math.round(performance.now() - t1);
}

const open = () => held.filter((h) => h !== undefined && h.conn.state === 'open').length;
console.log(JSON.stringify({ held: open(), failed, errors, ms: loginMs, calls, callsFailed, callMs }));

// Hold until told to stop; count what the server dropped meanwhile.
for await (const _ of process.stdin) break;
const stillOpen = open();
const dropped = held.filter((h) => h !== undefined).length - stillOpen;
// Why the dropped ones went: the close code the server sent (0: none, the TCP connection just ended).
const codes: Record<string, number> = {};
for (const h of held) if (h !== undefined && h.conn.state !== 'open') codes[h.conn.closeCode] = (codes[h.conn.closeCode] ?? 0) + 1;
for (const h of held) h?.conn.terminate();
console.log(JSON.stringify({ dropped, stillOpen, codes }));
process.exit(0);
