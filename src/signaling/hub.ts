import { type ErrorCode, ERRORS, type LoginFailure } from '../protocol/errors.ts';
import { EARLY_CANDIDATES_MAX, EARLY_CANDIDATES_MS, RATE_STRIKES_BEFORE_CLOSE } from '../protocol/limits.ts';
import { type Logger, silentLogger } from '../log.ts';
import { takeToken } from './rate.ts';
import { Session } from './session.ts';
import type { Conn, Delivery, Envelope, Outcome, Presence, RelayKind } from './types.ts';

export type LoginOutcome = { ok: true; session: Session } | { ok: false; reason: LoginFailure };

/** Why an upgrade is refused before a socket exists. */
export type Refusal = 'server_full' | 'too_many_from_ip';

/** Operator limits the core enforces; 0 means unlimited (or, for the timeout, never). */
export interface HubLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxUsers: number;
  loginTimeoutMs: number;
  /** Frames per second per connection, and the bucket size. */
  rate: number;
  burst: number;
}

export const UNLIMITED: HubLimits = {
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxUsers: 0,
  loginTimeoutMs: 0,
  rate: 0,
  burst: 0,
};

export interface HubOptions {
  delivery: Delivery;
  presence?: Presence;
  log?: Logger;
  limits?: Partial<HubLimits>;
  /** A clock in milliseconds; tests may pass their own. */
  now?: () => number;
}

/** Claims always succeed: on one node the hub's session map already keeps names unique. */
export const localPresence: Presence = { claim: () => true, release: () => {} };

const RELAY_KINDS = ['offer', 'answer', 'candidate', 'leave'] as const satisfies readonly RelayKind[];

/**
 * The signaling core: sessions, calls and routing rules. It knows nothing of Bun, Deno,
 * Redis or any wire format; faces call its operations and render what they return.
 *
 * Routing rules: a call is a link between two users, made by an offer. `answer`,
 * `candidate` and `leave` travel only between linked users. An offer to someone linked
 * with another user is `busy`; calling a second user while linked is `already_in_call`.
 */
export class Hub {
  /** Sessions hosted here, by name. A `Map`, so `__proto__` is an ordinary name. */
  readonly sessions = new Map<string, Session>();
  readonly connections = new Set<Conn>();
  /** Open connections not (yet) logged in, for the login timeout. */
  private readonly anonymous = new Set<Conn>();
  /** Sessions holding early candidates, for their expiry. */
  private readonly holding = new Set<Session>();
  /** Names whose (possibly asynchronous) claim is under way. */
  private readonly claiming = new Set<string>();
  /** Connections per client address, counted from the upgrade on. */
  private readonly perIp = new Map<string, number>();
  private reserved = 0;

  readonly stats = {
    relayed: Object.fromEntries(RELAY_KINDS.map((k) => [k, 0])) as Record<RelayKind, number>,
    errors: Object.fromEntries(Object.keys(ERRORS).map((k) => [k, 0])) as Record<ErrorCode, number>,
    logins: 0,
    loginFailures: 0,
  };

  private readonly delivery: Delivery;
  private readonly presence: Presence;
  private readonly limits: HubLimits;
  readonly log: Logger;
  readonly now: () => number;
  private sweeper: ReturnType<typeof setInterval> | undefined;

  constructor({ delivery, presence = localPresence, log = silentLogger, limits, now = () => performance.now() }: HubOptions) {
    this.delivery = delivery;
    this.presence = presence;
    this.log = log;
    this.limits = { ...UNLIMITED, ...limits };
    this.now = now;
  }

  /** Start the once-a-tick sweep (login timeouts, early candidates); no per-message timers. */
  start(): void {
    if (this.sweeper !== undefined) return;
    const shortest = Math.min(this.limits.loginTimeoutMs || EARLY_CANDIDATES_MS, EARLY_CANDIDATES_MS);
    const every = Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
  }

  stop(): void {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
  }

  // ── connections ─────────────────────────────────────────────────────────────

  /** Count an upgrade from `ip` before it happens; null, or why it is refused. */
  reserve(ip: string): Refusal | null {
    const { maxConnections, maxConnectionsPerIp } = this.limits;
    if (maxConnections > 0 && this.reserved >= maxConnections) return 'server_full';
    const n = this.perIp.get(ip) ?? 0;
    if (maxConnectionsPerIp > 0 && n >= maxConnectionsPerIp) return 'too_many_from_ip';
    this.perIp.set(ip, n + 1);
    this.reserved++;
    return null;
  }

