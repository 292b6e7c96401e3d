import { type ErrorCode, ERRORS, type LoginFailure } from '../protocol/errors.ts';
import { EARLY_CANDIDATES_MAX, EARLY_CANDIDATES_MS, LIST_MAX, RATE_STRIKES_BEFORE_CLOSE } from '../protocol/limits.ts';
import { type Logger, silentLogger } from '../log.ts';
import { takeToken } from './rate.ts';
import { newToken, PRESENCE_TOPIC, Room, sameToken, Session } from './session.ts';
import type { Conn, Delivery, Envelope, EventKind, Outcome, Presence, RelayKind } from './types.ts';

export type LoginOutcome =
  | { ok: true; session: Session; resumed: boolean }
  | { ok: false; reason: LoginFailure };

export interface LoginOptions {
  /** Hand out a resume token (if resume is on). */
  resumable?: boolean;
  /** Take back the session held under this token. */
  resume?: string;
}

export type JoinOutcome = { ok: true; peers: string[] } | { ok: false; code: ErrorCode };

/** Why an upgrade is refused before a socket exists. */
export type Refusal = 'server_full' | 'too_many_from_ip';

/** Operator limits the core enforces; 0 means unlimited (or, for times, off). */
export interface HubLimits {
  maxConnections: number;
  maxConnectionsPerIp: number;
  maxUsers: number;
  loginTimeoutMs: number;
  /** Frames per second per connection, and the bucket size. */
  rate: number;
  burst: number;
  roomSize: number;
  roomsPerUser: number;
  /** How long a dropped resumable session waits for its client; 0 turns resume off. */
  graceMs: number;
  queueMessages: number;
  queueBytes: number;
  discovery: boolean;
}

