import { createServer } from 'node:net';

/** A free loopback TCP port. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

export const haveRedis = Bun.which('redis-server') !== null;

/** Skip loudly on a laptop without redis-server; fail under CI, where .ci/run installs it. */
export function requireRedis(what: string): boolean {
  if (haveRedis) return true;
  if (process.env.CI) throw new Error(`redis-server is required under CI (.ci/run installs it): ${what}`);
  console.warn(`SKIPPED: ${what} needs redis-server (Debian package redis-server)`);
  return false;
}

export interface RedisProcess {
  url: string;
  port: number;
  proc: ReturnType<typeof Bun.spawn>;
  stop(): Promise<void>;
  /** Kill it and start it again on the same port, empty (as after a crash without persistence). */
  restart(downMs?: number): Promise<void>;
}

const started = new Set<RedisProcess>();
/** Kill every redis-server the tests started (test/setup.ts, after the last file). */
export function killRedis() {
  for (const r of started) r.proc.kill('SIGKILL');
}

/** A real redis-server of our own on a free loopback port, no persistence. */
export async function startRedis(port?: number): Promise<RedisProcess> {
  const p = port ?? (await freePort());
  const spawn = () =>
    Bun.spawn(['redis-server', '--port', String(p), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--loglevel', 'warning'], {
      stdout: 'ignore',
      stderr: 'ignore',
    });
  const ready = async () => {
    for (let i = 0; i < 200; i++) {
      const ping = Bun.spawnSync(['redis-cli', '-p', String(p), 'ping']);
      if (ping.stdout.toString().trim() === 'PONG') return;
      await Bun.sleep(25);
    }
    throw new Error(`redis-server on ${p} did not start`);
  };
  // A test run that ends without its afterAll (bun test does not always run a preloaded
  // one after the last file, and never on a crash) must not leave redis-server running: a
  // watchdog kills the server on this port once this process is gone. redis-server names
  // itself "redis-server 127.0.0.1:<port>", so the pattern matches no other process.
  Bun.spawn(['sh', '-c', `while kill -0 ${process.pid} 2>/dev/null; do sleep 1; done; pkill -KILL -f '^redis-server 127.0.0.1:${p}$'`], {
    stdin: 'ignore',
    stdout: 'ignore',
    stderr: 'ignore',
  }).unref();
  const r: RedisProcess = {
    url: `redis://127.0.0.1:${p}`,
    port: p,
    proc: spawn(),
    async stop() {
      r.proc.kill('SIGKILL');
      await r.proc.exited;
    },
    async restart(downMs = 200) {
      r.proc.kill('SIGKILL');
      await r.proc.exited;
      await Bun.sleep(downMs);
      r.proc = spawn();
      await ready();
    },
  };
  await ready();
  started.add(r);
  return r;
}
