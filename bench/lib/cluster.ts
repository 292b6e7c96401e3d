/**
 * A signalbox cluster for one run: a fresh redis-server and `nodes` signalbox processes,
 * each on its own port (so the harness decides which node a user is on), all pinned.
 */
import type { Peer } from './peers.ts';
import { freshPort, type RunningServer, SERVER_CPU, startServer } from './proc.ts';
import { type RunningRedis, startRedis } from './redis.ts';

export interface RunningCluster {
  servers: RunningServer[];
  redis: RunningRedis;
  stop(): Promise<void>;
}

/** Where Redis runs: with the nodes on the server CPU unless BENCH_REDIS_CPU says otherwise. */
export const REDIS_CPU = process.env.BENCH_REDIS_CPU ?? SERVER_CPU;

export async function startCluster(
  peer: Peer,
  { nodes = peer.nodes ?? 2, cwd, cpu = SERVER_CPU, extraArgs = [] as string[], tag = 'b' }: {
    nodes?: number;
    cwd: string;
    cpu?: string;
    extraArgs?: string[];
    tag?: string;
  },
): Promise<RunningCluster> {
  const redis = await startRedis({ port: freshPort(), cpu: REDIS_CPU });
  const servers: RunningServer[] = [];
  const stop = async () => {
    await Promise.all(servers.map((s) => s.stop()));
    await redis.stop();
  };
  try {
    for (let i = 0; i < nodes; i++) {
      const vars = { redis: redis.url, prefix: `sb${tag}:`, node: `n${i + 1}` };
      servers.push(await startServer([...peer.argv, ...extraArgs], { probePath: peer.probePath, cwd, vars, cpu }));
    }
  } catch (e) {
    await stop();
    throw e;
  }
  return { servers, redis, stop };
}