export const UNLIMITED: HubLimits = {
  maxConnections: 0,
  maxConnectionsPerIp: 0,
  maxUsers: 0,
  loginTimeoutMs: 0,
  rate: 0,
  burst: 0,
  roomSize: 0,
  roomsPerUser: 0,
  graceMs: 0,
  queueMessages: 0,
  queueBytes: 0,
  discovery: false,
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

/** A close the client meant: the session ends at once even if it could be resumed. */
const deliberate = (code: number | undefined) => code === 1000 || code === 1005;

const RELAY_KINDS = ['offer', 'answer', 'candidate', 'leave'] as const satisfies readonly RelayKind[];

/**
 * The signaling core: sessions, calls, rooms and routing rules. It knows nothing of Bun,
 * Deno, Redis or any wire format; faces call its operations and render what they return.
 *
 * Routing rules: a call is a link between two users, made by an offer. `answer`,
 * `candidate` and `leave` travel only between linked users, or between members of a room
 * (the second kind of link). An offer to someone linked with another user is `busy`;
 * calling a second user while linked is `already_in_call`.
 */
export class Hub {
  /** Sessions hosted here, by name. A `Map`, so `__proto__` is an ordinary name. */
  readonly sessions = new Map<string, Session>();
  readonly rooms = new Map<string, Room>();
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
    resumes: 0,
  };

  private readonly delivery: Delivery;
  private readonly presence: Presence;
  readonly limits: HubLimits;
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
    for (const session of this.sessions.values()) clearTimeout(session.grace);
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

  /**
   * The socket is gone. A resumable session waits `graceMs` for its client unless the
   * client closed deliberately (1000, or no code); any other session ends at once: its
   * name is free and its partner and rooms are told.
   */
  close(conn: Conn, code?: number): void {
    if (!this.connections.delete(conn)) return;
    this.anonymous.delete(conn);
    this.unreserve(conn.data.ip);
    const session = conn.data.session;
    this.log.info('close', { conn: conn.data.id, user: session?.name, code });
    if (session === null) return;
    conn.data.session = null;
    if (session.conn !== conn) return; // resumed elsewhere meanwhile
    session.conn = null;
    if (session.token !== null && this.limits.graceMs > 0 && !deliberate(code)) this.hold(session);
    else this.end(session);
  }

  // ── sessions ────────────────────────────────────────────────────────────────

  /** Claim `name` for `conn`. Synchronous on one node; a promise where presence is remote. */
  login(conn: Conn, name: string, opts: LoginOptions = {}): LoginOutcome | Promise<LoginOutcome> {
    const identity = conn.data.identity;
    if (identity !== null && identity !== name) return this.refuse('unauthorized');
    const held = this.sessions.get(name);
    if (held !== undefined) {
      if (opts.resume !== undefined && held.token !== null && sameToken(opts.resume, held.token)) return this.resume(held, conn);
      return this.refuse('name_taken');
    }
    if (this.claiming.has(name)) return this.refuse('name_taken');
    const { maxUsers } = this.limits;
    if (maxUsers > 0 && this.sessions.size + this.claiming.size >= maxUsers) return this.refuse('server_full');
    const resumable = opts.resumable === true || opts.resume !== undefined;
    const claimed = this.presence.claim(name);
    if (claimed === true) return this.admit(conn, name, resumable);
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
        return this.admit(conn, name, resumable);
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

  private admit(conn: Conn, name: string, resumable: boolean): LoginOutcome {
    const session = new Session(name, conn, conn.data.face);
    if (resumable && this.limits.graceMs > 0) session.token = newToken();
    this.sessions.set(name, session);
    this.attach(session, conn);
    this.stats.logins++;
    this.log.info('login', { conn: conn.data.id, user: name });
    if (this.limits.discovery) this.announce(session, true);
    return { ok: true, session, resumed: false };
  }

  private attach(session: Session, conn: Conn): void {
    this.anonymous.delete(conn);
    session.conn = conn;
    conn.data.session = session;
    conn.subscribe(session.topic);
    if (session.rooms !== null) for (const room of session.rooms) conn.subscribe(room.topic);
  }

  /** Take a session back with its token: on a new socket, or from a socket not yet seen dead. */
  private resume(session: Session, conn: Conn): LoginOutcome {
    const old = session.conn;
    if (old !== null) {
      old.data.session = null;
      old.close(4002, 'session resumed on another connection');
    }
    clearTimeout(session.grace);
    session.grace = undefined;
    session.token = newToken();
    this.attach(session, conn);
    this.stats.resumes++;
    this.log.info('resume', { conn: conn.data.id, user: session.name, queued: session.queue?.length ?? 0 });
    return { ok: true, session, resumed: true };
  }

  /**
   * After a resume's login reply: deliver what waited, in order, and tell the partner and
   * rooms the user is back. (Separate so the reply goes first.)
   */
  flush(session: Session): void {
    const conn = session.conn;
    if (conn === null) return;
    const queue = session.queue;
    session.queue = null;
    session.queueBytes = 0;
    if (queue !== null) for (const frame of queue) conn.send(frame);
    this.tellPeers(session, 'peer-reconnected');
  }

  /** The socket dropped: keep the session for `graceMs`, queueing what is sent to it. */
  private hold(session: Session): void {
    session.queue = [];
    session.queueBytes = 0;
    this.log.info('grace', { user: session.name, ms: this.limits.graceMs });
    this.tellPeers(session, 'peer-disconnected');
    session.grace = setTimeout(() => {
      session.grace = undefined;
      if (session.conn !== null) return;
      this.log.info('grace_expired', { user: session.name, dropped: session.queue?.length ?? 0 });
      this.end(session);
    }, this.limits.graceMs);
  }

  /** A session ends: its name is free, its partner hears `leave`, its rooms `peer-left`. */
  private end(session: Session): void {
    this.sessions.delete(session.name);
    this.presence.release(session.name);
    clearTimeout(session.grace);
    session.queue = null;
    this.dropEarly(session, false);
    if (session.partner !== null) this.leave(session);
    if (session.rooms !== null) for (const room of [...session.rooms]) this.exitRoom(session, room);
    if (this.limits.discovery) this.announce(session, false);
  }

  private tellPeers(session: Session, kind: 'peer-disconnected' | 'peer-reconnected'): void {
    const partner = session.partner === null ? undefined : this.sessions.get(session.partner);
    if (partner !== undefined) this.deliver(partner, kind, session.name, undefined);
    if (session.rooms !== null) for (const room of session.rooms) this.toRoom(room, kind, session);
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
    if (from.inRoomWith(to)) {
      const target = this.sessions.get(to);
      if (target === undefined) return this.countError('user_not_found');
      return this.deliver(target, kind, from.name, payload);
    }
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

  /**
   * End the call between `from` and `to` (default: `from`'s current partner). Between
   * room members who are not in a 1:1 call, `leave` is relayed and changes nothing else.
   */
  leave(from: Session, to: string | undefined = from.partner ?? undefined): Outcome {
    if (to !== undefined && from.partner !== to && to !== from.name && from.inRoomWith(to)) {
      const target = this.sessions.get(to);
      return target === undefined ? this.countError('user_not_found') : this.deliver(target, 'leave', from.name, undefined);
    }
    if (to === undefined || from.partner !== to) return this.countError(to === from.name ? 'self_target' : 'not_in_call');
    from.partner = null;
    const target = this.sessions.get(to);
    if (target === undefined) return 'ok';
    if (target.partner === from.name) target.partner = null;
    return this.deliver(target, 'leave', from.name, undefined);
  }

  /** Deliver to one user: one publish on its topic, or into its queue while it reconnects. */
  private deliver(target: Session, kind: RelayKind | EventKind, from: string, payload: unknown): Outcome {
    const frame = target.face.render({ kind, from, to: target.name, payload });
    if (target.conn === null) return this.enqueue(target, frame);
    if (this.delivery.publish(target.topic, frame) === 0) return this.countError('user_not_found');
    if (kind in this.stats.relayed) this.stats.relayed[kind as RelayKind]++;
    return 'ok';
  }

  private enqueue(target: Session, frame: string): Outcome {
    const queue = target.queue;
    if (queue === null) return this.countError('user_not_found');
    const { queueMessages, queueBytes } = this.limits;
    if ((queueMessages > 0 && queue.length >= queueMessages) || (queueBytes > 0 && target.queueBytes + frame.length > queueBytes)) {
      return this.countError('queue_full');
    }
    queue.push(frame);
    target.queueBytes += frame.length;
    return 'ok';
  }

  // ── rooms ───────────────────────────────────────────────────────────────────

  join(session: Session, name: string): JoinOutcome {
    const { roomSize, roomsPerUser } = this.limits;
    let room = this.rooms.get(name);
    if (room !== undefined && room.members.has(session.name)) return { ok: true, peers: this.peersOf(room, session) };
    if (roomsPerUser > 0 && (session.rooms?.size ?? 0) >= roomsPerUser) return { ok: false, code: this.countError('too_many_rooms') };
    if (room !== undefined && roomSize > 0 && room.members.size >= roomSize) return { ok: false, code: this.countError('room_full') };
    if (room === undefined) this.rooms.set(name, (room = new Room(name)));
    // Tell the others before subscribing, so the joiner does not hear about itself.
    this.toRoom(room, 'peer-joined', session);
    const peers = [...room.members];
    room.members.add(session.name);
    (session.rooms ??= new Set()).add(room);
    session.conn?.subscribe(room.topic);
    this.log.info('join', { user: session.name, room: name, members: room.members.size });
    return { ok: true, peers };
  }

  leaveRoom(session: Session, name: string): Outcome {
    const room = this.rooms.get(name);
    if (room === undefined || !room.members.has(session.name)) return this.countError('not_in_room');
    this.exitRoom(session, room);
    return 'ok';
  }

  private exitRoom(session: Session, room: Room): void {
    room.members.delete(session.name);
    session.rooms?.delete(room);
    if (session.rooms?.size === 0) session.rooms = null;
    session.conn?.unsubscribe(room.topic);
    if (room.members.size === 0) this.rooms.delete(room.name);
    else this.toRoom(room, 'peer-left', session);
    this.log.info('leave_room', { user: session.name, room: room.name });
  }

  private peersOf(room: Room, session: Session): string[] {
    return [...room.members].filter((m) => m !== session.name);
  }

  /** A room event: one publish on the room's topic, rendered once. */
  private toRoom(room: Room, kind: EventKind, about: Session): void {
    this.delivery.publish(room.topic, about.face.render({ kind, from: about.name, to: '', room: room.name }));
  }

  /** The members of the rooms `session` is in, for snapshots after a resume. */
  roomsOf(session: Session): Array<{ room: string; peers: string[] }> {
    if (session.rooms === null) return [];
    return [...session.rooms].map((room) => ({ room: room.name, peers: this.peersOf(room, session) }));
  }

  // ── discovery ───────────────────────────────────────────────────────────────

  /** One page of logged-in names after `cursor`, in code-point order. */
  listUsers(cursor = '', limit = LIST_MAX): { users: string[]; next?: string } {
    const names = [...this.sessions.keys()].filter((n) => n > cursor).sort();
    const page = names.slice(0, Math.min(limit, LIST_MAX));
    return page.length < names.length ? { users: page, next: page.at(-1)! } : { users: page };
  }

  watchPresence(conn: Conn): void {
    conn.subscribe(PRESENCE_TOPIC);
  }

  private announce(session: Session, online: boolean): void {
    this.delivery.publish(PRESENCE_TOPIC, session.face.render({ kind: 'presence', from: session.name, to: '', payload: online }));
  }

  // ── bookkeeping ─────────────────────────────────────────────────────────────

  countError<C extends ErrorCode>(code: C): C {
    this.stats.errors[code]++;
    return code;
  }

  /** How many of each thing the hub holds: for /healthz, metrics and leak checks. */
  census() {
    let calls = 0;
    let waiting = 0;
    for (const s of this.sessions.values()) {
      if (s.partner !== null) calls++;
      if (s.conn === null) waiting++;
    }
    return {
      connections: this.connections.size,
      anonymous: this.anonymous.size,
      sessions: this.sessions.size,
      resumable: waiting,
      calls: calls / 2,
      rooms: this.rooms.size,
      holding: this.holding.size,
      claiming: this.claiming.size,
      addresses: this.perIp.size,
      reserved: this.reserved,
    };
  }

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
