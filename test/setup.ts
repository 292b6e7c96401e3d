import { afterAll } from 'bun:test';
import { killSpawned } from './helpers.ts';
import { killRedis } from './redis.ts';

// Preloaded (bunfig.toml): a test that fails before its stop() must not leave a server
// process running after the suite. (A preloaded afterAll runs once, after the last file.)
afterAll(() => {
  killSpawned();
  killRedis();
});
