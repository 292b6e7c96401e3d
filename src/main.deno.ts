import pkg from '../package.json' with { type: 'json' };
import { createDenoServer } from './adapter/deno.ts';
import { launch } from './launch.ts';

// The Deno entry (`deno task start`, `make build-deno`): the same command line as the Bun
// one, served by the Deno adapter.
launch({
  name: 'deno',
  version: pkg.version,
  argv: Deno.args,
  env: Deno.env.toObject(),
  async serve(options) {
    // The cluster client is Bun's built-in Redis client; Deno has none.
    if (options.config.redis || options.config.workers > 1) {
      throw new Error('--redis and --workers need the Bun build (Deno has no built-in Redis client); run dist/signalbox or bun src/main.ts');
    }
    const app = await createDenoServer(options);
    return { port: app.port, connections: () => app.hub.connections.size, stop: () => app.stop() };
  },
  // Both limits exist to bound memory, and Deno can only enforce them after the fact.
  unsupported: () => [
    '--max-frame and --backpressure-limit are enforced after the fact on Deno: a frame is read whole ' +
      '(up to 64 MiB) before it is refused, and a dropped slow client keeps its queue until its TCP connection ends',
  ],
  // Windows has no SIGTERM: Deno throws on listening for it there.
  onSignal: (signal, handler) => {
    if (signal === 'SIGINT' || Deno.build.os !== 'windows') Deno.addSignalListener(signal, handler);
  },
  exit: (code) => Deno.exit(code),
});
