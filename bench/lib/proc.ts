/**
 * Processes under test: start a server pinned to one CPU, wait until it accepts a
 * WebSocket, and read what /proc says about it (RSS, CPU time, open files).
 */
import { readdirSync, readFileSync } from 'node:fs';
import type { Subprocess } from 'bun';
import { connect } from './ws-client.ts';

/** Clock ticks per second for /proc/<pid>/stat (USER_HZ; 100 on every Linux we run on). */
const HZ = 100;

export const SERVER_CPU = process.env.BENCH_SERVER_CPU ?? '1';
export const GENERATOR_CPU = process.env.BENCH_GENERATOR_CPU ?? '0';

/** Pin this process (all its threads) to the generator's CPU. */
export function pinSelf(): void {
  const r = Bun.spawnSync(['taskset', '-a', '-p', '-c', GENERATOR_CPU, String(process.pid)], { stdout: 'ignore' });
  if (r.exitCode !== 0) throw new Error(`taskset failed: ${r.stderr.toString()}`);
}

/**
 * Every process the harness started and has not seen end: killed when the harness exits
 * for any reason (an error, Ctrl-C, SIGTERM), so a failed run leaves nothing behind.
 */
const children = new Set<Subprocess>();
export function track<T extends Subprocess>(proc: T): T {
  children.add(proc);
  void proc.exited.then(() => children.delete(proc));
  return proc;
}
const killAll = () => {
  for (const p of children) p.kill('SIGKILL');
};
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
  process.on(sig, () => {
    killAll();
    process.exit(130);
  });
}

export function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.NaN;
}

/** User plus system CPU seconds the process has used so far (all threads). */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  // Fields after the command name (which may contain spaces) start at field 3.
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12])) / HZ;
}

/**
 * CPU seconds the machine's processes used (all cores), plus time the hypervisor stole, to
 * see how much others took. Interrupt time is left out: loopback TCP is processed there on
 * behalf of the processes under test, and it cannot be told apart per process.
 */
export function machineBusySeconds(): number {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, , , , , steal = 0] = line;
  return (user + nice + system + steal) / HZ;
}

export const openFiles = (pid: number): number => readdirSync(`/proc/${pid}/fd`).length;

export function fdLimit(pid: number): number {
  const m = /Max open files\s+(\d+)/.exec(readFileSync(`/proc/${pid}/limits`, 'utf8'));
  return m ? Number(m[1]) : Number.NaN;
}

export const loadAverage = (): number => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);

/**
 * CPU use of the server, the generator and everything else over a measured window. The
 * server may be several processes (cluster nodes and their redis-server): their CPU is summed.
 */
export class CpuWatch {
  private readonly pids: number[];
  private s0: number;
  private p0: number[];
  private g0: number;
  private m0: number;
  private t0 = performance.now();
  constructor(serverPids: number | number[]) {
    this.pids = typeof serverPids === 'number' ? [serverPids] : serverPids;
    this.s0 = this.serverSeconds();
    this.p0 = this.pids.map(cpuSeconds);
    this.g0 = cpuSeconds(process.pid);
    this.m0 = machineBusySeconds();
  }
  private serverSeconds(): number {
    return this.pids.reduce((n, pid) => n + cpuSeconds(pid), 0);
  }
  /** Fractions of one core: server, generator, other processes on the machine, and each server process. */
  stop(): { server: number; generator: number; others: number; perPid: number[] } {
    const secs = (performance.now() - this.t0) / 1000;
    const server = (this.serverSeconds() - this.s0) / secs;
    const generator = (cpuSeconds(process.pid) - this.g0) / secs;
    const all = (machineBusySeconds() - this.m0) / secs;
    const r = (x: number) => Math.round(x * 100) / 100;
    const perPid = this.pids.map((pid, i) => r((cpuSeconds(pid) - this.p0[i]!) / secs));
    return { server: r(server), generator: r(generator), others: r(Math.max(0, all - server - generator)), perPid };
  }
}

export interface RunningServer {
  proc: Subprocess;
  pid: number;
  port: number;
  stop(): Promise<void>;
}

// Server ports stay below the kernel's ephemeral range (32768+), where the generator's own
// connections take their local ports: a listener there can collide with one of them.
let nextPort = 20_000 + (process.pid % 1000) * 12;
export const freshPort = (): number => {
  nextPort = nextPort >= 32_000 ? 20_000 : nextPort + 1;
  return nextPort;
};

