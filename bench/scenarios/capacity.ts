/**
 * Capacity: as many logged-in connections as one server process holds (its open-file
 * limit, printed), held by helper generator processes (each may open at most `ulimit -n`
 * files too), then a fresh pair's full call while they are held.
 *
 * Multi-process hook: `servers` may list several processes of one namespace. Holders
 * spread their connections over all of them and the fresh pair's caller and callee sit on
 * different processes. The 200,000-connection target needs signalbox processes sharing
 * presence through Redis (the cluster issue); until that lands the harness runs one.
 */
import { join } from 'node:path';
import { fdLimit, GENERATOR_CPU, openFiles, rssBytes, type RunningServer } from '../lib/proc.ts';
import { callOnce, createAddressPool } from '../lib/session.ts';
import { median, percentileOf, round } from '../lib/stats.ts';
import type { HolderJob } from '../holder.ts';
import type { ScenarioContext, ScenarioResult } from './context.ts';

const PER_HOLDER = 9_800;

export async function capacity(
  ctx: ScenarioContext,
  {
    servers = [ctx.server] as RunningServer[],
    /** Connections to open in all; default: every server up to its open-file limit. */
    count = undefined as number | undefined,
    reserve = 8,
    freshCalls = 20,
  } = {},
): Promise<ScenarioResult> {
  const { target, tag, dialect } = ctx;
  const limit = fdLimit(servers[0]!.pid);
  const baseline = servers.reduce((n, s) => n + openFiles(s.pid), 0);
  const rss0 = servers.reduce((n, s) => n + rssBytes(s.pid), 0);
  const want = count ?? servers.length * limit - baseline - reserve * servers.length;
  const holders = Math.ceil(want / PER_HOLDER);
  const t0 = performance.now();
  const procs = Array.from({ length: holders }, (_, k) => {
    const job: HolderJob = {
      host: target.host,
      ports: servers.map((s) => s.port),
      dialect: dialect.name,
      count: Math.min(PER_HOLDER, want - k * PER_HOLDER),
      prefix: `${tag}h${k}x`,
      addrBase: 2 + k * 64,
    };
    return Bun.spawn(['taskset', '-c', GENERATOR_CPU, process.execPath, join(ctx.root, 'bench/holder.ts'), JSON.stringify(job)], {
      stdin: 'pipe',
      stdout: 'pipe',
      stderr: 'inherit',
    });
  });
  const readers = procs.map((p) => (p.stdout as ReadableStream<Uint8Array>).pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>).getReader());
  const nextLine = async (i: number, timeoutMs: number): Promise<any> => {
    let buf = '';
    const deadline = performance.now() + timeoutMs;
    while (!buf.includes('\n')) {
      const r = await Promise.race([readers[i]!.read(), Bun.sleep(Math.max(0, deadline - performance.now())).then(() => null)]);
      if (r === null) throw new Error(`holder ${i} said nothing within ${timeoutMs} ms`);
      if (r.done) throw new Error(`holder ${i} exited early`);
      buf += r.value;
    }
    return JSON.parse(buf.split('\n')[0]!);
  };

  const notes: string[] = [];
  try {
    const ready = await Promise.all(procs.map((_, i) => nextLine(i, 240_000)));
    const rampSec = (performance.now() - t0) / 1000;
    const held = ready.reduce((n, r) => n + r.held, 0);
    for (const r of ready) if (r.failed) notes.push(`holder: ${r.failed} failed, e.g. ${r.errors.join(' | ')}`);
    await Bun.sleep(1000);
    const rss = servers.reduce((n, s) => n + rssBytes(s.pid), 0);
    const serverFiles = servers.reduce((n, s) => n + openFiles(s.pid), 0);

    // A fresh pair's full call while everything is held.
    const addr = createAddressPool(2 + holders * 64, 16);
    const callee = { ...target, port: servers.at(-1)!.port };
    const durations: number[] = [];
    for (let i = 0; i < freshCalls; i++) {
      try {
        durations.push(await callOnce(target, callee, [`${tag}f${i}`, `${tag}g${i}`], addr));
      } catch (e) {
        notes.push(`fresh call failed: ${String((e as Error).message).slice(0, 200)}`);
        break;
      }
    }
    for (const p of procs) p.stdin.end();
    const done = await Promise.all(procs.map((_, i) => nextLine(i, 20_000).catch(() => ({ dropped: Number.NaN }))));
    const dropped = done.reduce((n, r) => n + r.dropped, 0);
    if (dropped) notes.push(`${dropped} held connections were closed by the server while held`);
    return {
      figures: {
        fdLimit: limit,
        servers: servers.length,
        target: want,
        held,
        serverOpenFiles: serverFiles,
        rssMB: round(rss / 2 ** 20, 1),
        kbPerConn: round((rss - rss0) / held / 1024, 2),
        rampSec: round(rampSec, 1),
        freshCallP50Ms: round(median(durations), 2),
        freshCallMaxMs: round(durations.length ? Math.max(...durations) : Number.NaN, 2),
        freshCallP90Ms: round(percentileOf(durations, 0.9), 2),
        freshCalls: durations.length,
        dropped,
      },
      notes,
    };
  } finally {
    for (const p of procs) {
      if (p.exitCode === null) p.kill('SIGKILL');
    }
    await Promise.all(procs.map((p) => p.exited));
  }
}
