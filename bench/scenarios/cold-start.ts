/**
 * Cold start: from exec to the first accepted WebSocket, median of 20 starts; and, for a
 * compiled server, the executable's size. (Folded in from the first bench/cold-start.ts.)
 * Not pinned: this is what a user sees when they start the server, taskset's own exec aside.
 */
import { statSync } from 'node:fs';
import { freshPort } from '../lib/proc.ts';
import { median, percentileOf, round } from '../lib/stats.ts';
import { connect } from '../lib/ws-client.ts';
import type { Peer } from '../lib/peers.ts';
import type { ScenarioResult } from './context.ts';

async function once(peer: Peer, timeoutMs: number): Promise<number> {
  const port = freshPort();
  const argv = peer.argv.map((a) => a.replaceAll('{port}', String(port)));
  const path = peer.probePath.replace('{n}', `cold${port}`);
  const t0 = performance.now();
  const proc = Bun.spawn(argv, { stdout: 'ignore', stderr: 'ignore', stdin: 'ignore' });
  try {
    for (;;) {
      try {
        const c = await connect({ host: '127.0.0.1', port, path, timeoutMs: 2000 });
        const ms = performance.now() - t0;
        c.terminate();
        return ms;
      } catch {
        if (proc.exitCode !== null) throw new Error(`${argv.join(' ')} exited ${proc.exitCode}`);
        if (performance.now() - t0 > timeoutMs) throw new Error(`${argv[0]} did not accept within ${timeoutMs} ms`);
        await Bun.sleep(1);
      }
    }
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
  }
}

export async function coldStart(peer: Peer, { runs = 20, timeoutMs = 10_000 } = {}): Promise<ScenarioResult> {
  const times: number[] = [];
  for (let i = 0; i < runs; i++) {
    // Retry once: the free port picked may have been taken meanwhile, and the server exits.
    times.push(await once(peer, timeoutMs).catch(() => once(peer, timeoutMs)));
  }
  const exe = peer.argv[0]!;
  // A runtime given a script (bun x.ts, node x.cjs) is not a compiled executable.
  const compiled = !peer.argv.some((a) => /\.(ts|js|cjs|mjs)$/.test(a));
  return {
    figures: {
      medianMs: round(median(times), 2),
      p90Ms: round(percentileOf(times, 0.9), 2),
      minMs: round(Math.min(...times), 2),
      maxMs: round(Math.max(...times), 2),
      ...(compiled ? { sizeMB: round(statSync(exe).size / 2 ** 20, 1) } : {}),
    },
    notes: compiled ? [] : [`started as \`${exe.split('/').at(-1)} <script>\`, not a compiled executable`],
  };
}
