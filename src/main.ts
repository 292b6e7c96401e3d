import pkg from '../package.json' with { type: 'json' };
import { createBunServer } from './adapter/bun.ts';
import { launch } from './launch.ts';

// The Bun entry and the compile target: only what is Bun's lives here; src/launch.ts does
// the command line, the same as on Deno.
launch({
  name: 'bun',
  version: pkg.version,
  argv: process.argv.slice(2),
  env: process.env,
  serve(options) {
    const app = createBunServer(options);
    return { port: app.server.port!, connections: () => app.hub.connections.size, stop: () => app.stop() };
  },
  onSignal: (signal, handler) => void process.on(signal, handler),
  exit: (code) => process.exit(code),
});
