/**
 * Throughput: 50 logged-in pairs; each sender keeps 32 candidate messages (~250 bytes)
 * in flight, sending one more whenever its receiver gets one. Delivered messages per second
 * and latency (send → receipt) p50/p99 over the measured window.
 */
import { CpuWatch } from '../lib/proc.ts';
import { openLoggedIn, setupCall } from '../lib/session.ts';
import { Histogram, round } from '../lib/stats.ts';
import { startsWith, textOf, type WsConn } from '../lib/ws-client.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

export async function throughput(
  ctx: ScenarioContext,
  { pairs = 50, window = 32, warmupMs = ctx.quick ? 500 : 1000, measureMs = ctx.quick ? 2000 : 5000 } = {},
): Promise<ScenarioResult> {
  const { target, dialect: d, tag } = ctx;
  const senders: WsConn[] = [];
  const receivers: WsConn[] = [];
  for (let i = 0; i < pairs; i++) {
    const names: [string, string] = [`${tag}a${i}`, `${tag}b${i}`];
    const [a, b] = await Promise.all([openLoggedIn(target, names[0]), openLoggedIn(ctx.callee, names[1])]);
    await setupCall(target, a.inbox, b.inbox, names);
    senders.push(a.conn);
    receivers.push(b.conn);
  }
  const frames = receivers.map((_, i) => d.candidate(`${tag}b${i}`));
  // Per pair, a ring of send times: delivery is in order per pair, so the oldest is the one received.
  const R = 64;
  const sentAt = new Float64Array(pairs * R);
  const head = new Int32Array(pairs);
  const tail = new Int32Array(pairs);
  const hist = new Histogram();
  let measuring = false;
  let sending = true;
  let delivered = 0;
  let unexpected = 0;
  const samples: string[] = [];
  let closing = false; // a partner's `leave` on close is expected, not an error
  const odd = (bytes: Uint8Array, s: number, e: number) => {
    if (closing) return;
    unexpected++;
    if (samples.length < 3) samples.push(textOf(bytes, s, Math.min(e, s + 200)));
  };

  for (let p = 0; p < pairs; p++) {
    senders[p]!.listen((_c, bytes, s, e) => odd(bytes, s, e));
    receivers[p]!.listen((_c, bytes, s, e, now) => {
      if (!startsWith(bytes, s, e, d.candidateIn)) return odd(bytes, s, e);
      const t = sentAt[p * R + (tail[p]!++ & (R - 1))]!;
      if (measuring) {
        delivered++;
        hist.record(now - t);
      }
      if (sending) {
        senders[p]!.send(frames[p]!);
        sentAt[p * R + (head[p]!++ & (R - 1))] = now;
      }
    });
  }

  const t0 = performance.now();
  for (let p = 0; p < pairs; p++) {
    for (let k = 0; k < window; k++) {
      senders[p]!.send(frames[p]!);
      sentAt[p * R + (head[p]!++ & (R - 1))] = t0;
    }
  }
  await Bun.sleep(warmupMs);
  measuring = true;
  const cpu = new CpuWatch(ctx.serverPids);
  const m0 = performance.now();
  await Bun.sleep(measureMs);
  measuring = false;
  const secs = (performance.now() - m0) / 1000;
  const usage = cpu.stop();
  sending = false;
  // Let what is in flight arrive (bounded), then close.
  for (let i = 0; i < 100 && head.some((h, p) => h !== tail[p]); i++) await Bun.sleep(20);
  const lost = head.reduce((n, h, p) => n + (h - tail[p]!), 0);
  closing = true;
  await Promise.all([...senders, ...receivers].map((c) => c.close(1000, 2000)));

  const notes: string[] = [];
  if (unexpected > 0) notes.push(`${unexpected} unexpected frames, e.g. ${samples.join(' | ')}`);
  if (lost > 0) notes.push(`${lost} messages never arrived`);
  return {
    figures: {
      msgPerSec: Math.round(delivered / secs),
      // Per second of server CPU: steadier than msg/s when others share the machine.
      msgPerCpuSec: Math.round(delivered / secs / usage.server),
      p50Ms: round(hist.percentile(0.5), 3),
      p99Ms: round(hist.percentile(0.99), 3),
      serverCpu: usage.server,
      generatorCpu: usage.generator,
      otherCpu: usage.others,
      // In a cluster, Redis's share of the server CPU (the last of the server's processes).
      ...(ctx.redis ? { redisCpu: usage.perPid.at(-1) ?? Number.NaN } : {}),
      unexpected,
      lost,
    },
    notes,
  };
}
