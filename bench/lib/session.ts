/**
 * Session-level steps shared by the scenarios and the holder processes: open a logged-in
 * connection, wait for a given message, and run one full call between two fresh users.
 */
import type { Dialect } from './dialect.ts';
import { connect, startsWith, textOf, type WsConn } from './ws-client.ts';

export interface Target {
  host: string;
  port: number;
  dialect: Dialect;
}

/**
 * Loopback source addresses, rotated per connection: the kernel's search for a free port
 * slows sharply past ~5,000 connections per source address, and TIME_WAIT from the
 * handshake scenario would otherwise use up 127.0.0.1's ports. `base` lets processes that
 * run side by side use separate addresses.
 */
export function createAddressPool(base = 2, count = 64): () => string {
  let i = 0;
  return () => {
    const n = base + (i++ % count);
    return `127.0.${n >> 8}.${n & 0xff}`;
  };
}

/** Text frames kept until a step asks for them. */
export class Inbox {
  private items: string[] = [];
  private waiter: { prefix: Uint8Array | null; resolve: (s: string) => void; reject: (e: Error) => void } | null =
    null;
  constructor(readonly conn: WsConn) {
    conn.listen((_c, bytes, start, end) => {
      const w = this.waiter;
      if (w !== null && (w.prefix === null || startsWith(bytes, start, end, w.prefix))) {
        this.waiter = null;
        w.resolve(textOf(bytes, start, end));
      } else if (this.items.length < 64) this.items.push(textOf(bytes, start, end));
    });
    conn.onClosed = () => {
      const w = this.waiter;
      this.waiter = null;
      w?.reject(new Error(`connection closed (code ${conn.closeCode}) while waiting; got ${this.items.slice(-2).join(' | ')}`));
    };
  }

  /** The next frame starting with `prefix` (frames before it are kept, not matched). */
  next(prefix: Uint8Array, timeoutMs = 5000): Promise<string> {
    const p = new TextDecoder().decode(prefix);
    const i = this.items.findIndex((s) => s.startsWith(p));
    if (i >= 0) return Promise.resolve(this.items.splice(i, 1)[0]!);
    if (this.conn.state === 'closed') return Promise.reject(new Error('connection is closed'));
    return new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiter = null;
        reject(new Error(`no ${p}… within ${timeoutMs} ms; got ${this.items.slice(-3).join(' | ') || 'nothing'}`));
      }, timeoutMs);
      this.waiter = {
        prefix,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  /** Frames nobody asked for (errors, greetings), for reports. */
  leftovers(): string[] {
    return this.items;
  }
}

/** Connect and log in as `name`; resolves with the open connection and its inbox. */
export async function openLoggedIn(
  t: Target,
  name: string,
  localAddress?: string,
  timeoutMs = 10_000,
): Promise<{ conn: WsConn; inbox: Inbox }> {
  const conn = await connect({ host: t.host, port: t.port, path: t.dialect.path(name), localAddress, timeoutMs });
  const inbox = new Inbox(conn);
  const login = t.dialect.login(name);
  if (login !== null) conn.send(login);
  try {
    await inbox.next(t.dialect.loginOk, timeoutMs);
  } catch (e) {
    conn.terminate();
    throw e;
  }
  return { conn, inbox };
}

/**
 * Make `a` and `b` call partners (offer, answer), as a browser pair does before trickling
 * candidates: signalbox relays candidates only within a call.
 */
export async function setupCall(t: Target, a: Inbox, b: Inbox, names: [string, string], timeoutMs = 5000): Promise<void> {
  const d = t.dialect;
  a.conn.send(d.offer(names[1]));
  await b.next(d.offerIn, timeoutMs);
  b.conn.send(d.answer(names[0]));
  await a.next(d.answerIn, timeoutMs);
}

/**
 * One complete call between two fresh users, as a browser pair would make it: connect
 * and log in both, offer, answer, 4 candidates each way, leave, close. Returns its duration.
 *
 * The caller closes first and the callee only once the caller's connection is gone: the
 * seed's own server throws (and its process ends) when a closing user's partner has left
 * before it, so the order is fixed for every server alike.
 */
export async function callOnce(
  caller: Target,
  callee: Target,
  names: [string, string],
  addr: () => string,
  timeoutMs = 5000,
  /** If given, how long each step took (ms), by name. */
  steps?: Record<string, number>,
): Promise<number> {
  const t0 = performance.now();
  let last = t0;
  const step = (name: string) => {
    if (steps === undefined) return;
    const now = performance.now();
    steps[name] = Math.round((now - last) * 10) / 10;
    last = now;
  };
  const [a, b] = await Promise.all([
    openLoggedIn(caller, names[0], addr(), timeoutMs),
    openLoggedIn(callee, names[1], addr(), timeoutMs),
  ]);
  step('login');
  try {
    const d = caller.dialect;
    a.conn.send(d.offer(names[1]));
    await b.inbox.next(d.offerIn, timeoutMs);
    step('offer');
    const cand = d.candidate(names[0]);
    b.conn.send(d.answer(names[0]));
    for (let i = 0; i < 4; i++) b.conn.send(cand);
    await a.inbox.next(d.answerIn, timeoutMs);
    step('answer');
    const candB = d.candidate(names[1]);
    for (let i = 0; i < 4; i++) a.conn.send(candB);
    for (let i = 0; i < 4; i++) await Promise.all([a.inbox.next(d.candidateIn, timeoutMs), b.inbox.next(d.candidateIn, timeoutMs)]);
    step('candidates');
    a.conn.send(d.leave(names[1]));
    await b.inbox.next(d.leaveIn, timeoutMs);
    step('leave');
    await a.conn.close(1000, timeoutMs);
    await b.conn.close(1000, timeoutMs);
    step('close');
    return performance.now() - t0;
  } catch (e) {
    a.conn.terminate();
    b.conn.terminate();
    throw e;
  }
}
