import { afterAll, describe, expect, test } from 'bun:test';
import { createBunServer } from '../src/adapter/bun.ts';
import { type Config, parseCli } from '../src/config.ts';
import { RedisCluster } from '../src/cluster/redis.ts';
import { silentLogger } from '../src/log.ts';
import { requireRedis, startRedis } from './redis.ts';

/**
 * GET /readyz in a cluster: ready only while this node reaches Redis and is subscribed;
 * GET /healthz stays alive meanwhile (the process is fine, restarting it would not help).
 * The single-node answer is checked by metrics.test.ts on every target.
 */

const defaults = (() => {
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  return cli.config;
})();

describe.skipIf(!requireRedis('readiness in a cluster'))('GET /readyz with --redis', () => {
  const stops: Array<() => Promise<void>> = [];
  afterAll(async () => {
    for (const stop of stops.reverse()) await stop();
  });

  test('Redis stops: 503 with a reason, metrics say redis_up 0, alive all along; Redis back: 200', async () => {
    const redis = await startRedis();
    stops.push(() => redis.stop());
    const config: Config = { ...defaults, host: '127.0.0.1', port: 0, redis: redis.url, redisPrefix: `ready${process.pid}:`, presenceTtlMs: 1000, shutdownTimeoutMs: 200 };
    const cluster = new RedisCluster({ url: config.redis, prefix: config.redisPrefix, presenceTtlMs: config.presenceTtlMs, node: 'ready-1', log: silentLogger });
    await cluster.connect();
    const app = await createBunServer({ config, log: silentLogger, version: 'test', cluster });
    stops.push(() => app.stop());
    const http = `http://127.0.0.1:${app.server.port}`;
    const status = async (path: string) => (await fetch(`${http}${path}`)).status;
    const redisUp = async () => /^signalbox_redis_up\{node="ready-1"\} (\d)$/m.exec(await (await fetch(`${http}/metrics`)).text())?.[1];

    const ready = await fetch(`${http}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({ status: 'ready', node: 'ready-1' });
    expect(await redisUp()).toBe('1');

    // Down long enough to be seen, then back (empty, as after a crash without persistence).
    const restarted = redis.restart(1500);
    let down: Response | undefined;
    for (let i = 0; i < 60 && down?.status !== 503; i++) {
      down = await fetch(`${http}/readyz`);
      if (down.status !== 503) await Bun.sleep(20);
    }
    expect(down?.status).toBe(503);
    expect(await down!.json()).toEqual({ status: 'unavailable', reason: 'redis_unreachable', node: 'ready-1' });
    expect(await redisUp()).toBe('0');
    expect(await status('/healthz')).toBe(200);

    await restarted;
    const deadline = Date.now() + 8000;
    while ((await status('/readyz')) !== 200) {
      if (Date.now() > deadline) throw new Error('readyz did not come back to 200 within 8 s of Redis');
      await Bun.sleep(50);
    }
    expect(await redisUp()).toBe('1');
  }, 20_000);
});
