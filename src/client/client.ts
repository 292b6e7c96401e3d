import { backoffDelay } from './backoff.ts';
import { Emitter } from './emitter.ts';
import type {
  ClientErrorCode,
  ClientEvents,
  ClientOptions,
  ClientState,
  DefaultSignals,
  ErrorMessage,
  ListOptions,
  LoginOk,
  LoginReply,
  ServerMessage,
  Signals,
  UsersMessage,
} from './types.ts';

/** A rejected promise of the client: `code` says why, `reply` is the server's answer, if any. */
export class SignalboxError extends Error {
  override name = 'SignalboxError';
  constructor(
    readonly code: ClientErrorCode,
    message: string,
    readonly reply?: ErrorMessage | LoginReply,
  ) {
    super(message);
  }
}

/** Whether `msg` answers a request: resolve it with a value, reject it, or not this one. */
type Settle = (msg: ServerMessage, resent: boolean) => { ok: true; value: unknown } | { ok: false } | undefined;

interface Request {
  frame: string;
  settle: Settle;
  resolve: (value: never) => void;
  reject: (err: SignalboxError) => void;
  timer?: ReturnType<typeof setTimeout>;
  /** Sent again after a reconnect: the first send may have been lost with the socket. */
  resent: boolean;
}

interface Outgoing {
  frame: string;
  request?: Request;
}

// Closes after which reconnecting would be wrong: our own 1000, and 4002 (another
// connection resumed this session: reconnecting would take it back and fight).
const FINAL_CLOSES = new Set([1000, 4002]);
// Closing with 1000 ends the session on the server; any other code keeps it resumable.
const NORMAL = 1000;
const ABANDON = 4100;

const fail = (reply: ErrorMessage | LoginReply & { success: false }) =>
  new SignalboxError('code' in reply ? reply.code : reply.reason, reply.message, reply);

/**
 * A signalbox client for browsers and Bun: the WebSocket global and nothing else.
 * Log in, call, answer, exchange candidates, join rooms; every server message arrives as
 * a typed event. After a dropped connection it reconnects with backoff and resumes its
 * session; what it sends meanwhile is queued and sent, in order, once it is back.
 */
export class SignalboxClient<P extends Signals = DefaultSignals> extends Emitter<ClientEvents<P>> {
  readonly url: string;
  #options: Required<Omit<ClientOptions, 'protocols' | 'WebSocket'>> & Pick<ClientOptions, 'protocols'>;
  #WebSocket: NonNullable<ClientOptions['WebSocket']>;
  #ws: WebSocket | null = null;
  #opening: Promise<void> | null = null;
  #state: ClientState = 'idle';
  #name: string | null = null;
  #token: string | null = null;
  #login: { resolve: (reply: LoginReply) => void; reject: (err: SignalboxError) => void; timer: ReturnType<typeof setTimeout> } | null = null;
  #loggingIn = false;
  #pending: Request[] = [];
  #queue: Outgoing[] = [];
  #attempt = 0;
  #retry: ReturnType<typeof setTimeout> | undefined;

