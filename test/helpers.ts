import { join } from 'node:path';
import deno from '../deno.json' with { type: 'json' };
import { createBunServer } from '../src/adapter/bun.ts';
import { type Config, flagOf, parseCli } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import { RedisCluster } from '../src/cluster/redis.ts';
import type { Hub } from '../src/signaling/hub.ts';
import { type RedisProcess, requireRedis, startRedis } from './redis.ts';

export type Json = Record<string, any>;

export interface TestServer {
  /** A WebSocket URL; where several nodes serve, each read picks the next node. */
  readonly url: string;
  readonly http: string;
  /** The HTTP base URL of every node (one, except for the cluster target). */
  readonly nodes: string[];
  /** The in-process hub, for the few tests that check server state (absent for spawned targets). */
  readonly hub?: Hub;
  /** Subscribers of a delivery topic (in-process only). */
  subscribers?(topic: string): number;
  health(): Promise<Json>;
  stop(): Promise<void>;
}

const root = join(import.meta.dir, '..');

/**
 * `bun` (default): the server in this process. `deno`: `deno run src/main.deno.ts`.
 * `cluster`: two in-process nodes sharing a real Redis.
 */
export const target = process.env.SIGNALBOX_TARGET ?? 'bun';

/**
 * Start a real signalbox server on a free loopback port. Integration tests talk to it only
 * over the wire, so the same tests run against every target (`SIGNALBOX_TARGET`); `make
 * test` runs each test file that calls startServer() once per target.
 */
export async function startServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  if (target === 'deno') return startDeno(overrides);
  if (target === 'cluster') return startCluster(overrides);
  if (target !== 'bun') throw new Error(`unknown SIGNALBOX_TARGET ${target} (bun, deno or cluster)`);
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  const config: Config = { ...cli.config, host: '127.0.0.1', port: 0, ...overrides };
  const app = await createBunServer({ config, log: silentLogger, version: 'test' });
  const http = `http://127.0.0.1:${app.server.port}`;
  return {
    url: `ws://127.0.0.1:${app.server.port}/`,
    http,
    nodes: [http],
    hub: app.hub,
    subscribers: (topic) => app.server.subscriberCount(topic),
    health: async () => (await (await fetch(`${http}/healthz`)).json()) as Json,
    stop: () => app.stop(),
  };
}

let sharedRedis: Promise<RedisProcess> | undefined;
let clusters = 0;

/**
 * `SIGNALBOX_TARGET=cluster`: two nodes sharing one namespace through a real Redis.
 * Each read of `url` picks the next node, so consecutive clients land on different nodes.
 */
export async function startCluster(overrides: Partial<Config> = {}, nodes = 2): Promise<TestServer> {
  if (!requireRedis('the cluster target')) throw new Error('redis-server missing');
  const redis = await (sharedRedis ??= startRedis());
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  const prefix = `t${process.pid}-${++clusters}:`;
  const config: Config = {
    ...cli.config,
    host: '127.0.0.1',
    port: 0,
    redis: redis.url,
    redisPrefix: prefix,
    presenceTtlMs: 2000,
    shutdownTimeoutMs: 300,
    ...overrides,
  };
  const apps: Array<Awaited<ReturnType<typeof createBunServer>>> = [];
  for (let i = 0; i < nodes; i++) {
    const cluster = new RedisCluster({ url: config.redis, prefix, presenceTtlMs: config.presenceTtlMs, node: `n${i + 1}`, log: silentLogger });
    await cluster.connect();
    apps.push(await createBunServer({ config, log: silentLogger, version: 'test', cluster }));
  }
  let next = 0;
  const http = `http://127.0.0.1:${apps[0]!.server.port}`;
  return {
    get url() {
      const app = apps[next++ % apps.length]!;
      return `ws://127.0.0.1:${app.server.port}/`;
    },
    http,
    nodes: apps.map((a) => `http://127.0.0.1:${a.server.port}`),
    // The cluster's totals: every node's counts added up.
    health: async () => {
      const all = await Promise.all(apps.map(async (a) => (await (await fetch(`http://127.0.0.1:${a.server.port}/healthz`)).json()) as Json));
      return { ...all[0], connections: all.reduce((n, h) => n + h.connections, 0), users: all.reduce((n, h) => n + h.users, 0) };
    },
    stop: async () => {
      await Promise.all(apps.map((a) => a.stop()));
    },
  };
}

