import pkg from '../package.json' with { type: 'json' };
import { createBunServer } from './adapter/bun.ts';
import { superviseWorkers } from './adapter/workers.ts';
import { launch } from './launch.ts';

// The Bun entry and the compile target: only what is Bun's lives here; src/launch.ts does
// the command line, the same as on Deno. (No top-level await: the executable is compiled
// to bytecode, which needs CommonJS.)
void launch({
  name: 'bun',
  version: pkg.version,
  argv: process.argv.slice(2),
  env: process.env,
  async serve(options) {
    const { config, log } = options;
    if (config.workers > 1) return superviseWorkers(config, log);
    let cluster;
    if (config.redis) {
      // Loaded only for a cluster: a single node pays nothing for it.
      const { RedisCluster } = await import('./cluster/redis.ts');
      cluster = new RedisCluster({ url: config.redis, prefix: config.redisPrefix, presenceTtlMs: config.presenceTtlMs, node: config.nodeId || undefined, log });
      try {
        await cluster.connect();
      } catch (err) {
        throw new Error(`cannot reach Redis at --redis: ${(err as Error).message}`);
      }
    }
    const app = await createBunServer({ ...options, cluster });
    return {
      port: app.server.port!,
      describe: cluster === undefined ? undefined : { node: cluster.node },
      connections: () => app.hub.connections.size,
      stop: () => app.stop(),
    };
  },
  onSignal: (signal, handler) => void process.on(signal, handler),
  exit: (code) => process.exit(code),
});
