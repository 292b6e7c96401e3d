import { type ErrorCode, ERRORS, errorMessage, LOGIN_FAILURES, type LoginFailure } from '../protocol/errors.ts';
import { EARLY_CANDIDATES_MAX, EARLY_CANDIDATES_MS, EARLY_SENDERS_MAX, LIST_MAX, RATE_STRIKES_BEFORE_CLOSE } from '../protocol/limits.ts';
import { type Logger, silentLogger } from '../log.ts';
import { takeToken } from './rate.ts';
import { Outbox } from './outbox.ts';
import { newToken, PRESENCE_TOPIC, Room, sameToken, Session } from './session.ts';
import type { Cluster, Conn, Delivery, Envelope, EventKind, Handover, Outcome, Presence, RelayKind } from './types.ts';

export type LoginOutcome =
  | { ok: true; session: Session; resumed: boolean }
  | { ok: false; reason: LoginFailure };

export interface LoginOptions {
  /** Hand out a resume token (if resume is on). */
  resumable?: boolean;
  /** Take back the session held under this token. */
  resume?: string;
  /** The client's own token (PeerJS): the session keeps it, instead of a new one per login. */
  token?: string;
  /** A multi-link session (PeerJS): see `relayLinked`. */
  links?: boolean;
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
  /** Other nodes sharing the namespace; absent, this hub is the whole namespace. */
  cluster?: Cluster;
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
 *
 * Each rule is checked where its state lives: the sender's side checks what the sender is
 * in (`relay`), the recipient's side what the recipient is in (`accept`). On one node both
 * run in one call; in a cluster the envelope crosses to the recipient's node in between,
 * and a refusal travels back as an `error` envelope.
 *
 * Multi-link sessions (PeerJS, whose peers hold several connections at once) follow the
 * same rules without the one-call limit: see `relayLinked` and `acceptLinked`.
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

  /** Counters of outcomes, for GET /metrics: what this node decided, relayed, received and sent. */
  readonly stats = {
    relayed: Object.fromEntries(RELAY_KINDS.map((k) => [k, 0])) as Record<RelayKind, number>,
    errors: Object.fromEntries(Object.keys(ERRORS).map((k) => [k, 0])) as Record<ErrorCode, number>,
    logins: 0,
    loginFailures: Object.fromEntries(Object.keys(LOGIN_FAILURES).map((k) => [k, 0])) as Record<LoginFailure, number>,
    resumes: 0,
    /** Frames from clients and to them, by length (a text frame's UTF-16 length: its bytes when ASCII). */
    bytesIn: 0,
    bytesOut: 0,
  };

  private readonly delivery: Delivery;
  readonly cluster: Cluster | undefined;
  private readonly presence: Presence;
  readonly limits: HubLimits;
  readonly log: Logger;
  readonly now: () => number;
  private sweeper: ReturnType<typeof setInterval> | undefined;
  /** What multi-link senders hold for users not logged in yet (see outbox.ts). */
  private readonly outbox: Outbox;

  constructor({ delivery, cluster, log = silentLogger, limits, now = () => performance.now() }: HubOptions) {
    this.delivery = delivery;
    this.cluster = cluster;
    this.presence = cluster ?? localPresence;
    this.log = log;
    this.limits = { ...UNLIMITED, ...limits };
    this.now = now;
    this.outbox = new Outbox({
      cluster,
      now,
      hosts: (name) => this.sessions.has(name),
      route: (from, env) => this.route(from, env),
      tell: (from, about, request, code) => this.tell(from, about, request, code),
    });
  }

  /** Start the once-a-tick sweep (login timeouts, early candidates); no per-message timers. */
  start(): void {
    if (this.sweeper !== undefined) return;
    const shortest = Math.min(this.limits.loginTimeoutMs || EARLY_CANDIDATES_MS, EARLY_CANDIDATES_MS);
    const every = Math.max(25, Math.min(1000, Math.floor(shortest / 4)));
    this.sweeper = setInterval(() => this.sweep(), every);
  }

