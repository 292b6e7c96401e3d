import { afterAll, describe, expect, test } from 'bun:test';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, envOf, flagOf, helpText, OPTIONS, parseCli } from '../src/config.ts';

const dir = mkdtempSync(join(tmpdir(), 'signalbox-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
/** A config file with `text` in it, on disk. */
const file = (text: string) => {
  const path = join(dir, `config-${++files}.json`);
  writeFileSync(path, text);
  return path;
};
const readFile = (path: string) => readFileSync(path, 'utf8');

const run = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseCli(argv, env, readFile);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.config;
};

/** The one-line message a bad configuration stops with. */
const message = (argv: string[], env: Record<string, string> = {}) => {
  try {
    parseCli(argv, env, readFile);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).not.toContain('\n');
    return (err as Error).message;
  }
  throw new Error('no error');
};

describe('configuration', () => {
  test('defaults: the seed port on every interface, info logs', () => {
    expect(run([])).toMatchObject({ port: 9090, host: '0.0.0.0', logLevel: 'info' });
  });

  test('flags in both spellings, and environment variables, flags winning', () => {
    expect(run(['--port', '1234']).port).toBe(1234);
    expect(run(['--port=1235']).port).toBe(1235);
    expect(run([], { SIGNALBOX_PORT: '1236', SIGNALBOX_LOG_LEVEL: 'debug' })).toMatchObject({ port: 1236, logLevel: 'debug' });
    expect(run(['--port', '1237'], { SIGNALBOX_PORT: '1236' }).port).toBe(1237);
  });

  test('a bad value stops with one line naming the option', () => {
    expect(message(['--port', 'abc'])).toBe('invalid --port: must be an integer (got "abc")');
    expect(message(['--port', '70000'])).toBe('invalid --port: must be at most 65535 (got "70000")');
    expect(message([], { SIGNALBOX_PORT: '-1' })).toBe('invalid SIGNALBOX_PORT: must be at least 0 (got "-1")');
    expect(message(['--log-level', 'loud'])).toContain('invalid --log-level: must be one of');
    expect(message(['--nope'])).toBe('unknown option --nope (see --help)');
    expect(message(['--port'])).toBe('--port needs a value <n>');
    expect(message(['--log-format', 'xml'])).toBe('invalid --log-format: must be one of pretty, json (got "xml")');
  });

  test('--help lists every option with its default and environment variable', () => {
    for (const flag of ['--config <file>', '--log-format <format>', '--metrics ', '--metrics-token <token>']) expect(helpText('1.2.3')).toContain(flag);
    expect(parseCli(['--help']).kind).toBe('help');
    expect(parseCli(['-v']).kind).toBe('version');
    const help = helpText('1.2.3');
    for (const [name, o] of Object.entries(OPTIONS)) {
      const line = help.split('\n').find((l) => l.trimStart().startsWith(`${flagOf(name)} `));
      expect(line).toBeDefined();
      expect(line).toContain(envOf(name));
      expect(line).toContain(JSON.stringify(o.default));
    }
  });
});

describe('the config file (--config, JSON)', () => {
  test('values of every kind: numbers, booleans, lists as arrays or strings', () => {
    const path = file(JSON.stringify({ port: 1234, 'trust-proxy': true, demo: false, stun: ['stun:a', 'stun:b'], 'turn-url': 'turn:x,turn:y', 'log-format': 'json' }));
    expect(run(['--config', path])).toMatchObject({
      port: 1234,
      trustProxy: true,
      demo: false,
      stun: ['stun:a', 'stun:b'],
      turnUrl: ['turn:x', 'turn:y'],
      logFormat: 'json',
      host: '0.0.0.0', // not in the file: the default
    });
    // From the environment too.
    expect(run([], { SIGNALBOX_CONFIG: path }).port).toBe(1234);
  });

  test('precedence: defaults < file < environment < flags', () => {
    const path = file(JSON.stringify({ port: 1001, host: '127.0.0.2', rate: 7, 'log-level': 'warn' }));
    const config = run(['--config', path, '--port', '1003'], { SIGNALBOX_PORT: '1002', SIGNALBOX_HOST: '127.0.0.3' });
    expect(config.port).toBe(1003); // flag over variable over file
    expect(config.host).toBe('127.0.0.3'); // variable over file
    expect(config.rate).toBe(7); // file over default
    expect(config.logLevel).toBe('warn');
    expect(config.burst).toBe(Number(OPTIONS.burst.default)); // default
    // A list flag replaces the file's list rather than adding to it.
    expect(run(['--config', file('{"stun": ["stun:a"]}'), '--stun', 'stun:b']).stun).toEqual(['stun:b']);
  });

  test('a bad value in the file names the key and the file', () => {
    const path = file('{"max-connections": -5}');
    expect(message(['--config', path])).toBe(`invalid max-connections in ${path}: must be at least 0 (got -5)`);
    const text = file('{"host": 8080}');
    expect(message(['--config', text])).toBe(`invalid host in ${text}: must be a string (got 8080)`);
    const bool = file('{"demo": "maybe"}');
    expect(message(['--config', bool])).toBe(`invalid demo in ${bool}: must be true or false (got "maybe")`);
    // The same value from a flag would be fine: the file's value is the one at fault.
    expect(run(['--config', path, '--max-connections', '5']).maxConnections).toBe(5);
  });

  test('unknown keys, camelCase keys, a nested config, bad JSON, no object, no file: one line each', () => {
    const unknown = file('{"prot": 1}');
    expect(message(['--config', unknown])).toBe(`unknown option "prot" in ${unknown} (keys are flag names without "--"; see --help)`);
    const camel = file('{"maxConnections": 1}');
    expect(message(['--config', camel])).toStartWith('unknown option "maxConnections"');
    const nested = file(JSON.stringify({ config: '/etc/other.json' }));
    expect(message(['--config', nested])).toStartWith('unknown option "config"');
    const broken = file('{"port": 1,');
    expect(message(['--config', broken])).toStartWith(`${broken} is not valid JSON: `);
    const list = file('[1, 2]');
    expect(message(['--config', list])).toBe(`${list} must hold a JSON object of options, like {"port": 9090}`);
    const missing = join(dir, 'missing.json');
    expect(message(['--config', missing])).toStartWith(`cannot read --config ${missing}: ENOENT`);
    expect(message([], { SIGNALBOX_CONFIG: missing })).toStartWith(`cannot read SIGNALBOX_CONFIG ${missing}: `);
  });

  test('--help answers even when the file is bad', () => {
    expect(parseCli(['--config', join(dir, 'missing.json'), '--help'], {}, readFile).kind).toBe('help');
  });
});
