import { readFileSync } from 'node:fs';
import { type Config, ConfigError, helpText, parseCli } from './config.ts';
import { createLogger, type Logger } from './log.ts';

/** A server as an entry sees it, whatever runtime runs it. */
export interface RunningServer {
  readonly port: number;
  /** Extra fields for the "listening" line (a cluster node's id, say). */
  readonly describe?: Record<string, unknown>;
  /** Open connections right now (for the shutdown line). */
  connections(): number;
  /** Close every socket with 1001 and stop listening. */
  stop(): Promise<void>;
}

/** What an entry file (src/main.ts, src/main.deno.ts) provides; everything else is shared. */
export interface Runtime {
  readonly name: string;
  readonly version: string;
  readonly argv: readonly string[];
  readonly env: Record<string, string | undefined>;
  /** Start serving; may connect to something first (Redis), and throw a one-line reason. */
  serve(options: { config: Config; log: Logger; version: string }): RunningServer | Promise<RunningServer>;
  /** Features `config` asks for that this runtime cannot provide, one sentence each. */
  unsupported?(config: Config): string[];
  onSignal(signal: 'SIGTERM' | 'SIGINT', handler: () => void): void;
  /** Reads the --config file (default: node:fs, which both runtimes provide). */
  readFile?: (path: string) => string;
  exit(code: number): never;
  /** Where help, the version and logs go (stdout), and one-line startup errors (stderr). */
  out?: (line: string) => void;
  err?: (line: string) => void;
}

/**
 * The command line, the same on every runtime: parse flags and environment, answer
 * `--help`/`--version`, start the server, log where it listens, stop cleanly on SIGTERM/SIGINT.
 */
export async function launch(rt: Runtime): Promise<RunningServer | undefined> {
  const { out = console.log, err = console.error } = rt;
  let cli;
  try {
    cli = parseCli(rt.argv, rt.env, rt.readFile ?? ((path) => readFileSync(path, 'utf8')));
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    err(`signalbox: ${e.message}`);
    return rt.exit(2);
  }
  if (cli.kind === 'help') {
    out(helpText(rt.version));
    return rt.exit(0);
  }
  if (cli.kind === 'version') {
    out(rt.version);
    return rt.exit(0);
  }

  const { config } = cli;
  const log = createLogger(config.logLevel, out, config.logFormat);
  for (const what of rt.unsupported?.(config) ?? []) log.warn('unsupported', { runtime: rt.name, what });
  let server: RunningServer;
  try {
    server = await rt.serve({ config, log, version: rt.version });
  } catch (e) {
    err(`signalbox: ${(e as Error).message}`);
    return rt.exit(1);
  }
  log.info('listening', { url: `ws://${config.host}:${server.port}/`, version: rt.version, runtime: rt.name, ...server.describe });

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info('shutdown', { signal, connections: server.connections() });
    await server.stop();
    rt.exit(0);
  };
  rt.onSignal('SIGTERM', () => void shutdown('SIGTERM'));
  rt.onSignal('SIGINT', () => void shutdown('SIGINT'));
  return server;
}