  /** End every session now (shutdown): partners hear `leave`, names are released. */
  endAll(): void {
    for (const session of [...this.sessions.values()]) {
      if (session.conn !== null) session.conn.data.session = null;
      this.end(session);
    }
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
    conn.data.face.open?.(conn);
  }

  /** One inbound frame: rate limit, then the connection's face. Never throws. */
  receive(conn: Conn, frame: string | Uint8Array): void {
    const { rate, burst } = this.limits;
    const state = conn.data;
    this.stats.bytesIn += frame.length;
    if (rate > 0 && !takeToken(state, this.now(), rate, burst)) {
      this.countError('rate_limited');
      if (state.strikes > RATE_STRIKES_BEFORE_CLOSE) {
        this.log.warn('rate_limit_close', { conn: state.id, user: state.session?.name });
        conn.close(4001, 'rate limit exceeded');
      } else this.send(conn, state.face.error('rate_limited', ERRORS.rate_limited));
      return;
    }
    try {
      state.face.handle(conn, frame);
    } catch (err) {
      // A bug must cost one message, not the process or the other users.
      this.countError('internal');
      this.log.error('handler_failed', { conn: state.id, err });
      this.send(conn, state.face.error('internal', ERRORS.internal));
    }
  }

  /**
   * The socket is gone. A resumable session waits `graceMs` for its client unless the
   * client closed deliberately (1000, or no code; a face may say otherwise: `isFinal`); any
   * other session ends at once: its name is free and its partner and rooms are told.
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
    const final = session.face.isFinal?.(code) ?? deliberate(code);
    if (session.token !== null && this.limits.graceMs > 0 && !final) this.hold(session);
    else this.end(session);
  }

  // ── sessions ────────────────────────────────────────────────────────────────

  /** Claim `name` for `conn`. Synchronous on one node; a promise where presence is shared. */
  login(conn: Conn, name: string, opts: LoginOptions = {}): LoginOutcome | Promise<LoginOutcome> {
    const identity = conn.data.identity;
    if (identity !== null && identity !== name) return this.refuse('unauthorized');
    const held = this.sessions.get(name);
    if (held !== undefined) {
      const mine = opts.resume !== undefined && held.token !== null && held.face === conn.data.face && sameToken(opts.resume, held.token);
      if (mine) return this.resume(held, conn, opts.token);
      return this.refuse('name_taken');
    }
    if (this.claiming.has(name)) return this.refuse('name_taken');
    const { maxUsers } = this.limits;
    if (maxUsers > 0 && this.sessions.size + this.claiming.size >= maxUsers) return this.refuse('server_full');
    const resumable = opts.resumable === true || opts.resume !== undefined;
    const cluster = this.cluster;
    if (cluster === undefined) return this.admit(conn, name, resumable, opts);

    // Shared presence: claim the name, then subscribe to its channel before answering,
    // so a message sent right after the login reply already finds this node.
    this.claiming.add(name);
    conn.data.pending = true;
    const settle = () => {
      this.claiming.delete(name);
      conn.data.pending = false;
    };
    return cluster
      .claim(name)
      .then(async (ok) => {
        if (!ok) {
          // Held elsewhere: with a token, the session may be resumable there.
          if (opts.resume === undefined) return this.refuse('name_taken');
          const moved = await cluster.takeOver(name, opts.resume);
          if (moved === null) return this.refuse('name_taken');
          return this.adopt(conn, name, moved.state, moved.since, opts);
        }
        try {
          await cluster.host(name);
        } catch (err) {
          cluster.release(name);
          throw err;
        }
        // The socket may have closed while the claim was in flight: give the name back.
        if (!this.connections.has(conn)) {
          cluster.unhost(name);
          cluster.release(name);
          return this.refuse('name_taken');
        }
        return this.admit(conn, name, resumable, opts);
      })
      .catch((err: unknown) => {
        this.log.warn('claim_failed', { user: name, err: (err as Error).message });
        return this.refuse('unavailable');
      })
      .finally(settle);
  }

