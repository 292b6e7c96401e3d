import { createBunServer } from '../src/adapter/bun.ts';
import { type Config, parseCli } from '../src/config.ts';
import { silentLogger } from '../src/log.ts';
import type { Hub } from '../src/signaling/hub.ts';

export type Json = Record<string, any>;

export interface TestServer {
  /** A WebSocket URL; where several nodes serve, each read picks the next node. */
  readonly url: string;
  readonly http: string;
  /** The in-process hub, for the few tests that check server state (absent for spawned targets). */
  readonly hub?: Hub;
  /** Subscribers of a delivery topic (in-process only). */
  subscribers?(topic: string): number;
  health(): Promise<Json>;
  stop(): Promise<void>;
}

/**
 * Start a real signalbox server on a free loopback port. Integration tests talk to it only
 * over the wire, so the same tests run against other targets (`SIGNALBOX_TARGET`):
 * `bun` (default) runs the server in this process.
 */
export async function startServer(overrides: Partial<Config> = {}): Promise<TestServer> {
  const target = process.env.SIGNALBOX_TARGET ?? 'bun';
  if (target !== 'bun') throw new Error(`unknown SIGNALBOX_TARGET ${target}`);
  const cli = parseCli([]);
  if (cli.kind !== 'run') throw new Error('unreachable');
  const config: Config = { ...cli.config, host: '127.0.0.1', port: 0, ...overrides };
  const app = createBunServer({ config, log: silentLogger, version: 'test' });
  const http = `http://127.0.0.1:${app.server.port}`;
  return {
    url: `ws://127.0.0.1:${app.server.port}/`,
    http,
    hub: app.hub,
    subscribers: (topic) => app.server.subscriberCount(topic),
    health: async () => (await (await fetch(`${http}/healthz`)).json()) as Json,
    stop: () => app.stop(),
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

  constructor(url: string, protocols?: string | string[], headers?: Record<string, string>) {
    this.ws = new WebSocket(url, headers ? ({ headers, protocols } as any) : protocols);
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
