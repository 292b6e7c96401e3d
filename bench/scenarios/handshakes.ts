/**
 * Handshakes: fresh pairs, each doing connect, login, offer, answer, 4 candidates each way,
 * leave and close, 16 pairs at a time. Completed calls per second and the p99 duration.
 */
import { CpuWatch } from '../lib/proc.ts';
import { callOnce, createAddressPool } from '../lib/session.ts';
import { percentileOf, round } from '../lib/stats.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

export async function handshakes(
  ctx: ScenarioContext,
  { concurrency = 16, warmupMs = 500, measureMs = ctx.quick ? 2000 : 5000, maxCalls = 200_000 } = {},
): Promise<ScenarioResult> {
  const { target, tag } = ctx;
  const addr = createAddressPool(2, 64);
  const durations: number[] = [];
  const errors: string[] = [];
  let failed = 0;
  let started = 0;
  const t0 = performance.now();
  const mStart = t0 + warmupMs;
  const mEnd = mStart + measureMs;
  let cpu: CpuWatch | null = null;
  let usage = { server: Number.NaN, generator: Number.NaN, others: Number.NaN, perPid: [] as number[] };
  const watch = setTimeout(() => (cpu = new CpuWatch(ctx.serverPids)), warmupMs);
  const stopWatch = setTimeout(() => (usage = (cpu as CpuWatch | null)?.stop() ?? usage), warmupMs + measureMs);

  const worker = async () => {
    // Stop after 3 failures in a row per worker: a peer that crashed would otherwise spin.
    let streak = 0;
    while (performance.now() < mEnd && started < maxCalls && streak < 3) {
      const n = started++;
      const begin = performance.now();
      try {
        const ms = await callOnce(target, ctx.callee, [`${tag}c${n}`, `${tag}d${n}`], addr);
        streak = 0;
        const end = begin + ms;
        if (begin >= mStart && end <= mEnd) durations.push(ms);
      } catch (e) {
        failed++;
        streak++;
        if (errors.length < 3) errors.push(String((e as Error).message ?? e).slice(0, 200));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  clearTimeout(watch);
  clearTimeout(stopWatch);
  // Calls that began in the window and ended in it; the rate counts those over the window.
  const notes = errors.length ? [`${failed} calls failed, e.g. ${errors.join(' | ')}`] : [];
  return {
    figures: {
      callsPerSec: round(durations.length / (measureMs / 1000), 1),
      p50Ms: round(percentileOf(durations, 0.5), 2),
      p99Ms: round(percentileOf(durations, 0.99), 2),
      serverCpu: usage.server,
      generatorCpu: usage.generator,
      otherCpu: usage.others,
      // In a cluster, Redis's share of the server CPU (the last of the server's processes).
      ...(ctx.redis ? { redisCpu: usage.perPid.at(-1) ?? Number.NaN } : {}),
      failed,
    },
    notes,
  };
}
