/**
 * A redis-server of the benchmark's own: on a free loopback port, pinned to a CPU, no
 * persistence, killed when the harness exits. Its counters (INFO) say what the cluster
 * asked of it: commands per second by kind, and the CPU it used.
 */
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cpuSeconds, rssBytes, track } from './proc.ts';

/**
 * redis-server under a name of its own ("sb-bench-redis", titled "sb-bench-redis <port>"):
 * on this shared machine someone's `pkill redis-server` (cleaning up leaked test servers)
 * once killed a benchmark's Redis mid-run. The harness kills its own when it ends.
 */
function benchRedisBinary(): string {
  const real = Bun.which('redis-server');
  if (real === null) throw new Error('redis-server not found (Debian package redis-server)');
  const dir = join(tmpdir(), `signalbox-bench-${process.pid}`);
  mkdirSync(dir, { recursive: true });
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const link = join(dir, 'sb-bench-redis');
  try {
    symlinkSync(real, link);
  } catch {
    // made already by an earlier run in this process
  }
  return link;
}

export interface RunningRedis {
  pid: number;
  port: number;
  url: string;
  /** INFO as a flat map (every section, or one). */
  info(section?: string): Promise<Record<string, string>>;
  /** Per-command call counts and microseconds (INFO commandstats). */
  commandStats(): Promise<Record<string, { calls: number; usec: number }>>;
  /** Resolves with how it ended (exit code or signal) if it ends before `stop`. */
  exited: Promise<string>;
  rss(): number;
  cpu(): number;
  stop(): Promise<void>;
}

const redisCli = (port: number, args: string[]) => Bun.spawnSync(['redis-cli', '-p', String(port), ...args]).stdout.toString();

export async function startRedis({ port, cpu }: { port: number; cpu: string }): Promise<RunningRedis> {
  const binary = benchRedisBinary();
  // maxclients: redis-server lowers it to its open-file limit minus 32 by itself; the
  // cluster needs only two connections per signalbox process (commands, subscriber).
  const proc = track(
    Bun.spawn(
      ['taskset', '-c', cpu, binary, '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
        '--loglevel', 'warning', '--maxclients', '1000', '--proc-title-template', 'sb-bench-redis {port}'],
      { stdout: 'ignore', stderr: 'pipe', stdin: 'ignore' },
    ),
  );
  const kill = () => proc.kill('SIGKILL');
  for (let i = 0; ; i++) {
    if (redisCli(port, ['ping']).trim() === 'PONG') break;
    if (proc.exitCode !== null || i > 200) {
      kill();
      throw new Error(`redis-server on ${port} did not start: ${await new Response(proc.stderr as ReadableStream).text()}`);
    }
    await Bun.sleep(25);
  }
  const parse = (text: string) => {
    const out: Record<string, string> = {};
    for (const line of text.split(/\r?\n/)) {
      const i = line.indexOf(':');
      if (i > 0 && !line.startsWith('#')) out[line.slice(0, i)] = line.slice(i + 1);
    }
    return out;
  };
  const info = async (section?: string) => {
    const p = Bun.spawn(['redis-cli', '-p', String(port), 'info', ...(section ? [section] : [])], { stdout: 'pipe' });
    return parse(await new Response(p.stdout).text());
  };
  return {
    pid: proc.pid,
    port,
    url: `redis://127.0.0.1:${port}`,
    info,
    async commandStats() {
      const out: Record<string, { calls: number; usec: number }> = {};
      for (const [k, v] of Object.entries(await info('commandstats'))) {
        const calls = /calls=(\d+)/.exec(v);
        const usec = /usec=(\d+)/.exec(v);
        if (calls && usec) out[k.replace(/^cmdstat_/, '')] = { calls: Number(calls[1]), usec: Number(usec[1]) };
      }
      return out;
    },
    exited: proc.exited.then(() => `redis-server exited (${proc.signalCode ?? proc.exitCode})`),
    rss: () => rssBytes(proc.pid),
    cpu: () => cpuSeconds(proc.pid),
    async stop() {
      kill();
      await proc.exited;
    },
  };
}
