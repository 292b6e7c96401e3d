/**
 * Cold start of the compiled executable: from exec to the first accepted WebSocket.
 * Usage: bun bench/cold-start.ts [path/to/signalbox] [runs=20]
 * Prints one JSON line with the median, min, max and the executable's size.
 */
import { statSync } from 'node:fs';

const exe = process.argv[2] ?? 'dist/signalbox';
const runs = Number(process.argv[3] ?? 20);
const port = 19_000 + Math.floor(Math.random() * 1000);

async function once(): Promise<number> {
  const t0 = performance.now();
  const proc = Bun.spawn([exe, '--port', String(port), '--host', '127.0.0.1', '--log-level', 'silent'], {
    env: { PATH: '/usr/bin:/bin' },
    stdout: 'ignore',
    stderr: 'inherit',
  });
  try {
    for (;;) {
      const ok = await new Promise<boolean>((resolve) => {
        const ws = new WebSocket(`ws://127.0.0.1:${port}/`);
        ws.onopen = () => {
          resolve(true);
          ws.close();
        };
        ws.onerror = () => resolve(false);
      });
      if (ok) return performance.now() - t0;
      if (performance.now() - t0 > 10_000) throw new Error('server did not accept within 10 s');
      await Bun.sleep(1);
    }
  } finally {
    proc.kill('SIGKILL');
    await proc.exited;
  }
}

const times: number[] = [];
for (let i = 0; i < runs; i++) times.push(await once());
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)]!;
console.log(
  JSON.stringify({
    scenario: 'cold-start',
    exe,
    runs,
    medianMs: +median.toFixed(2),
    minMs: +times[0]!.toFixed(2),
    maxMs: +times.at(-1)!.toFixed(2),
    sizeBytes: statSync(exe).size,
  }),
);