export interface StartOptions {
  probePath?: string;
  cwd?: string;
  timeoutMs?: number;
  /** Other `{name}` placeholders to fill in `argv` (e.g. `{redis}`). */
  vars?: Record<string, string>;
  /** CPU list for taskset (default: the server CPU). */
  cpu?: string;
}

/**
 * Start `argv` (with `{port}` replaced) pinned to the server CPU, and wait until a
 * WebSocket to `probePath` is accepted. stdout goes to /dev/null (the seed logs every message).
 */
export async function startServer(argv: string[], options: StartOptions = {}): Promise<RunningServer> {
  // A port someone else took since we picked it makes the server exit: pick another.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(argv, options);
    } catch (e) {
      if (attempt >= 3 || !(e instanceof ExitedEarly)) throw e;
    }
  }
}

class ExitedEarly extends Error {}

async function startOnce(
  argv: string[],
  { probePath = '/', cwd = process.cwd(), timeoutMs = 15_000, vars = {}, cpu = SERVER_CPU }: StartOptions,
): Promise<RunningServer> {
  const port = freshPort();
  const fill = (a: string) => Object.entries({ ...vars, port: String(port) }).reduce((x, [k, v]) => x.replaceAll(`{${k}}`, v), a);
  const cmd = ['taskset', '-c', cpu, ...argv.map(fill)];
  const proc = track(Bun.spawn(cmd, { cwd, stdout: 'ignore', stderr: 'pipe', stdin: 'ignore' }));
  let stderr = '';
  void (async () => {
    for await (const chunk of proc.stderr as ReadableStream<Uint8Array>) {
      if (stderr.length < 4000) stderr += new TextDecoder().decode(chunk);
    }
  })();
  const t0 = performance.now();
  for (;;) {
    if (proc.exitCode !== null) throw new ExitedEarly(`${cmd.join(' ')} exited ${proc.exitCode}: ${stderr.trim()}`);
    try {
      const c = await connect({ host: '127.0.0.1', port, path: probePath.replace('{n}', 'probe'), timeoutMs: 1000 });
      await c.close();
      break;
    } catch {
      if (performance.now() - t0 > timeoutMs) {
        proc.kill('SIGKILL');
        throw new Error(`${cmd.join(' ')} did not accept a WebSocket within ${timeoutMs} ms: ${stderr.trim()}`);
      }
      await Bun.sleep(20);
    }
  }
  return {
    proc,
    pid: proc.pid,
    port,
    get stderr() {
      return stderr;
    },
    /** SIGTERM first (a profiler writes its file on a clean exit), SIGKILL after 3 s. */
    async stop() {
      if (proc.exitCode !== null) return;
      proc.kill('SIGTERM');
      const killer = setTimeout(() => proc.kill('SIGKILL'), 3000);
      await proc.exited;
      clearTimeout(killer);
    },
  } as RunningServer & { stderr: string };
}

/** CPU seconds of every process on the machine now, with its command name. */
function everyProcess(): Map<number, { comm: string; cpu: number }> {
  const out = new Map<number, { comm: string; cpu: number }>();
  for (const d of readdirSync('/proc')) {
    const pid = Number(d);
    if (!Number.isInteger(pid)) continue;
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const comm = stat.slice(stat.indexOf('(') + 1, stat.lastIndexOf(')'));
      out.set(pid, { comm, cpu: cpuSeconds(pid) });
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/**
 * Who else used the CPU over a window: call at the start, then call what it returns with
 * our own pids at the end; gives the busiest other processes ("name pid: cores").
 */
export function otherProcesses(): (ours: number[], top?: number) => string[] {
  const before = everyProcess();
  const t0 = performance.now();
  return (ours, top = 4) => {
    const secs = (performance.now() - t0) / 1000;
    const mine = new Set([...ours, process.pid]);
    const used: Array<[string, number]> = [];
    for (const [pid, p] of everyProcess()) {
      if (mine.has(pid)) continue;
      const cores = (p.cpu - (before.get(pid)?.cpu ?? 0)) / secs;
      if (cores >= 0.02) used.push([`${p.comm} ${pid}`, cores]);
    }
    return used
      .sort((a, b) => b[1] - a[1])
      .slice(0, top)
      .map(([name, c]) => `${name}: ${Math.round(c * 100) / 100}`);
  };
}
