import type { Config } from '../config.ts';
import type { RunningServer } from '../launch.ts';
import type { Logger } from '../log.ts';

/**
 * `--workers n`: n copies of this server on one port (the kernel spreads connections over
 * them with SO_REUSEPORT), sharing one namespace through Redis. A Bun process uses one core
 * and may open 20,000 files here; this is the way past both. A worker that dies is started
 * again; stopping the supervisor stops them all.
 */
export function superviseWorkers(config: Config, log: Logger): RunningServer {
  if (config.port === 0) throw new Error('--workers needs a fixed --port (the workers share it)');
  // A compiled executable is its own interpreter; from source, run the same script.
  const self = process.argv[1]?.startsWith('/$bunfs/') ? [process.execPath] : [process.execPath, process.argv[1]!];
  const args = process.argv.slice(2);
  const own = args.filter((a, i) => a !== '--workers' && args[i - 1] !== '--workers' && !a.startsWith('--workers='));
  const env = { ...process.env, SIGNALBOX_WORKERS: '1', SIGNALBOX_REUSE_PORT: 'true' };
  const workers = new Set<ReturnType<typeof Bun.spawn>>();
  let stopping = false;

  const start = (i: number) => {
    const proc = Bun.spawn([...self, ...own], { env, stdout: 'inherit', stderr: 'inherit' });
    workers.add(proc);
    void proc.exited.then((code) => {
      workers.delete(proc);
      if (stopping) return;
      log.warn('worker_exited', { worker: i, code });
      setTimeout(() => start(i), 500);
    });
  };
  for (let i = 0; i < config.workers; i++) start(i);

  return {
    port: config.port,
    describe: { workers: config.workers },
    connections: () => 0,
    async stop() {
      stopping = true;
      for (const w of workers) w.kill('SIGTERM');
      await Promise.all([...workers].map((w) => w.exited));
    },
  };
}