  constructor(
    url: string,
    {
      resumable = true,
      reconnect = true,
      backoff = {},
      maxAttempts = Number.POSITIVE_INFINITY,
      queueLimit = 256,
      requestTimeoutMs = 10_000,
      protocols,
      WebSocket: ws = globalThis.WebSocket,
    }: ClientOptions = {},
  ) {
    super();
    this.url = url;
    this.#WebSocket = ws;
    this.#options = { resumable, reconnect, backoff, maxAttempts, queueLimit, requestTimeoutMs, protocols };
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The name this client is logged in with (kept while reconnecting). */
  get name(): string | null {
    return this.#name;
  }

  /** Open the socket (`login` does it when needed). */
  connect(): Promise<void> {
    if (this.#state === 'closed') return Promise.reject(new SignalboxError('closed', 'The client is closed.'));
    if (this.#ws?.readyState === 1) return Promise.resolve();
    return (this.#opening ??= new Promise<void>((resolve, reject) => {
      const ws = new this.#WebSocket(this.url, this.#options.protocols);
      this.#ws = ws;
      if (this.#state !== 'reconnecting') this.#setState('connecting');
      // A handshake into a dead network can hang for minutes: give up on it like a reply.
      const timer = setTimeout(() => ws.close(), this.#options.requestTimeoutMs);
      ws.onopen = () => {
        clearTimeout(timer);
        if (this.#ws !== ws) return;
        this.#opening = null;
        if (this.#state === 'connecting') this.#setState('connected');
        resolve();
      };
      ws.onmessage = (e) => {
        if (this.#ws === ws) this.#receive(e.data);
      };
      ws.onclose = (e) => {
        clearTimeout(timer);
        if (this.#ws !== ws) return;
        this.#ws = null;
        this.#opening = null;
        reject(new SignalboxError('connect_failed', `Cannot connect to ${this.url} (close ${e.code}).`));
        this.#dropped(e.code, e.reason);
      };
    }));
  }

  /** Log in as `name`. Resolves with the server's reply; rejects with its failure reason. */
  async login(name: string, { resumable = this.#options.resumable }: { resumable?: boolean } = {}): Promise<LoginOk> {
    if (this.#name !== null) throw new SignalboxError('already_logged_in', `Already logged in as ${JSON.stringify(this.#name)}.`);
    if (this.#loggingIn) throw new SignalboxError('already_logged_in', 'A login is already under way.');
    this.#loggingIn = true;
    try {
      await this.connect();
      const reply = await this.#askLogin(resumable ? { type: 'login', name, resumable: true } : { type: 'login', name });
      if (!reply.success) throw fail(reply);
      return reply;
    } finally {
      this.#loggingIn = false;
    }
  }

  /** Call `name` (or renegotiate): send an SDP offer. */
  call(name: string, offer: P['description']): void {
    this.#send({ type: 'offer', name, offer });
  }

  answer(name: string, answer: P['description']): void {
    this.#send({ type: 'answer', name, answer });
  }

  /** Send an ICE candidate (`null`: end of candidates). */
  candidate(name: string, candidate: P['candidate']): void {
    this.#send({ type: 'candidate', name, candidate });
  }

  /** End the call with `name` (without it: the current call). */
  hangUp(name?: string): void {
    this.#send(name === undefined ? { type: 'leave' } : { type: 'leave', name });
  }

  /** Join (or create) a room. Resolves with the other members. */
  join(room: string): Promise<string[]> {
    return this.#request({ type: 'join', room }, (m) => {
      if (m.type === 'joined' && m.room === room) return { ok: true, value: m.peers };
      return refused(m, 'join', room);
    });
  }

  leaveRoom(room: string): Promise<void> {
    return this.#request({ type: 'leave-room', room }, (m, resent) => {
      if (m.type === 'left' && m.room === room) return { ok: true, value: undefined };
      // Sent again after a reconnect: the first one may have arrived, so "not in it" is done.
      if (resent && m.type === 'error' && m.code === 'not_in_room' && m.room === room) return { ok: true, value: undefined };
      return refused(m, 'leave-room', room);
    });
  }

  /** One page of logged-in users (servers with --discovery); `watch` also delivers presence events. */
  list(options: ListOptions = {}): Promise<UsersMessage> {
    return this.#request({ type: 'list', ...options }, (m) => {
      if (m.type === 'users') return { ok: true, value: m };
      if (m.type !== 'error') return undefined;
      // Errors name the request they refuse; older servers left it out for these.
      if (m.request === 'list') return { ok: false };
      if (m.request !== undefined) return undefined;
      const ours = m.code === 'discovery_disabled' || (m.code === 'invalid_message' && ['cursor', 'limit', 'watch'].includes(m.field ?? ''));
      return ours ? { ok: false } : undefined;
    });
  }

  /** End the session (close 1000: the server frees the name at once) and stop reconnecting. */
  close(): Promise<void> {
    if (this.#state === 'closed') return Promise.resolve();
    const ws = this.#ws;
    this.#finish(NORMAL, 'closed by the client');
    if (ws === null || ws.readyState === 3) return Promise.resolve();
    return new Promise((resolve) => {
      ws.addEventListener('close', () => resolve());
      ws.close(NORMAL);
    });
  }

  // ── sending ────────────────────────────────────────────────────────────────

  #send(msg: object, request?: Request): void {
    if (this.#state === 'closed') throw new SignalboxError('closed', 'The client is closed.');
    if (this.#name === null) throw new SignalboxError('not_logged_in', 'Log in first.');
    const out: Outgoing = { frame: JSON.stringify(msg), request };
    if (request !== undefined) request.frame = out.frame;
    // A socket already closing would swallow the frame: queue it for after the reconnect.
    if (this.#state === 'online' && this.#ws?.readyState === 1) return this.#transmit(out);
    if (this.#queue.length >= this.#options.queueLimit) {
      throw new SignalboxError('send_queue_full', `Reconnecting, and ${this.#queue.length} messages are already waiting.`);
    }
    this.#queue.push(out);
  }

  #transmit({ frame, request }: Outgoing): void {
    this.#ws!.send(frame);
    if (request === undefined) return;
    clearTimeout(request.timer);
    request.timer = setTimeout(() => {
      this.#pending.splice(this.#pending.indexOf(request), 1);
      request.reject(new SignalboxError('timeout', `No reply within ${this.#options.requestTimeoutMs} ms.`));
    }, this.#options.requestTimeoutMs);
  }

  #request<T>(msg: object, settle: Settle): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const request: Request = { frame: '', settle, resolve: resolve as (value: never) => void, reject, resent: false };
      try {
        this.#send(msg, request);
      } catch (err) {
        return reject(err);
      }
      this.#pending.push(request);
    });
  }

  #askLogin(msg: object): Promise<LoginReply> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#login = null;
        reject(new SignalboxError('timeout', `No login reply within ${this.#options.requestTimeoutMs} ms.`));
      }, this.#options.requestTimeoutMs);
      this.#login = { resolve, reject, timer };
      this.#ws!.send(JSON.stringify(msg));
    });
  }

  // ── receiving ──────────────────────────────────────────────────────────────

