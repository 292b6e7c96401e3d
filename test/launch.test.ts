import { describe, expect, test } from 'bun:test';
import { launch, type Runtime } from '../src/launch.ts';

/**
 * The command line both entries share (src/main.ts on Bun, src/main.deno.ts on Deno). A
 * runtime that records instead of serving; the real entries are run by binary.test.ts and,
 * under Deno, by the integration suite.
 */
class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function fake(argv: string[], extra: Partial<Runtime> = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const signals = new Map<string, () => void>();
  const calls = { stopped: 0, exit: null as number | null };
  const rt: Runtime = {
    name: 'fake',
    version: '9.8.7',
    argv,
    env: {},
    serve: () => ({ port: 4321, connections: () => 3, stop: async () => void calls.stopped++ }),
    onSignal: (s, h) => void signals.set(s, h),
    exit: (code) => {
      calls.exit = code;
      throw new Exit(code);
    },
    out: (l) => out.push(l),
    err: (l) => err.push(l),
    ...extra,
  };
  return { rt, out, err, signals, calls };
}

const run = async (rt: Runtime) => {
  try {
    return await launch(rt);
  } catch (e) {
    if (!(e instanceof Exit)) throw e;
  }
};

describe('launch', () => {
  test('a bad flag: one line on stderr naming the option, exit 2', async () => {
    const f = fake(['--port', 'x']);
    await run(f.rt);
    expect(f.err).toEqual(['signalbox: invalid --port: must be an integer (got "x")']);
    expect(f.calls.exit).toBe(2);
    expect(f.out).toEqual([]);
  });

  test('a bad value in the config file: one line naming the key and the file, exit 2', async () => {
    const f = fake(['--config', '/etc/signalbox.json'], { readFile: () => '{"port": "x"}' });
    await run(f.rt);
    expect(f.err).toEqual(['signalbox: invalid port in /etc/signalbox.json: must be an integer (got "x")']);
    expect(f.calls.exit).toBe(2);
  });

  test('--log-format json: the listening line is a JSON object', async () => {
    const f = fake(['--log-format', 'json']);
    await run(f.rt);
    expect(f.out).toHaveLength(1);
    expect(JSON.parse(f.out[0]!)).toEqual({ time: expect.any(String), level: 'info', event: 'listening', url: 'ws://0.0.0.0:4321/', version: '9.8.7', runtime: 'fake' });
  });

  test('--help and --version answer on stdout and exit 0', async () => {
    const help = fake(['--help']);
    await run(help.rt);
    expect(help.calls.exit).toBe(0);
    expect(help.out.join('\n')).toContain('signalbox 9.8.7');
    expect(help.out.join('\n')).toContain('--port <n>');
    const version = fake(['--version']);
    await run(version.rt);
    expect(version.out).toEqual(['9.8.7']);
    expect(version.calls.exit).toBe(0);
  });

  test('logs where it listens, with version and runtime', async () => {
    const f = fake(['--port', '0', '--host', '127.0.0.1']);
    const server = await run(f.rt);
    expect(server?.port).toBe(4321);
    expect(f.out).toHaveLength(1);
    expect(f.out[0]).toMatch(/ info listening url=ws:\/\/127\.0\.0\.1:4321\/ version=9\.8\.7 runtime=fake$/);
  });

  test('what the runtime cannot do is said at startup, one line each, before listening', async () => {
    const f = fake([], { unsupported: (config) => [`cannot listen on ${config.host} twice`] });
    await run(f.rt);
    expect(f.out).toHaveLength(2);
    expect(f.out[0]).toMatch(/ warn unsupported runtime=fake what="cannot listen on 0\.0\.0\.0 twice"$/);
    expect(f.out[1]).toContain(' info listening ');
  });

  test('a server that cannot start (Redis unreachable, say): one line on stderr, exit 1', async () => {
    const f = fake([], {
      serve: () => {
        throw new Error('cannot reach Redis at --redis: Connection refused');
      },
    });
    await run(f.rt);
    expect(f.err).toEqual(['signalbox: cannot reach Redis at --redis: Connection refused']);
    expect(f.calls.exit).toBe(1);
  });

  test('SIGTERM stops the server once and exits 0', async () => {
    const f = fake(['--log-level', 'warn'], { exit: ((code: number) => void (f.calls.exit = code)) as Runtime['exit'] });
    await run(f.rt);
    f.signals.get('SIGTERM')!();
    f.signals.get('SIGINT')!();
    await Bun.sleep(0);
    expect(f.calls.stopped).toBe(1);
    expect(f.calls.exit).toBe(0);
  });
});