/**
 * Whether the server runs in this process, so `srv.hub` and `srv.subscribers` exist. A test
 * that reads server state through them can only run there:
 * `test.skipIf(!inProcess)(...)`, and `skipNotice()` says why once per file.
 */
export const inProcess = target === 'bun';
export function skipNotice(what: string) {
  if (!inProcess) console.warn(`SKIPPED for SIGNALBOX_TARGET=${target}: ${what} (needs the in-process server)`);
}

/** The Deno that `make` installs (or `$DENO`). */
export const denoBin = process.env.DENO ?? join(root, '.tools/deno/node_modules/.bin/deno');

/**
 * The command that runs the server from source for the current target, without flags:
 * `bun src/main.ts`, or `deno run` with the permissions of `deno task start`.
 */
export function serverCommand(): string[] {
  if (target !== 'deno') return [process.execPath, join(root, 'src/main.ts')];
  const [, ...runArgs] = deno.tasks.start.split(' ');
  return [denoBin, ...runArgs.map((a) => (a.endsWith('.ts') ? join(root, a) : a))];
}

/** Config overrides as flags, `--name=value` (lists comma-separated). */
export const flagsOf = (overrides: Partial<Config>): string[] =>
  Object.entries(overrides).map(([k, v]) => `${flagOf(k)}=${Array.isArray(v) ? v.join(',') : String(v)}`);

/** `deno run` on src/main.deno.ts, overrides as flags. */
async function startDeno(overrides: Partial<Config>): Promise<TestServer> {
  const args = flagsOf({ host: '127.0.0.1', port: 0, ...overrides });
  // Flags, not SIGNALBOX_* variables, set the config: drop those from the environment.
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SIGNALBOX_')));
  const server = await spawnServer([...serverCommand(), ...args], { cwd: root, env: { ...env, NO_COLOR: '1' } });
  const http = `http://127.0.0.1:${server.port}`;
  return {
    url: `ws://127.0.0.1:${server.port}/`,
    http,
    nodes: [http],
    health: async () => (await (await fetch(`${http}/healthz`)).json()) as Json,
    stop: () => server.stop(),
  };
}

const running = new Set<Bun.Subprocess>();
/** Kill what spawnServer() started and nothing stopped (test/setup.ts, after every file). */
export function killSpawned() {
  for (const proc of running) proc.kill('SIGKILL');
}

export interface SpawnedServer {
  readonly proc: Bun.Subprocess<'ignore', 'pipe', 'pipe'>;
  readonly port: number;
  /** The last lines of its output, for error messages. */
  readonly tail: string[];
  /** Every line of its output so far (stdout and stderr). */
  readonly lines: string[];
  /** SIGTERM, then expect exit code 0 within 10 s (SIGKILL and throw otherwise). */
  stop(): Promise<void>;
}

/** The port in a "listening" log line, pretty or JSON. */
const LISTENING = / listening url=ws:\/\/[^ ]+:(\d+)\/|"event":"listening","url":"wss?:\/\/[^"]+:(\d+)\/"/;

/**
 * Run a signalbox process (`argv` must make it listen on port 0 and log at info) and read
 * its port from the "listening" line. Its output is drained all along, since a full pipe
 * would stall the server, and the tail is kept for error messages.
 */
