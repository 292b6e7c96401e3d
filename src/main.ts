import pkg from '../package.json' with { type: 'json' };
import { createBunServer } from './adapter/bun.ts';
import { RedisCluster } from './cluster/redis.ts';
import { ConfigError, helpText, parseCli } from './config.ts';
import { createLogger } from './log.ts';

const version: string = pkg.version;

let cli;
try {
  cli = parseCli(process.argv.slice(2), process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  console.error(`signalbox: ${err.message}`);
  process.exit(2);
}
if (cli.kind === 'help') {
  console.log(helpText(version));
  process.exit(0);
}
if (cli.kind === 'version') {
  console.log(version);
  process.exit(0);
}

const { config } = cli;
const log = createLogger(config.logLevel);

// No top-level await: the executable is compiled to bytecode, which needs CommonJS.
void (config.workers > 1 ? supervise(config.workers) : serve());

async function serve() {
  let cluster: RedisCluster | undefined;
  if (config.redis) {
    cluster = new RedisCluster({ url: config.redis, prefix: config.redisPrefix, presenceTtlMs: config.presenceTtlMs, node: config.nodeId || undefined, log });
    try {
      await cluster.connect();
    } catch (err) {
      console.error(`signalbox: cannot reach Redis at --redis: ${(err as Error).message}`);
      process.exit(1);
    }
  }
  const app = createBunServer({ config, log, version, cluster });
  log.info('listening', { url: `ws://${config.host}:${app.server.port}/`, version, node: cluster?.node, pid: process.pid });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutdown', { signal, connections: app.hub.connections.size });
    await app.stop();
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

/**
 * `--workers n`: n copies of this server on one port (the kernel spreads connections
 * over them with SO_REUSEPORT), sharing one namespace through Redis. A worker that dies
 * is started again; a signal stops them all.
 */
async function supervise(n: number) {
  // A compiled executable is its own interpreter; from source, run the same script.
  const self = process.argv[1]?.startsWith('/$bunfs/') ? [process.execPath] : [process.execPath, process.argv[1]!];
  const args = process.argv.slice(2);
  const env = { ...process.env, SIGNALBOX_WORKERS: '1', SIGNALBOX_REUSE_PORT: 'true' };
  const cmd = [...self, ...args.filter((a, i) => a !== '--workers' && args[i - 1] !== '--workers' && !a.startsWith('--workers='))];
  let stopping = false;
  const workers = new Set<ReturnType<typeof Bun.spawn>>();
  const start = (i: number) => {
    const proc = Bun.spawn(cmd, { env, stdout: 'inherit', stderr: 'inherit' });
    workers.add(proc);
    void proc.exited.then((code) => {
      workers.delete(proc);
      if (stopping) return;
      log.warn('worker_exited', { worker: i, code });
      setTimeout(() => start(i), 500);
    });
  };
  if (config.port === 0) {
    console.error('signalbox: --workers needs a fixed --port (the workers share it)');
    process.exit(2);
  }
  log.info('supervisor', { workers: n, port: config.port, pid: process.pid });
  for (let i = 0; i < n; i++) start(i);
  const stop = async (signal: NodeJS.Signals) => {
    stopping = true;
    for (const w of workers) w.kill(signal);
    await Promise.all([...workers].map((w) => w.exited));
    process.exit(0);
  };
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.on('SIGINT', () => void stop('SIGINT'));
}
