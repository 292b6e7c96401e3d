import { describe, expect, test } from 'bun:test';
import { ConfigError, envOf, flagOf, helpText, OPTIONS, parseCli } from '../src/config.ts';

const run = (argv: string[], env: Record<string, string> = {}) => {
  const r = parseCli(argv, env);
  if (r.kind !== 'run') throw new Error(`expected run, got ${r.kind}`);
  return r.config;
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
    const message = (argv: string[], env: Record<string, string> = {}) => {
      try {
        parseCli(argv, env);
      } catch (err) {
        expect(err).toBeInstanceOf(ConfigError);
        return (err as Error).message;
      }
      throw new Error('no error');
    };
    expect(message(['--port', 'abc'])).toBe('invalid --port: must be an integer (got "abc")');
    expect(message(['--port', '70000'])).toBe('invalid --port: must be at most 65535 (got "70000")');
    expect(message([], { SIGNALBOX_PORT: '-1' })).toBe('invalid SIGNALBOX_PORT: must be at least 0 (got "-1")');
    expect(message(['--log-level', 'loud'])).toContain('invalid --log-level: must be one of');
    expect(message(['--nope'])).toBe('unknown option --nope (see --help)');
    expect(message(['--port'])).toBe('--port needs a value <n>');
    for (const m of [message(['--port', 'abc']), message(['--nope'])]) expect(m).not.toContain('\n');
  });

  test('--help lists every option with its default and environment variable', () => {
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
