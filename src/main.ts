import pkg from '../package.json' with { type: 'json' };
import { createBunServer } from './adapter/bun.ts';
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
const app = createBunServer({ config, log, version });
log.info('listening', { url: `ws://${config.host}:${app.server.port}/`, version });

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