  #receive(data: unknown): void {
    if (typeof data !== 'string') return;
    let msg: ServerMessage;
    try {
      msg = JSON.parse(data);
    } catch {
      return; // the server sends only JSON; nothing to do with anything else
    }
    if (msg.type === 'login') {
      const waiter = this.#login;
      this.#login = null;
      if (waiter !== null) {
        clearTimeout(waiter.timer);
        // Online before any listener hears of it, so a `login` listener may send at once.
        if (msg.success && this.#state !== 'closed') this.#online(msg);
        waiter.resolve(msg);
      }
    } else {
      for (const request of this.#pending) {
        const verdict = request.settle(msg, request.resent);
        if (verdict === undefined) continue;
        clearTimeout(request.timer);
        this.#pending.splice(this.#pending.indexOf(request), 1);
        if (verdict.ok) request.resolve(verdict.value as never);
        else request.reject(fail(msg as ErrorMessage));
        break;
      }
    }
    this.emit('message', msg);
    this.emit(msg.type, msg as never);
  }

  #online(reply: LoginOk): void {
    this.#name = reply.name;
    this.#token = reply.resume ?? null;
    this.#attempt = 0;
    this.#setState('online');
    const queue = this.#queue.splice(0);
    for (const out of queue) this.#transmit(out);
  }

  // ── reconnecting ───────────────────────────────────────────────────────────

  #dropped(code: number, reason: string): void {
    const login = this.#login;
    this.#login = null;
    clearTimeout(login?.timer);
    login?.reject(new SignalboxError('closed', `The connection closed (${code}) before the login reply.`));
    if (this.#state === 'closed') return;
    const reconnecting = this.#name !== null && this.#options.reconnect && !FINAL_CLOSES.has(code);
    if (!reconnecting) {
      if (this.#name !== null) return this.#finish(code, reason);
      this.#setState('idle');
      this.emit('close', { code, reason, reconnecting: false });
      return;
    }
    if (this.#state === 'online') {
      // Requests whose replies were lost go again first, in their order, then the rest.
      const resend = this.#pending.filter((r) => r.timer !== undefined);
      for (const r of resend) {
        clearTimeout(r.timer);
        r.timer = undefined;
        r.resent = true;
      }
      this.#queue.unshift(...resend.map((r) => ({ frame: r.frame, request: r })));
      this.#setState('reconnecting');
    }
    this.emit('close', { code, reason, reconnecting: true });
    this.#schedule();
  }

  #schedule(): void {
    const attempt = ++this.#attempt;
    if (attempt > this.#options.maxAttempts) return this.#finish(1006, `gave up after ${attempt - 1} attempts`);
    const delayMs = backoffDelay(attempt, this.#options.backoff);
    this.emit('reconnecting', { attempt, delayMs });
    this.#retry = setTimeout(() => void this.#reconnect(), delayMs);
  }

  async #reconnect(): Promise<void> {
    try {
      await this.connect();
    } catch {
      return; // the socket's close already scheduled the next attempt
    }
    const name = this.#name!;
    const ws = this.#ws;
    let reply: LoginReply;
    try {
      reply = await this.#askLogin(
        this.#token !== null ? { type: 'login', name, resume: this.#token } : { type: 'login', name, resumable: this.#options.resumable || undefined },
      );
    } catch {
      if (this.#ws === ws) ws?.close(ABANDON, 'no login reply'); // not 1000: keep the session
      return;
    }
    if (this.#state === 'closed') return;
    if (reply.success) this.emit('reconnected', { resumed: reply.resumed === true });
    else if (reply.reason === 'server_full') ws?.close(ABANDON, 'server full');
    else {
      // The name went to someone else (the grace period ended) or is no longer allowed.
      this.#finish(NORMAL, `login failed: ${reply.reason}`, fail(reply));
      ws?.close(NORMAL);
    }
  }

  /** Stop for good: reject what waits, drop the queue, tell the listeners. */
  #finish(code: number, reason: string, error = new SignalboxError('closed', `The client closed: ${reason}.`)): void {
    clearTimeout(this.#retry);
    this.#setState('closed');
    const login = this.#login;
    this.#login = null;
    clearTimeout(login?.timer);
    login?.reject(error);
    for (const r of this.#pending.splice(0)) {
      clearTimeout(r.timer);
      r.reject(error);
    }
    this.#queue.length = 0;
    this.emit('close', { code, reason, reconnecting: false });
  }

  #setState(state: ClientState): void {
    if (this.#state === state) return;
    this.#state = state;
    this.emit('state', { state });
  }
}

/** The error that answers a room request: its own, or a validation error about `room`. */
function refused(m: ServerMessage, request: string, room: string) {
  if (m.type !== 'error') return undefined;
  if (m.request === request && m.room === room) return { ok: false as const };
  // A validation error about `room` (older servers did not name the request).
  if ((m.request === request || m.request === undefined) && m.code === 'invalid_message' && m.field === 'room') return { ok: false as const };
  return undefined;
}

/** A client for the signalbox server at `url` (`ws://host:9090/`). */
export function createClient<P extends Signals = DefaultSignals>(url: string, options?: ClientOptions): SignalboxClient<P> {
  return new SignalboxClient<P>(url, options);
}