  /** Give back a reservation whose upgrade did not happen (or whose socket closed). */
  unreserve(ip: string): void {
    this.reserved--;
    const n = (this.perIp.get(ip) ?? 1) - 1;
    if (n <= 0) this.perIp.delete(ip);
    else this.perIp.set(ip, n);
  }

  open(conn: Conn): void {
    this.connections.add(conn);
    this.anonymous.add(conn);
    this.log.info('connect', { conn: conn.data.id, ip: conn.data.ip });
  }

  /** One inbound frame: rate limit, then the connection's face. Never throws. */
  receive(conn: Conn, frame: string | Uint8Array): void {
    const { rate, burst } = this.limits;
    const state = conn.data;
    if (rate > 0 && !takeToken(state, this.now(), rate, burst)) {
      this.countError('rate_limited');
      if (state.strikes > RATE_STRIKES_BEFORE_CLOSE) {
        this.log.warn('rate_limit_close', { conn: state.id, user: state.session?.name });
        conn.close(4001, 'rate limit exceeded');
      } else conn.send(state.face.error('rate_limited', ERRORS.rate_limited));
      return;
    }
    try {
      state.face.handle(conn, frame);
    } catch (err) {
      // A bug must cost one message, not the process or the other users.
      this.countError('internal');
      this.log.error('handler_failed', { conn: state.id, err });
      conn.send(state.face.error('internal', ERRORS.internal));
    }
  }

  /** The socket is gone: free its name at once and tell its partner. */
  close(conn: Conn): void {
    if (!this.connections.delete(conn)) return;
    this.anonymous.delete(conn);
    this.unreserve(conn.data.ip);
    const session = conn.data.session;
    this.log.info('close', { conn: conn.data.id, user: session?.name });
    if (session === null) return;
    conn.data.session = null;
    session.conn = null;
    this.end(session);
  }

  // ── sessions ────────────────────────────────────────────────────────────────

  /** Claim `name` for `conn`. Synchronous on one node; a promise where presence is remote. */
  login(conn: Conn, name: string): LoginOutcome | Promise<LoginOutcome> {
    const identity = conn.data.identity;
    if (identity !== null && identity !== name) return this.refuse('unauthorized');
    if (this.sessions.has(name) || this.claiming.has(name)) return this.refuse('name_taken');
    const { maxUsers } = this.limits;
    if (maxUsers > 0 && this.sessions.size + this.claiming.size >= maxUsers) return this.refuse('server_full');
    const claimed = this.presence.claim(name);
    if (claimed === true) return this.admit(conn, name);
    if (claimed === false) return this.refuse('name_taken');
    this.claiming.add(name);
    conn.data.pending = true;
    const settle = () => {
      this.claiming.delete(name);
      conn.data.pending = false;
    };
    return claimed.then(
      (ok) => {
        settle();
        if (!ok) return this.refuse('name_taken');
        // The socket may have closed while the claim was in flight: give the name back.
        if (!this.connections.has(conn)) {
          this.presence.release(name);
          return this.refuse('name_taken');
        }
        return this.admit(conn, name);
      },
      (err: unknown) => {
        settle();
        throw err;
      },
    );
  }

  private refuse(reason: LoginFailure): LoginOutcome {
    this.stats.loginFailures++;
    return { ok: false, reason };
  }

  private admit(conn: Conn, name: string): LoginOutcome {
    const session = new Session(name, conn, conn.data.face);
    this.sessions.set(name, session);
    this.anonymous.delete(conn);
    conn.data.session = session;
    conn.subscribe(session.topic);
    this.stats.logins++;
    this.log.info('login', { conn: conn.data.id, user: name });
    return { ok: true, session };
  }

  /** A session ends: its name is free and its partner hears `leave`. */
  private end(session: Session): void {
    this.sessions.delete(session.name);
    this.presence.release(session.name);
    this.dropEarly(session, false);
    if (session.partner !== null) this.leave(session);
  }

  // ── routing ─────────────────────────────────────────────────────────────────

  /** Forward an offer, answer or candidate from `from` to the user `to`. */
  relay(from: Session, to: string, kind: Exclude<RelayKind, 'leave'>, payload: unknown): Outcome {
    // The hot path: a message within an established call.
    if (from.partner === to) {
      const target = this.sessions.get(to);
      if (target === undefined) return this.countError('user_not_found');
      return this.deliver(target, kind, from.name, payload);
    }
    if (to === from.name) return this.countError('self_target');
    if (kind === 'offer') return this.call(from, to, payload);
    if (kind === 'candidate' && from.partner === null) return this.holdEarly(from, to, payload);
    return this.countError('not_in_call');
  }

