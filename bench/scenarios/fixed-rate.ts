/**
 * Fixed rate: 5,000 candidate messages per second spread round-robin over 50 pairs.
 * Latency is measured from when each message was due, not when it was written, so a
 * stalled generator or server shows up as latency instead of hiding (coordinated omission).
 */
import { CpuWatch } from '../lib/proc.ts';
import { openLoggedIn, setupCall } from '../lib/session.ts';
import { Histogram, round } from '../lib/stats.ts';
import { flushAll, startsWith, textOf, type WsConn } from '../lib/ws-client.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

export async function fixedRate(
  ctx: ScenarioContext,
  { pairs = 50, rate = 5000, warmupMs = 500, measureMs = ctx.quick ? 2000 : 5000 } = {},
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
  const R = 4096; // in flight per pair before the run counts as saturated
  const dueAt = new Float64Array(pairs * R);
  const head = new Int32Array(pairs);
  const tail = new Int32Array(pairs);
  const hist = new Histogram();
  let unexpected = 0;
  let overflow = false;
  const samples: string[] = [];
  let closing = false; // a partner's `leave` on close is expected, not an error
  const odd = (bytes: Uint8Array, s: number, e: number) => {
    if (closing) return;
    unexpected++;
    if (samples.length < 3) samples.push(textOf(bytes, s, Math.min(e, s + 200)));
  };

  const t0 = performance.now() + 20;
  const mStart = t0 + warmupMs;
  const mEnd = mStart + measureMs;
  const total = Math.round(((warmupMs + measureMs) * rate) / 1000);
  for (let p = 0; p < pairs; p++) {
    senders[p]!.listen((_c, bytes, s, e) => odd(bytes, s, e));
    receivers[p]!.listen((_c, bytes, s, e, now) => {
      if (!startsWith(bytes, s, e, d.candidateIn)) return odd(bytes, s, e);
      const due = dueAt[p * R + (tail[p]!++ & (R - 1))]!;
      if (due >= mStart && due < mEnd) hist.record(now - due);
    });
  }

  let sent = 0;
  const step = 1000 / rate;
  let cpu: CpuWatch | null = null;
  let usage = { server: Number.NaN, generator: Number.NaN, others: Number.NaN, perPid: [] as number[] };
  await new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      const now = performance.now();
      if (cpu === null && now >= mStart) cpu = new CpuWatch(ctx.serverPids);
      const due = Math.min(total, Math.floor((now - t0) / step) + 1);
      for (; sent < due; sent++) {
        const p = sent % pairs;
        if (head[p]! - tail[p]! >= R) {
          overflow = true;
          continue;
        }
        senders[p]!.send(frames[p]!);
        dueAt[p * R + (head[p]!++ & (R - 1))] = t0 + sent * step;
      }
      flushAll();
      if (sent >= total) {
        clearInterval(timer);
        usage = (cpu as CpuWatch | null)?.stop() ?? usage;
        resolve();
      }
    }, 1);
  });
  for (let i = 0; i < 150 && head.some((h, p) => h !== tail[p]); i++) await Bun.sleep(20);
  const lost = head.reduce((n, h, p) => n + (h - tail[p]!), 0);
  closing = true;
  await Promise.all([...senders, ...receivers].map((c) => c.close(1000, 2000)));

  const notes: string[] = [];
  if (unexpected > 0) notes.push(`${unexpected} unexpected frames, e.g. ${samples.join(' | ')}`);
  if (lost > 0) notes.push(`${lost} messages never arrived`);
  if (overflow) notes.push(`more than ${R} messages in flight on a pair: the server could not keep up with ${rate}/s`);
  return {
    figures: {
      rate,
      delivered: hist.count,
      p50Ms: round(hist.percentile(0.5), 3),
      p99Ms: round(hist.percentile(0.99), 3),
      maxMs: round(hist.max, 3),
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
