/**
 * Does keeping idle sockets alive stall the server? One signalbox process on CPU 1, one
 * holder (bench/holder.ts) on CPU 0 holding `count` logged-in idle connections, and
 * `GET /healthz` timed every 50 ms for `seconds` (cover two ping intervals): p50, p99,
 * max. Also the server's RSS growth per held connection, and how many the server dropped
 * (a keep-alive that closes live peers shows up there).
 *
 * Usage: bun bench/ping-burst.ts <count> <seconds> <server command…>
 *   e.g. bun bench/ping-burst.ts 16000 70 dist/signalbox --idle-timeout 30
 * The server gets `--port <free port> --host 127.0.0.1` and the benchmark's limits-off
 * flags appended. Prints one JSON line.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { HolderJob } from './holder.ts';
import { signalboxFlags } from './lib/peers.ts';

const [countArg, secondsArg, ...serverCmd] = process.argv.slice(2);
const count = Number(countArg);
const seconds = Number(secondsArg);
if (!(count > 0 && count <= 19_000 && seconds > 0 && seconds <= 600 && serverCmd.length > 0)) {
  console.error('usage: bun bench/ping-burst.ts <count ≤ 19000> <seconds ≤ 600> <server command…>');
  process.exit(2);
}
const root = join(import.meta.dir, '..');
const SERVER_CPU = '1';
const HOLDER_CPU = '0';
// Everything this run starts is killed on the way out, by process id.
const started: Array<{ kill(): void }> = [];
const hardStop = setTimeout(() => finish(3, 'took too long'), (seconds + 180) * 1000);

function finish(code: number, why?: string): never {
  if (why !== undefined) console.error(why);
  for (const p of started) p.kill();
  process.exit(code);
}

const rssKb = (pid: number): number => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? NaN);
const port = 20_000 + Math.floor(Math.random() * 20_000);
const help = Bun.spawnSync([...serverCmd, '--help']).stdout.toString();
const server = Bun.spawn(
  ['taskset', '-c', SERVER_CPU, ...serverCmd, '--port', String(port), '--host', '127.0.0.1', ...signalboxFlags(help).flags],
  { stdout: 'ignore', stderr: 'inherit' },
);
started.push(server);
const base = `http://127.0.0.1:${port}`;
for (let i = 0; ; i++) {
  if (i > 200) finish(1, 'server did not start');
  if (await fetch(`${base}/healthz`).then((r) => r.ok, () => false)) break;
  await Bun.sleep(50);
}
await Bun.sleep(500);
const rssBefore = rssKb(server.pid);

const job: HolderJob = { host: '127.0.0.1', ports: [port], dialect: 'seed', count, prefix: `pb${port}x`, addrBase: 2, maxLifetimeMs: (seconds + 120) * 1000 };
const holder = Bun.spawn(['taskset', '-c', HOLDER_CPU, process.execPath, join(root, 'bench/holder.ts'), JSON.stringify(job)], {
  stdin: 'pipe',
  stdout: 'pipe',
  stderr: 'inherit',
});
started.push(holder);
const lines = (holder.stdout as ReadableStream<Uint8Array>)
  .pipeThrough(new TextDecoderStream() as unknown as ReadableWritablePair<string, Uint8Array>)
  .getReader();
let carry = '';
async function line(timeoutMs: number): Promise<Record<string, unknown>> {
  const deadline = performance.now() + timeoutMs;
  while (!carry.includes('\n')) {
    const r = await Promise.race([lines.read(), Bun.sleep(Math.max(0, deadline - performance.now())).then(() => null)]);
    if (r === null || r.done) finish(1, 'holder said nothing');
    carry += r.value;
  }
  const at = carry.indexOf('\n');
  const text = carry.slice(0, at);
  carry = carry.slice(at + 1);
  return JSON.parse(text) as Record<string, unknown>;
}
const held = await line(120_000);
if (held.held !== count) finish(1, `holder: ${JSON.stringify(held)}`);
const rssLoggedIn = rssKb(server.pid);
// The server's CPU time (user + system, in clock ticks of 10 ms) over the sampling.
const cpuTicks = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};
const cpu0 = cpuTicks(server.pid);

// Time /healthz every 50 ms (from when each was due, so a stall counts once, not per probe).
const samples: number[] = [];
const t0 = performance.now();
const n = Math.floor((seconds * 1000) / 50);
for (let i = 0; i < n; i++) {
  const due = t0 + i * 50;
  const wait = due - performance.now();
  if (wait > 0) await Bun.sleep(wait);
  const start = performance.now();
  const ok = await Promise.race([fetch(`${base}/healthz`).then((r) => r.ok), Bun.sleep(5000).then(() => false)]);
  if (!ok) finish(1, '/healthz failed');
  samples.push(performance.now() - start);
}
// When the slow ones were (s into the sampling): bursts line up with the ping interval, noise does not.
const slow = samples.flatMap((ms, i) => (ms > 20 ? [[Math.round(i * 5) / 100, Math.round(ms)]] : []));
const rssHeld = rssKb(server.pid);
const cpuSeconds = (cpuTicks(server.pid) - cpu0) / 100;

holder.stdin.end();
const after = await line(30_000);
samples.sort((a, b) => a - b);
const q = (p: number) => Math.round(samples[Math.min(samples.length - 1, Math.floor(p * samples.length))]! * 10) / 10;
console.log(
  JSON.stringify({
    cmd: serverCmd.join(' '),
    count,
    seconds,
    healthz: { n: samples.length, p50: q(0.5), p99: q(0.99), max: q(1) },
    over50ms: samples.filter((s) => s > 50).length,
    slow,
    // Right after the logins, and at the end (after `seconds` of keep-alive).
    kbPerConn: Math.round(((rssLoggedIn - rssBefore) / count) * 100) / 100,
    kbPerConnEnd: Math.round(((rssHeld - rssBefore) / count) * 100) / 100,
    cpuSeconds,
    dropped: after.dropped,
    codes: after.codes,
  }),
);
clearTimeout(hardStop);
finish(0);
