/**
 * Idle: N logged-in connections that send nothing. Server RSS before and after (after the
 * logins settle), and the difference per connection.
 */
import { rssBytes } from '../lib/proc.ts';
import { createAddressPool, openLoggedIn } from '../lib/session.ts';
import { round } from '../lib/stats.ts';
import type { WsConn } from '../lib/ws-client.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

export async function idle(
  ctx: ScenarioContext,
  { count = ctx.quick ? 5000 : 10_000, settleMs = 2000, concurrency = 128 } = {},
): Promise<ScenarioResult> {
  const { target, tag, server } = ctx;
  await Bun.sleep(500);
  const before = rssBytes(server.pid);
  const addr = createAddressPool(2, 64);
  const conns: WsConn[] = [];
  const errors: string[] = [];
  let next = 0;
  let failed = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count && failed < 100) {
        const i = next++;
        try {
          conns.push((await openLoggedIn(target, `${tag}i${i}`, addr())).conn);
        } catch (e) {
          failed++;
          if (errors.length < 3) errors.push(String((e as Error).message).slice(0, 200));
        }
      }
    }),
  );
  const rampMs = performance.now() - t0;
  await Bun.sleep(settleMs);
  const after = rssBytes(server.pid);
  const open = conns.filter((c) => c.state === 'open').length;
  for (const c of conns) c.terminate();
  return {
    figures: {
      connections: open,
      rssBeforeMB: round(before / 2 ** 20, 1),
      rssAfterMB: round(after / 2 ** 20, 1),
      kbPerConn: round((after - before) / open / 1024, 2),
      connectPerSec: Math.round(open / (rampMs / 1000)),
      failed,
    },
    notes: errors.length ? [`${failed} connections failed, e.g. ${errors.join(' | ')}`] : [],
  };
}
