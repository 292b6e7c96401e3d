import { afterAll } from 'bun:test';
import { killSpawned } from './helpers.ts';

// Preloaded (bunfig.toml): a test that fails before its stop() must not leave a server
// process running after the suite.
afterAll(killSpawned);