export async function spawnServer(
  argv: string[],
  { cwd = root, env, ms = 30_000 }: { cwd?: string; env?: Record<string, string | undefined>; ms?: number } = {},
): Promise<SpawnedServer> {
  const proc = Bun.spawn(argv, { cwd, env, stdin: 'ignore', stdout: 'pipe', stderr: 'pipe' });
  // A test that fails before its stop() must not leave a server behind.
  running.add(proc);
  void proc.exited.then(() => running.delete(proc));
  const tail: string[] = [];
  const lines: string[] = [];
  let onLine = (_line: string) => {};
  const drain = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    let buf = '';
    for await (const chunk of stream) {
      buf += decoder.decode(chunk, { stream: true });
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (tail.push(line) > 40) tail.shift();
        onLine(line);
      }
    }
  };
  void drain(proc.stdout);
  void drain(proc.stderr);

  const name = argv[0]!.split('/').pop();
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`${name}: no listening line within ${ms} ms:\n${tail.join('\n')}`));
    }, ms);
    onLine = (line) => {
      const m = LISTENING.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1] ?? m[2]));
      }
    };
    void proc.exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code} before listening:\n${tail.join('\n')}`));
    });
  });
  onLine = () => {};

  return {
    proc,
    port,
    tail,
    lines,
    async stop() {
      proc.kill('SIGTERM');
      const code = await Promise.race([proc.exited, Bun.sleep(10_000).then(() => 'timeout' as const)]);
      if (code === 0) return;
      proc.kill('SIGKILL');
      throw new Error(`${name} did not exit cleanly on SIGTERM (${code}):\n${tail.join('\n')}`);
    },
  };
}

/**
 * A real WebSocket client that records every frame it receives, so a test can await
 * the next one and, at the end, assert that nothing unexpected arrived.
 */
export class Client {
  readonly ws: WebSocket;
  readonly received: Json[] = [];
  /** Every frame ever received, including ones consumed by next(). */
  readonly log: Json[] = [];
  private waiters: Array<() => void> = [];
  closed: Promise<CloseEvent>;
  opened: Promise<void>;

  /** `tls`: Bun's client options for wss:// (a test's self-signed certificate). */
  constructor(url: string, protocols?: string | string[], headers?: Record<string, string>, tls?: Record<string, unknown>) {
    this.ws = new WebSocket(url, headers || tls ? ({ headers, protocols, tls } as any) : protocols);
    this.opened = new Promise((resolve, reject) => {
      this.ws.onopen = () => resolve();
      this.ws.onerror = () => reject(new Error(`cannot connect to ${url}`));
    });
    this.closed = new Promise((resolve) => (this.ws.onclose = resolve));
    this.ws.onmessage = (e) => {
      // A non-text or non-JSON frame is recorded as such, so the test that awaits or
      // checks for quiet sees it and fails.
      let msg: Json;
      try {
        msg = typeof e.data === 'string' ? JSON.parse(e.data) : { nonText: true };
      } catch {
        msg = { nonJson: e.data };
      }
      this.received.push(msg);
      this.log.push(msg);
      for (const w of this.waiters.splice(0)) w();
    };
  }

  static async connect(url: string): Promise<Client> {
    const c = new Client(url);
    await c.opened;
    return c;
  }

  send(msg: unknown) {
    this.ws.send(typeof msg === 'string' ? msg : JSON.stringify(msg));
  }

  /** The next received frame (optionally the next matching `match`), within `ms`. */
  async next(match: (m: Json) => boolean = () => true, ms = 2000): Promise<Json> {
    const deadline = Date.now() + ms;
    for (;;) {
      const i = this.received.findIndex(match);
      if (i !== -1) return this.received.splice(i, 1)[0]!;
      const left = deadline - Date.now();
      if (left <= 0) {
        throw new Error(`no matching frame within ${ms} ms; pending: ${JSON.stringify(this.received)}`);
      }
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  nextOfType(type: string, ms?: number) {
    return this.next((m) => m.type === type, ms);
  }

  /** Resolve once `count` frames arrived without consuming them. */
  async waitFor(count: number, ms = 5000) {
    const deadline = Date.now() + ms;
    while (this.received.length < count) {
      if (Date.now() > deadline) throw new Error(`got ${this.received.length}/${count} frames in ${ms} ms`);
      await new Promise<void>((r) => this.waiters.push(r) && setTimeout(r, 20));
    }
  }

  /** Assert nothing (more) arrives for `ms`. */
  async quiet(ms = 100) {
    await Bun.sleep(ms);
    if (this.received.length) throw new Error(`unexpected frames: ${JSON.stringify(this.received)}`);
  }

  async login(name: string, extra: Json = {}) {
    this.send({ type: 'login', name, ...extra });
    const reply = await this.nextOfType('login');
    if (!reply.success) throw new Error(`login ${name} failed: ${JSON.stringify(reply)}`);
    return reply;
  }

  close(code?: number) {
    this.ws.close(code);
    return this.closed;
  }
}

/** Connect and log in `names`, in order. */
export async function loggedIn(url: string, ...names: string[]): Promise<Client[]> {
  const clients = await Promise.all(names.map(() => Client.connect(url)));
  for (const [i, c] of clients.entries()) await c.login(names[i]!);
  return clients;
}

/** Poll until `check` holds (for server-side state that settles asynchronously). */
export async function eventually(check: () => boolean, ms = 2000, what = 'condition') {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`${what} did not hold within ${ms} ms`);
    await Bun.sleep(10);
  }
}