  /** An offer outside a call: link the two users if both are free, then deliver. */
  private call(from: Session, to: string, payload: unknown): Outcome {
    if (from.partner !== null) return this.countError('already_in_call');
    const target = this.sessions.get(to);
    if (target === undefined) {
      this.dropEarly(from, true);
      return this.countError('user_not_found');
    }
    if (target.partner !== null && target.partner !== from.name) {
      this.dropEarly(from, true);
      return this.countError('busy');
    }
    from.partner = to;
    target.partner = from.name;
    const outcome = this.deliver(target, 'offer', from.name, payload);
    const early = from.early;
    if (early !== null && early.to === to) {
      from.early = null;
      this.holding.delete(from);
      for (const p of early.payloads) this.deliver(target, 'candidate', from.name, p);
    } else this.dropEarly(from, true);
    return outcome;
  }

  /** Hold a candidate sent before its offer (some stacks gather before they offer). */
  private holdEarly(from: Session, to: string, payload: unknown): Outcome {
    // Holding is for a call about to start; to a user who is not here it is an error now.
    if (!this.sessions.has(to)) return this.countError('user_not_found');
    let early = from.early;
    if (early !== null && early.to !== to) {
      this.dropEarly(from, true);
      early = null;
    }
    if (early === null) {
      early = from.early = { to, since: this.now(), payloads: [] };
      this.holding.add(from);
    }
    if (early.payloads.length >= EARLY_CANDIDATES_MAX) return this.countError('not_in_call');
    early.payloads.push(payload);
    return 'ok';
  }

  /** Drop held candidates; `report` tells the sender, one error per candidate. */
  private dropEarly(session: Session, report: boolean): void {
    const early = session.early;
    if (early === null) return;
    session.early = null;
    this.holding.delete(session);
    if (!report || session.conn === null) return;
    const message = `You are not in a call with ${JSON.stringify(early.to)}: a candidate sent before an offer was not delivered.`;
    for (let i = 0; i < early.payloads.length; i++) {
      this.countError('not_in_call');
      session.conn.send(session.face.error('not_in_call', message, { name: early.to, request: 'candidate' }));
    }
  }

  /** End the call between `from` and `to` (default: `from`'s current partner). */
  leave(from: Session, to: string | undefined = from.partner ?? undefined): Outcome {
    if (to === undefined || from.partner !== to) return this.countError(to === from.name ? 'self_target' : 'not_in_call');
    from.partner = null;
    const target = this.sessions.get(to);
    if (target === undefined) return 'ok';
    if (target.partner === from.name) target.partner = null;
    return this.deliver(target, 'leave', from.name, undefined);
  }

  private deliver(target: Session, kind: RelayKind, from: string, payload: unknown): Outcome {
    const env: Envelope = { kind, from, to: target.name, payload };
    const delivered = this.delivery.publish(target.topic, target.face.render(env));
    if (delivered === 0) return this.countError('user_not_found');
    this.stats.relayed[kind]++;
    return 'ok';
  }

  /** How many of each thing the hub holds: for /healthz, metrics and leak checks. */
  census() {
    return {
      connections: this.connections.size,
      anonymous: this.anonymous.size,
      sessions: this.sessions.size,
      calls: [...this.sessions.values()].filter((s) => s.partner !== null).length / 2,
      holding: this.holding.size,
      claiming: this.claiming.size,
      addresses: this.perIp.size,
      reserved: this.reserved,
    };
  }

  countError<C extends ErrorCode>(code: C): C {
    this.stats.errors[code]++;
    return code;
  }

  // ── housekeeping ────────────────────────────────────────────────────────────

  private sweep(): void {
    const now = this.now();
    const { loginTimeoutMs } = this.limits;
    if (loginTimeoutMs > 0) {
      for (const conn of this.anonymous) {
        if (now - conn.data.openedAt < loginTimeoutMs || conn.data.pending) continue;
        this.anonymous.delete(conn);
        this.log.info('login_timeout', { conn: conn.data.id, ip: conn.data.ip });
        conn.close(4000, 'login timeout');
      }
    }
    for (const session of this.holding) {
      if (now - session.early!.since >= EARLY_CANDIDATES_MS) this.dropEarly(session, true);
    }
  }
}