  private refuse(reason: LoginFailure): LoginOutcome {
    this.countLoginFailure(reason);
    return { ok: false, reason };
  }

  private admit(conn: Conn, name: string, resumable: boolean, opts: LoginOptions): LoginOutcome {
    const session = new Session(name, conn, conn.data.face);
    if (resumable && this.limits.graceMs > 0) session.token = opts.token ?? newToken();
    if (opts.links === true) session.links = new Set();
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
  private resume(session: Session, conn: Conn, token: string | undefined): LoginOutcome {
    const old = session.conn;
    if (old !== null) {
      old.data.session = null;
      old.close(4002, 'session resumed on another connection');
    }
    clearTimeout(session.grace);
    session.grace = undefined;
    session.token = token ?? newToken();
    this.attach(session, conn);
    this.stats.resumes++;
    this.log.info('resume', { conn: conn.data.id, user: session.name, queued: session.queue?.length ?? 0 });
    return { ok: true, session, resumed: true };
  }

  /** A session resumed from another node: its call, its rooms, what waited for it. */
  private adopt(conn: Conn, name: string, state: Handover, since: Envelope[], opts: LoginOptions): LoginOutcome {
    const session = new Session(name, null, conn.data.face);
    session.token = opts.token ?? newToken();
    session.partner = state.partner;
    if (opts.links === true) session.links = new Set(state.links);
    session.queue = [...state.queue];
    session.queueBytes = 0;
    // What arrived while the handover was under way, less what the old node had queued.
    const seen = new Set(state.queueIds);
    for (const env of since) if (env.id === undefined || !seen.has(env.id)) session.queue.push(session.face.render(env));
    for (const { room, members } of state.rooms) {
      const r = this.rooms.get(room) ?? this.openRoom(room);
      for (const m of members) r.members.add(m);
      (session.rooms ??= new Set()).add(r);
    }
    this.sessions.set(name, session);
    // The session is ours now: if its new socket closed during the handover, end it here
    // (its partner and rooms hear it) rather than lose it.
    if (!this.connections.has(conn)) {
      this.end(session);
      return this.refuse('name_taken');
    }
    this.attach(session, conn);
    this.stats.resumes++;
    this.log.info('resume', { conn: conn.data.id, user: name, from: 'another node', queued: session.queue.length });
    return { ok: true, session, resumed: true };
  }

  /**
   * Another node asks for this session with a token (its client came back there): hand it
   * over without ending it, so its partner and rooms notice nothing but a reconnect.
   */
  handOver(name: string, token: string): Handover | null {
    const session = this.sessions.get(name);
    if (session === undefined || session.token === null || !sameToken(token, session.token)) return null;
    this.sessions.delete(name);
    clearTimeout(session.grace);
    const conn = session.conn;
    if (conn !== null) {
      conn.data.session = null;
      conn.close(4002, 'session resumed on another node');
    }
    this.forgetEarly(session);
    this.outbox.drop(session);
    const rooms = [...(session.rooms ?? [])].map((room) => {
      this.dropRoomIfUnused(room);
      return { room: room.name, members: [...room.members] };
    });
    this.log.info('handover', { user: name, queued: session.queue?.length ?? 0 });
    const links = session.links === null ? undefined : [...session.links];
    return { partner: session.partner, rooms, queue: session.queue ?? [], queueIds: session.queueIds ?? [], links };
  }

  /**
   * After a resume's login reply: deliver what waited, in order, and tell the partner and
   * rooms the user is back. (Separate so the reply goes first.) A multi-link face calls it
   * after every login: what other sessions here held for this name follows.
   */
  flush(session: Session): void {
    const conn = session.conn;
    if (conn === null) return;
    const queue = session.queue;
    session.queue = null;
    session.queueIds = null;
    session.queueBytes = 0;
    if (queue !== null) for (const frame of queue) this.send(conn, frame);
    this.tellPeers(session, 'peer-reconnected');
    if (session.links !== null) this.outbox.release(session.name);
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
    clearTimeout(session.grace);
    session.queue = null;
    this.forgetEarly(session);
    this.outbox.drop(session);
    if (session.partner !== null) this.leave(session);
    if (session.rooms !== null) for (const room of [...session.rooms]) this.exitRoom(session, room);
    if (this.limits.discovery) this.announce(session, false);
    this.cluster?.unhost(session.name);
    this.presence.release(session.name);
  }

  private tellPeers(session: Session, kind: 'peer-disconnected' | 'peer-reconnected'): void {
    if (session.partner !== null) this.route(session, { kind, from: session.name, to: session.partner });
    if (session.rooms !== null) for (const room of session.rooms) this.toRoom(room, kind, session);
  }

  // ── routing: the sender's side ──────────────────────────────────────────────

  /** Forward an offer, answer or candidate from `from` to the user `to`. */
  relay(from: Session, to: string, kind: Exclude<RelayKind, 'leave'>, payload: unknown): Outcome {
    // The hot path: a message within an established call.
    if (from.partner === to || from.inRoomWith(to)) return this.route(from, { kind, from: from.name, to, payload });
    if (to === from.name) return this.countError('self_target');
    if (from.links !== null) return this.relayLinked(from, to, kind, payload);
    if (kind === 'answer') return this.countError('not_in_call');
    if (kind === 'candidate') {
      // In no call, it may be a candidate sent before its offer: the callee's side holds it.
      if (from.partner !== null) return this.countError('not_in_call');
      return this.route(from, { kind, from: from.name, to, payload });
    }
    if (from.partner !== null) return this.countError('already_in_call');
    from.partner = to; // undone if the callee refuses
    return this.route(from, { kind, from: from.name, to, payload });
  }

  /**
   * End the call between `from` and `to` (default: `from`'s current partner). Between
   * room members who are not in a 1:1 call, `leave` is relayed and changes nothing else.
   */
  leave(from: Session, to: string | undefined = from.partner ?? undefined): Outcome {
    if (to === undefined) return this.countError('not_in_call');
    if (to === from.name) return this.countError('self_target');
    if (from.links !== null) {
      if (!from.links.delete(to)) return this.countError('not_in_call');
      return this.route(from, { kind: 'leave', from: from.name, to, multi: true });
    }
    if (from.partner === to) {
      from.partner = null;
      this.log.info('leave', { user: from.name, to });
    } else if (!from.inRoomWith(to)) return this.countError('not_in_call');
    return this.route(from, { kind: 'leave', from: from.name, to });
  }

  /**
   * A multi-link (PeerJS) sender: an offer links the pair, with no limit of one call (no
   * `busy`, no `already_in_call`); answers and candidates need the link. The envelope says
   * so, since the recipient's side checks the same on its own links (`acceptLinked`).
   * Messages to a user something is already held for wait behind it, in order.
   */
  private relayLinked(from: Session, to: string, kind: Exclude<RelayKind, 'leave'>, payload: unknown): Outcome {
    if (kind === 'offer') from.link(to);
    else if (!from.links!.has(to)) return this.countError('not_in_call');
    const env: Envelope = { kind, from: from.name, to, payload, multi: true };
    if (this.outbox.has(from, to)) return this.outbox.hold(from, env) ? 'ok' : this.countError('user_not_found');
    return this.route(from, env);
  }

  /** Carry an envelope to its recipient: here, or through the cluster. */
  private route(from: Session, env: Envelope): Outcome {
    const target = this.sessions.get(env.to);
    if (target !== undefined) {
      const outcome = this.accept(env, target);
      if (outcome !== 'ok') this.refused(from, env, outcome);
      return outcome;
    }
    const cluster = this.cluster;
    if (cluster === undefined) {
      // A multi-link sender's message may be for someone about to log in (outbox.ts).
      if (from.links !== null && env.kind !== 'leave' && this.outbox.hold(from, env)) return 'ok';
      this.refused(from, env, 'user_not_found');
      return this.countError('user_not_found');
    }
    env.node = cluster.node;
    cluster.send(env).then(
      (n) => n === 0 && this.bounced(env, 'user_not_found'),
      () => this.bounced(env, 'unavailable'),
    );
    return 'ok';
  }

  /** A refusal comes back: undo what the sender's side assumed (a call it offered). */
  private refused(from: Session, env: Envelope, code: ErrorCode): void {
    if (env.kind === 'offer' && from.partner === env.to && code !== 'queue_full') from.partner = null;
    if (env.kind === 'offer' && code !== 'queue_full') from.links?.delete(env.to);
  }

  /** A refusal decided after `relay` returned (on another node, or later): tell the sender. */
  private bounced(env: Envelope, code: ErrorCode): void {
    if (env.kind !== 'offer' && env.kind !== 'answer' && env.kind !== 'candidate' && env.kind !== 'leave') return;
    const sender = this.sessions.get(env.from);
    if (sender !== undefined) {
      if (code === 'user_not_found' && sender.links !== null && env.kind !== 'leave' && this.outbox.hold(sender, env)) return;
      return this.tell(sender, env.to, env.kind, code);
    }
    // The sender is on another node: the refusal travels back to it.
    this.cluster?.send({ kind: 'error', from: env.to, to: env.from, code, request: env.kind, node: this.cluster.node }).catch(() => {});
  }

  private tell(sender: Session, about: string, request: string, code: ErrorCode, count = true): void {
    this.refused(sender, { kind: request as RelayKind, from: sender.name, to: about }, code);
    if (count) this.countError(code);
    if (sender.conn !== null) this.send(sender.conn, sender.face.error(code, errorMessage(code, about), { name: about, request }));
  }

  // ── routing: the recipient's side ───────────────────────────────────────────

  /** An envelope from another node (the cluster calls this for every message on a user's channel). */
  receiveEnvelope(env: Envelope): void {
    const target = this.sessions.get(env.to);
    if (target === undefined) return; // moved or gone; the sender learns from the receiver count
    // The node that refused counted the error: telling the sender here is not a second one.
    if (env.kind === 'error') return this.tell(target, env.from, env.request ?? '', env.code ?? 'internal', false);
    const outcome = this.accept(env, target);
    if (outcome !== 'ok') this.bounced(env, outcome);
  }

  /** The recipient's rules: is `env.from` linked to `target` (or about to be, by this offer)? */
  private accept(env: Envelope, target: Session): Outcome {
    if (target.links !== null || env.multi === true) return this.acceptLinked(env, target);
    const from = env.from;
    const linked = target.partner === from || target.inRoomWith(from);
    switch (env.kind) {
      case 'offer':
        if (linked) return this.deliver(target, env);
        if (target.partner !== null) {
          this.dropEarly(target, from, true);
          return this.countError('busy');
        }
        target.partner = from;
        return this.deliverOffer(target, env);
      case 'answer':
        return linked ? this.deliver(target, env) : this.countError('not_in_call');
      case 'candidate':
        if (linked) return this.deliver(target, env);
        return target.partner === null ? this.holdEarly(target, from, env.payload) : this.countError('not_in_call');
      case 'leave':
        if (target.partner === from) target.partner = null;
        return this.deliver(target, env);
      default:
        // Events about a peer (peer-disconnected, peer-reconnected) need no link check.
        return this.deliver(target, env);
    }
  }

  /** The recipient's rules for multi-link sessions: as `relayLinked`, on the recipient's links. */
  private acceptLinked(env: Envelope, target: Session): Outcome {
    // Seed and PeerJS clients cannot read each other's payloads: one namespace, no mixing.
    if (target.links === null || env.multi !== true) return this.countError('protocol_mismatch');
    switch (env.kind) {
      case 'offer':
        target.link(env.from);
        return this.deliver(target, env);
      case 'answer':
      case 'candidate':
        return target.links.has(env.from) ? this.deliver(target, env) : this.countError('not_in_call');
      case 'leave':
        target.links.delete(env.from);
        return this.deliver(target, env);
      default:
        return this.deliver(target, env);
    }
  }

  /** A new call's offer, then the candidates its caller sent before it. */
  private deliverOffer(target: Session, env: Envelope): Outcome {
    const outcome = this.deliver(target, env);
    const early = target.early?.get(env.from);
    if (early !== undefined) {
      this.forgetSender(target, env.from);
      for (const payload of early.payloads) this.deliver(target, { kind: 'candidate', from: env.from, to: target.name, payload });
    }
    return outcome;
  }

  /** Hold a candidate sent before its offer (some stacks gather before they offer). */
  private holdEarly(target: Session, from: string, payload: unknown): Outcome {
    const early = (target.early ??= new Map());
    let held = early.get(from);
    if (held === undefined) {
      if (early.size >= EARLY_SENDERS_MAX) return this.countError('not_in_call');
      early.set(from, (held = { since: this.now(), payloads: [] }));
      this.holding.add(target);
    }
    if (held.payloads.length >= EARLY_CANDIDATES_MAX) return this.countError('not_in_call');
    held.payloads.push(payload);
    return 'ok';
  }

  /** Drop what `from` sent `target` early; `report` tells the sender, one error per candidate. */
  private dropEarly(target: Session, from: string, report: boolean): void {
    const held = target.early?.get(from);
    if (held === undefined) return;
    this.forgetSender(target, from);
    if (!report) return;
    for (let i = 0; i < held.payloads.length; i++) {
      this.bounced({ kind: 'candidate', from, to: target.name }, 'not_in_call');
    }
  }

  private forgetSender(target: Session, from: string): void {
    target.early?.delete(from);
    if (target.early?.size === 0) {
      target.early = null;
      this.holding.delete(target);
    }
  }

  /** A session ends: nothing it held, and nothing held from it, is delivered later. */
  private forgetEarly(session: Session): void {
    if (session.early !== null) {
      for (const from of session.early.keys()) this.dropEarly(session, from, true);
    }
    for (const target of this.holding) this.forgetSender(target, session.name);
  }

  /** Deliver to one user: one publish on its topic, or into its queue while it reconnects. */
  private deliver(target: Session, env: Envelope): Outcome {
    const frame = target.face.render(env);
    let outcome: Outcome = 'ok';
    if (target.conn === null) outcome = this.enqueue(target, frame, env.id);
    else if (this.publish(target.topic, frame) === 0) outcome = this.countError('user_not_found');
    // Relayed: published to the user, or queued for it while it reconnects.
    if (outcome === 'ok' && env.kind in this.stats.relayed) this.stats.relayed[env.kind as RelayKind]++;
    return outcome;
  }

  private enqueue(target: Session, frame: string, id: string | undefined): Outcome {
    const queue = target.queue;
    if (queue === null) return this.countError('user_not_found');
    const { queueMessages, queueBytes } = this.limits;
    if ((queueMessages > 0 && queue.length >= queueMessages) || (queueBytes > 0 && target.queueBytes + frame.length > queueBytes)) {
      return this.countError('queue_full');
    }
    queue.push(frame);
    target.queueBytes += frame.length;
    if (id !== undefined) (target.queueIds ??= []).push(id);
    return 'ok';
  }

  // ── rooms ───────────────────────────────────────────────────────────────────

  join(session: Session, name: string): JoinOutcome | Promise<JoinOutcome> {
    const { roomSize, roomsPerUser } = this.limits;
    const room = this.rooms.get(name);
    if (room !== undefined && room.members.has(session.name)) return { ok: true, peers: this.peersOf(room, session) };
    if (roomsPerUser > 0 && (session.rooms?.size ?? 0) >= roomsPerUser) return { ok: false, code: this.countError('too_many_rooms') };
    const cluster = this.cluster;
    if (cluster === undefined) {
      if (room !== undefined && roomSize > 0 && room.members.size >= roomSize) return { ok: false, code: this.countError('room_full') };
      return this.enter(session, room ?? this.openRoom(name), room === undefined ? [] : [...room.members]);
    }
    return cluster.joinRoom(name, session.name, roomSize).then(
      (members) => {
        if (members === null) return { ok: false, code: this.countError('room_full') } as const;
        if (!this.sessions.has(session.name)) return { ok: false, code: this.countError('not_logged_in') } as const;
        const current = this.rooms.get(name) ?? this.openRoom(name);
        for (const m of members) if (m !== session.name) current.members.add(m);
        return this.enter(session, current, this.peersOf(current, session));
      },
      () => ({ ok: false, code: this.countError('unavailable') }) as const,
    );
  }

  private openRoom(name: string): Room {
    const room = new Room(name);
    this.rooms.set(name, room);
    return room;
  }

  private enter(session: Session, room: Room, peers: string[]): JoinOutcome {
    // Tell the others before subscribing, so the joiner does not hear about itself.
    this.toRoom(room, 'peer-joined', session);
    room.members.add(session.name);
    (session.rooms ??= new Set()).add(room);
    session.conn?.subscribe(room.topic);
    this.log.info('join', { user: session.name, room: room.name, members: room.members.size });
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
    this.cluster?.leaveRoom(room.name, session.name);
    this.toRoom(room, 'peer-left', session);
    this.dropRoomIfUnused(room);
    this.log.info('leave_room', { user: session.name, room: room.name });
  }

  /** Forget a room no local session is in (other nodes keep their own view of it). */
  private dropRoomIfUnused(room: Room): void {
    for (const m of room.members) if (this.sessions.has(m)) return;
    this.rooms.delete(room.name);
  }

  private peersOf(room: Room, session: Session): string[] {
    return [...room.members].filter((m) => m !== session.name);
  }

  /** A room event: one publish on the room's topic, rendered once, and to the other nodes. */
  private toRoom(room: Room, kind: EventKind, about: Session): void {
    const env: Envelope = { kind, from: about.name, to: '', room: room.name };
    this.publish(room.topic, about.face.render(env));
    if (this.cluster !== undefined) {
      env.node = this.cluster.node;
      this.cluster.roomEvent(env);
    }
  }

  /** A room event from another node: keep the member list, tell the members here. */
  receiveRoomEvent(env: Envelope, face: { render(env: Envelope): string }): void {
    const room = env.room === undefined ? undefined : this.rooms.get(env.room);
    if (room === undefined) return;
    if (env.kind === 'peer-joined') room.members.add(env.from);
    if (env.kind === 'peer-left') room.members.delete(env.from);
    this.publish(room.topic, face.render(env));
  }

  /** The members of the rooms `session` is in, for snapshots after a resume. */
  roomsOf(session: Session): Array<{ room: string; peers: string[] }> {
    if (session.rooms === null) return [];
    return [...session.rooms].map((room) => ({ room: room.name, peers: this.peersOf(room, session) }));
  }

  // ── other nodes ─────────────────────────────────────────────────────────────

  /** Users elsewhere that users here are linked to: call partners and room members. */
  remotePeers(): Set<string> {
    const peers = new Set<string>();
    for (const s of this.sessions.values()) if (s.partner !== null && !this.sessions.has(s.partner)) peers.add(s.partner);
    for (const room of this.rooms.values()) for (const m of room.members) if (!this.sessions.has(m)) peers.add(m);
    return peers;
  }

  /** Users on other nodes gone without a word (their node died): unlink them here. */
  forgetRemote(gone: ReadonlySet<string>): void {
    // One pass however many are gone: a dead node may have taken thousands of users with it.
    for (const s of this.sessions.values()) {
      if (s.links !== null) for (const name of s.links) if (gone.has(name)) s.links.delete(name);
      if (s.partner === null || !gone.has(s.partner)) continue;
      const name = s.partner;
      s.partner = null;
      this.deliver(s, { kind: 'leave', from: name, to: s.name });
    }
    for (const room of this.rooms.values()) {
      for (const name of room.members) {
        if (!gone.has(name)) continue;
        room.members.delete(name);
        const face = this.sessions.get(room.members.values().next().value ?? '')?.face;
        if (face !== undefined) this.publish(room.topic, face.render({ kind: 'peer-left', from: name, to: '', room: room.name }));
      }
      this.dropRoomIfUnused(room);
    }
  }

  /** The name now belongs to another node (after a store outage): end the session here. */
  evict(name: string, reason: string): void {
    const session = this.sessions.get(name);
    if (session === undefined) return;
    this.log.warn('evicted', { user: name, reason });
    const conn = session.conn;
    session.token = null;
    if (conn !== null) {
      conn.data.session = null;
      conn.close(4003, reason);
    }
    this.end(session);
  }

  // ── discovery ───────────────────────────────────────────────────────────────

  /** One page of logged-in names after `cursor`, in code-point order (cluster-wide in a cluster). */
  listUsers(cursor = '', limit = LIST_MAX): { users: string[]; next?: string } | Promise<{ users: string[]; next?: string }> {
    if (this.cluster !== undefined) return this.cluster.listUsers(cursor, Math.min(limit, LIST_MAX));
    const names = [...this.sessions.keys()].filter((n) => n > cursor).sort();
    const page = names.slice(0, Math.min(limit, LIST_MAX));
    return page.length < names.length ? { users: page, next: page.at(-1)! } : { users: page };
  }

  watchPresence(conn: Conn): void {
    conn.subscribe(PRESENCE_TOPIC);
  }

  private announce(session: Session, online: boolean): void {
    const env: Envelope = { kind: 'presence', from: session.name, to: '', payload: online };
    this.publish(PRESENCE_TOPIC, session.face.render(env));
    this.cluster?.announce(env);
  }

  /** A user logged in or out on another node: tell the watchers here. */
  receivePresence(env: Envelope, face: { render(env: Envelope): string }): void {
    this.publish(PRESENCE_TOPIC, face.render(env));
  }

  // ── bookkeeping ─────────────────────────────────────────────────────────────

  /**
   * Every refusal passes here (and is counted in /metrics). Its log line is at debug: at
   * info, a client could fill the log with refusals as fast as the rate limit lets it.
   */
  countError<C extends ErrorCode>(code: C): C {
    this.stats.errors[code]++;
    this.log.debug('refused', { code });
    return code;
  }

  /** A failed login, whoever decided it (the hub, or a face that refused the name). */
  countLoginFailure(reason: LoginFailure): void {
    this.stats.loginFailures[reason]++;
  }

  /** One frame to one connection (a reply, an error, a queued message), counted. */
  send(conn: Conn, frame: string): number {
    const n = conn.send(frame);
    if (n !== 0) this.stats.bytesOut += frame.length;
    return n;
  }

  /** One frame to a topic's subscribers, counted once (a user's topic has one subscriber). */
  private publish(topic: string, frame: string): number {
    const n = this.delivery.publish(topic, frame);
    if (n !== 0) this.stats.bytesOut += frame.length;
    return n;
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
      outbox: this.outbox.size,
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
    for (const target of this.holding) {
      for (const [from, held] of target.early!) if (now - held.since >= EARLY_CANDIDATES_MS) this.dropEarly(target, from, true);
    }
    if (this.outbox.size > 0) this.outbox.sweep(now);
  }
}
