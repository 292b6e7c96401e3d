import * as v from 'valibot';
import { LOG_LEVELS } from './log.ts';

/**
 * Every operator setting, defined once: its flag, environment variable, default, schema and
 * help line. `--help`, validation and docs/configuration.md all come from this table.
 */

// Flags and environment variables arrive as strings; a config value may also be a number.
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

const text = v.string();

interface Option<S extends v.GenericSchema> {
  schema: S;
  default: v.InferInput<S>;
  help: string;
  /** Shown as `--flag <arg>`; booleans take no argument. */
  arg?: string;
}
const option = <S extends v.GenericSchema>(o: Option<S>) => o;

export const OPTIONS = {
  port: option({ schema: integer(0, 65535), default: 9090, arg: 'n', help: 'TCP port to listen on (0 picks a free one)' }),
  host: option({ schema: text, default: '0.0.0.0', arg: 'addr', help: 'Address to listen on' }),
  logLevel: option({
    schema: v.picklist(LOG_LEVELS, `must be one of ${LOG_LEVELS.join(', ')}`),
    default: 'info',
    arg: 'level',
    help: `Log threshold: ${LOG_LEVELS.join(', ')}`,
  }),
  demo: option({ schema: boolean, default: true, help: 'Serve the call page at GET / (--no-demo: a short text instead)' }),
} as const;

type Options = typeof OPTIONS;
export type OptionName = keyof Options;
export type Config = { [K in OptionName]: v.InferOutput<Options[K]['schema']> };

/** `logLevel` → `--log-level`, `SIGNALBOX_LOG_LEVEL`. */
export const flagOf = (name: string) => `--${name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
export const envOf = (name: string) => `SIGNALBOX_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;

export class ConfigError extends Error {}

export type CliResult = { kind: 'run'; config: Config } | { kind: 'help' } | { kind: 'version' };

/**
 * Resolve the configuration: defaults, then environment variables, then flags. Throws a
 * ConfigError whose message is one line naming the option at fault.
 */
export function parseCli(argv: readonly string[], env: Record<string, string | undefined> = {}): CliResult {
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
    raw[name] = value;
    origin[name] = flag;
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
  return { kind: 'run', config: config as Config };
}

export function helpText(version: string): string {
  const lines = [
    `signalbox ${version}: a WebRTC signaling server`,
    '',
    'Usage: signalbox [options]',
    '',
    'Options (each also read from its environment variable; flags win):',
  ];
  for (const [name, o] of Object.entries(OPTIONS)) {
    const flag = o.arg === undefined ? flagOf(name) : `${flagOf(name)} <${o.arg}>`;
    lines.push(`  ${flag.padEnd(30)}${o.help} (default: ${JSON.stringify(o.default)}; env ${envOf(name)})`);
  }
  lines.push(`  ${'--help, -h'.padEnd(30)}Show this help`, `  ${'--version, -v'.padEnd(30)}Print the version`);
  return lines.join('\n');
}
