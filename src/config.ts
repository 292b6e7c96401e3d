import * as v from 'valibot';
import { LOG_FORMATS, LOG_LEVELS } from './log.ts';

/**
 * Every operator setting, defined once: its flag, environment variable, config-file key,
 * default, schema and help line. `--help`, validation and docs/configuration.md all come
 * from this table.
 */

// Flags and environment variables arrive as strings; a config file's value may also be a number.
const integer = (min: number, max: number) =>
  v.pipe(
    v.union([v.number(), v.string()], 'must be an integer'),
    v.transform((x) => (typeof x === 'number' ? x : /^\s*-?\d+\s*$/.test(x) ? Number(x) : Number.NaN)),
    v.number('must be an integer'),
    v.integer('must be an integer'),
    v.minValue(min, `must be at least ${min}`),
    v.maxValue(max, `must be at most ${max}`),
  );

const TRUE = ['true', '1', 'yes', 'on'];
const FALSE = ['false', '0', 'no', 'off'];
export const boolean = v.pipe(
  v.union([v.boolean(), v.string()], 'must be true or false'),
  v.check((x) => typeof x === 'boolean' || TRUE.includes(x) || FALSE.includes(x), 'must be true or false'),
  v.transform((x) => (typeof x === 'boolean' ? x : TRUE.includes(x))),
);

const text = v.string('must be a string');

/** A comma-separated list (flags, env) or an array (config file). */
const list = v.pipe(
  v.union([v.string(), v.array(v.string())], 'must be a comma-separated list'),
  v.transform((x) => (typeof x === 'string' ? x.split(',') : x).map((s) => s.trim()).filter(Boolean)),
);

const secret = v.pipe(
  v.string('must be a string'),
  v.check((s) => s === '' || s.length >= 32, 'must be at least 32 characters (or empty for no auth)'),
);

interface Option<S extends v.GenericSchema> {
  schema: S;
  default: v.InferInput<S>;
  help: string;
  /** Shown as `--flag <arg>`; booleans take no argument. */
  arg?: string;
}
const option = <S extends v.GenericSchema>(o: Option<S>) => o;

export const OPTIONS = {
  config: option({ schema: text, default: '', arg: 'file', help: 'JSON file of options, keyed by flag name without "--"; variables and flags override it' }),
  port: option({ schema: integer(0, 65535), default: 9090, arg: 'n', help: 'TCP port to listen on (0 picks a free one)' }),
  host: option({ schema: text, default: '0.0.0.0', arg: 'addr', help: 'Address to listen on' }),
  logLevel: option({
    schema: v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`),
    default: 'info',
    arg: 'level',
    help: `Log threshold: ${LOG_LEVELS.join(', ')}`,
  }),
  logFormat: option({
    schema: v.picklist(LOG_FORMATS, `must be one of ${LOG_FORMATS.join(', ')}`),
    default: 'pretty',
    arg: 'format',
    help: 'Log lines as "<time> <level> <event> key=value" (pretty) or one JSON object each (json)',
  }),
  demo: option({ schema: boolean, default: true, help: 'Serve the call page at GET / (--no-demo: a short text instead)' }),
  metrics: option({ schema: boolean, default: true, help: 'Serve GET /metrics in Prometheus text format (--no-metrics: 404)' }),
  metricsToken: option({ schema: text, default: '', arg: 'token', help: 'Require "Authorization: Bearer <token>" on GET /metrics (prefer the env variable)' }),

  // Limits (0 = unlimited)
  maxFrame: option({ schema: integer(256, 16 * 1024 * 1024), default: 65536, arg: 'bytes', help: 'Largest frame a client may send; larger ones close the connection with 1009' }),
  rate: option({ schema: integer(0, 1_000_000), default: 50, arg: 'n', help: 'Frames per second per connection, sustained (0 = unlimited)' }),
  burst: option({ schema: integer(1, 1_000_000), default: 200, arg: 'n', help: 'Frames per connection allowed in a burst above --rate' }),
  maxConnections: option({ schema: integer(0, 10_000_000), default: 10000, arg: 'n', help: 'Open connections in total (0 = unlimited); beyond it upgrades get 503' }),
  maxConnectionsPerIp: option({ schema: integer(0, 10_000_000), default: 100, arg: 'n', help: 'Open connections per client address (0 = unlimited); beyond it upgrades get 429' }),
  maxUsers: option({ schema: integer(0, 10_000_000), default: 10000, arg: 'n', help: 'Logged-in users in total (0 = unlimited); beyond it login fails with server_full' }),
  loginTimeoutMs: option({ schema: integer(0, 3_600_000), default: 5000, arg: 'ms', help: 'Close connections that have not logged in after this long, with 4000 (0 = never)' }),
  idleTimeout: option({ schema: integer(0, 960), default: 30, arg: 's', help: 'Ping every connection; close one that stops answering within this long (8–960; 0 = never)' }),
  backpressureLimit: option({ schema: integer(1024, 1024 * 1024 * 1024), default: 1024 * 1024, arg: 'bytes', help: 'Bytes queued for a client that does not read before it is closed' }),
  shutdownTimeoutMs: option({ schema: integer(0, 600_000), default: 5000, arg: 'ms', help: 'On SIGTERM/SIGINT, wait this long for clients to close after 1001' }),

  // Who may connect
  trustProxy: option({ schema: boolean, default: false, help: 'Take the client address from X-Forwarded-For (last hop); only behind your own proxy' }),
  allowedOrigins: option({ schema: list, default: '', arg: 'list', help: 'Comma-separated browser origins allowed to connect, * wildcards in hosts (empty = any)' }),
  authSecret: option({ schema: secret, default: '', arg: 'secret', help: 'HS256 secret: require a JWT whose sub is the login name (prefer the env variable)' }),
  tlsCert: option({ schema: text, default: '', arg: 'file', help: 'PEM certificate file: serve wss:// and https:// (with --tls-key)' }),
  tlsKey: option({ schema: text, default: '', arg: 'file', help: 'PEM private key file for --tls-cert' }),

  // Rooms, resume, discovery
  roomSize: option({ schema: integer(0, 10_000), default: 16, arg: 'n', help: 'Members per room (0 = unlimited); beyond it join fails with room_full' }),
  roomsPerUser: option({ schema: integer(0, 10_000), default: 8, arg: 'n', help: 'Rooms one user may be in at once (0 = unlimited)' }),
  graceMs: option({ schema: integer(0, 3_600_000), default: 30000, arg: 'ms', help: 'How long a dropped resumable session waits for its client (0 = resume off)' }),
  queueMessages: option({ schema: integer(1, 100_000), default: 128, arg: 'n', help: 'Messages queued for a user in its grace period; more get queue_full' }),
  queueBytes: option({ schema: integer(1024, 64 * 1024 * 1024), default: 262144, arg: 'bytes', help: 'Bytes queued for a user in its grace period; more get queue_full' }),
  discovery: option({ schema: boolean, default: false, help: 'Let clients list logged-in users (list message, GET /users) and watch presence' }),

  // PeerJS
  peerjs: option({ schema: boolean, default: true, help: 'Speak the PeerJS server protocol too: WebSocket at <path>peerjs, ids at <path><key>/id (--no-peerjs: off)' }),
  peerjsPath: option({
    schema: v.pipe(v.string(), v.regex(/^\/[A-Za-z0-9._~!$&'()*+,;=:@%/-]*$/, 'must be a URL path starting with /')),
    default: '/',
    arg: 'path',
    help: "Where PeerJS clients find the server: their `path` option (as peer's --path)",
  }),
  peerjsKey: option({
    schema: v.pipe(v.string(), v.regex(/^[A-Za-z0-9._~-]{1,128}$/, 'must be 1–128 letters, digits or ._~-')),
    default: 'peerjs',
    arg: 'key',
    help: "The key PeerJS clients present: their `key` option (as peer's --key)",
  }),

  // Cluster
  redis: option({
    schema: v.pipe(text, v.check((s) => s === '' || /^(redis|rediss|valkey|valkeys):\/\/[^\s]+$/.test(s), 'must be a redis:// or rediss:// URL')),
    default: '',
    arg: 'url',
    help: 'Share names and delivery with other nodes through Redis/Valkey: redis://[user:pass@]host:port/db or rediss://',
  }),
  redisPrefix: option({ schema: text, default: 'signalbox:', arg: 'prefix', help: 'Prefix of every Redis key and channel (several deployments can share a Redis)' }),
  presenceTtlMs: option({ schema: integer(300, 600_000), default: 10000, arg: 'ms', help: "With --redis: how long a crashed node's lease, and so its users' names, outlives it; partners hear leave within 1.5x this" }),
  nodeId: option({ schema: text, default: '', arg: 'id', help: 'With --redis: this node\'s name in Redis (default: random)' }),
  workers: option({ schema: integer(1, 256), default: 1, arg: 'n', help: 'Run n server processes on one port (needs --redis): one per core' }),
  reusePort: option({ schema: boolean, default: false, help: 'Let several processes listen on the same port (set by --workers)' }),

  // ICE servers handed to clients
  stun: option({ schema: list, default: '', arg: 'url', help: 'STUN server URL for clients (repeatable, or comma-separated)' }),
  turnUrl: option({ schema: list, default: '', arg: 'url', help: 'TURN server URL for clients (repeatable, or comma-separated)' }),
  turnSecret: option({ schema: text, default: '', arg: 'secret', help: "TURN REST shared secret (coturn's static-auth-secret): clients get time-limited credentials" }),
  turnTtl: option({ schema: integer(60, 7 * 86400), default: 86400, arg: 's', help: 'Seconds a TURN credential stays valid' }),
} as const;

type Options = typeof OPTIONS;
export type OptionName = keyof Options;
export type Config = { [K in OptionName]: v.InferOutput<Options[K]['schema']> };

/** `logLevel` → `--log-level`, `SIGNALBOX_LOG_LEVEL`. */
export const flagOf = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
export const envOf = (name: string) => `SIGNALBOX_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

export class ConfigError extends Error {}

export type CliResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

/** Reads a config file's text (the entry passes the runtime's; tests their own). */
export type ReadFile = (path: string) => string;

/**
 * Resolve the configuration: defaults, then the `--config` file, then environment
 * variables, then flags. Throws a ConfigError whose message is one line naming the option
 * at fault (and the file, for a value from the file).
 */
export function parseCli(argv: readonly string[], env: Record<string, string | undefined> = {}, readFile?: ReadFile): CliResult {
  const names = Object.keys(OPTIONS) as OptionName[];
  const byFlag = new Map(names.map((n) => [flagOf(n), n]));
  const raw: Partial<Record<OptionName, unknown>> = {};
  const origin: Partial<Record<OptionName, string>> = {};

  for (const name of names) {
    const value = env[envOf(name)];
    if (value !== undefined) {
      raw[name] = value;
      origin[name] = envOf(name);
    }
  }

  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--help' || arg === '-h') return { kind: 'help' };
    if (arg === '--version' || arg === '-v') return { kind: 'version' };
    const eq = arg.indexOf('=');
    const flag = eq === -1 ? arg : arg.slice(0, eq);
    let name = byFlag.get(flag);
    let value: string | undefined = eq === -1 ? undefined : arg.slice(eq + 1);
    if (name === undefined && flag.startsWith('--no-')) {
      const positive = byFlag.get(`--${flag.slice(5)}`);
      if (positive !== undefined && OPTIONS[positive].arg === undefined && value === undefined) {
        name = positive;
        value = 'false';
      }
    }
    if (name === undefined) throw new ConfigError(`unknown option ${flag} (see --help)`);
    if (value === undefined) {
      if (OPTIONS[name].arg === undefined) value = 'true';
      else {
        value = argv[++i];
        if (value === undefined) throw new ConfigError(`${flag} needs a value <${OPTIONS[name].arg}>`);
      }
    }
    // A list option given again adds to the list (`--stun a --stun b`).
    const repeated = OPTIONS[name].schema === list && origin[name] === flag;
    raw[name] = repeated ? `${raw[name] as string},${value}` : value;
    origin[name] = flag;
  }

  const file = raw.config;
  if (typeof file === 'string' && file !== '') {
    for (const [name, value] of readConfigFile(file, origin.config!, readFile)) {
      if (raw[name] !== undefined) continue; // a variable or flag wins
      raw[name] = value;
      origin[name] = `${flagOf(name).slice(2)} in ${file}`;
    }
  }

  const config = {} as Record<OptionName, unknown>;
  for (const name of names) {
    const { schema, default: fallback } = OPTIONS[name];
    const input = raw[name] ?? fallback;
    const result = v.safeParse(schema as v.GenericSchema, input);
    if (!result.success) {
      const where = origin[name] ?? flagOf(name);
      throw new ConfigError(`invalid ${where}: ${result.issues[0].message} (got ${JSON.stringify(input)})`);
    }
    config[name] = result.output;
  }
  if ((config.workers as number) > 1 && !config.redis) throw new ConfigError('--workers needs --redis: the processes share their users through it');
  if (Boolean(config.tlsCert) !== Boolean(config.tlsKey)) {
    throw new ConfigError(`${config.tlsCert ? '--tls-key' : '--tls-cert'} is required with ${config.tlsCert ? '--tls-cert' : '--tls-key'}`);
  }
  return { kind: 'run', config: config as Config };
}

/** The options in a JSON config file: an object keyed by flag name without `--`. */
function readConfigFile(path: string, from: string, readFile: ReadFile | undefined): Array<[OptionName, unknown]> {
  if (readFile === undefined) throw new ConfigError(`${from}: config files cannot be read here`);
  let text: string;
  try {
    text = readFile(path);
  } catch (err) {
    throw new ConfigError(`cannot read ${from} ${path}: ${(err as Error).message.split('\n')[0]}`);
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`${path} is not valid JSON: ${(err as Error).message.split('\n')[0]}`);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw new ConfigError(`${path} must hold a JSON object of options, like {"port": 9090}`);
  }
  const byKey = new Map((Object.keys(OPTIONS) as OptionName[]).map((n) => [flagOf(n).slice(2), n]));
  return Object.entries(data).map(([key, value]) => {
    const name = byKey.get(key);
    if (name === undefined || name === 'config') throw new ConfigError(`unknown option "${key}" in ${path} (keys are flag names without "--"; see --help)`);
    return [name, value];
  });
}

export function helpText(version: string): string {
  const lines = [
    `signalbox ${version}: a WebRTC signaling server`,
    '',
    'Usage: signalbox [options]',
    '',
    'Options. Each is also read from its environment variable and from the --config file',
    '(keys are flag names without "--"); flags win over variables, variables over the file.',
    '',
  ];
  for (const [name, o] of Object.entries(OPTIONS)) {
    const flag = o.arg === undefined ? flagOf(name) : `${flagOf(name)} <${o.arg}>`;
    lines.push(`  ${flag.padEnd(32)}${o.help} (default: ${JSON.stringify(o.default)}; env ${envOf(name)})`);
  }
  lines.push(`  ${'--help, -h'.padEnd(32)}Show this help`, `  ${'--version, -v'.padEnd(32)}Print the version`);
  return lines.join('\n');
}
