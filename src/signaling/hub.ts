import type { LoginFailure } from '../protocol/errors.ts';
import { type Logger, silentLogger } from '../log.ts';
import { Session } from './session.ts';
import type { Conn, Delivery, Envelope, Outcome, Presence, RelayKind } from './types.ts';

export type LoginOutcome = { ok: true; session: Session } | { ok: false; reason: LoginFailure };

export interface HubOptions {
  delivery: Delivery;
  presence?: Presence;
  log?: Logger;
}

/** Claims always succeed: on one node the hub's session map already keeps names unique. */
export const localPresence: Presence = { claim: () => true, release: () => {} };

/**
 * The signaling core: sessions, calls and routing rules. It knows nothing of Bun, Deno,
 * Redis or any wire format; faces call its operations and render what they return.
 */
export class Hub {
  /** Sessions hosted here, by name. A `Map`, so `__proto__` is an ordinary name. */
  readonly sessions = new Map<string, Session>();
  /** Names whose (possibly asynchronous) claim is under way. */
  private readonly claiming = new Set<string>();
  readonly connections = new Set<Conn>();
  private readonly delivery: Delivery;
  private readonly presence: Presence;
  readonly log: Logger;

  constructor({ delivery, presence = localPresence, log = silentLogger }: HubOptions) {
    this.delivery = delivery;
    this.presence = presence;
    this.log = log;
  }

  open(conn: Conn): void {
    this.connections.add(conn);
    this.log.info('connect', { conn: conn.data.id, ip: conn.data.ip });
  }

  /** Claim `name` for `conn`. Synchronous on one node; a promise where presence is remote. */
  login(conn: Conn, name: string): LoginOutcome | Promise<LoginOutcome> {
    if (this.sessions.has(name) || this.claiming.has(name)) return { ok: false, reason: 'name_taken' };
    const claimed = this.presence.claim(name);
    if (claimed === true) return this.admit(conn, name);
    if (claimed === false) return { ok: false, reason: 'name_taken' };
    this.claiming.add(name);
    conn.data.pending = true;
    return claimed.then(
      (ok) => {
        this.claiming.delete(name);
        conn.data.pending = false;
        if (!ok) return { ok: false, reason: 'name_taken' } as const;
        // The socket may have closed while the claim was in flight: give the name back.
        if (!this.connections.has(conn)) {
          this.presence.release(name);
          return { ok: false, reason: 'name_taken' } as const;
        }
        return this.admit(conn, name);
      },
      (err: unknown) => {
        this.claiming.delete(name);
        conn.data.pending = false;
        throw err;
      },
    );
  }

  private admit(conn: Conn, name: string): LoginOutcome {
    const session = new Session(name, conn, conn.data.face);
    this.sessions.set(name, session);
    conn.data.session = session;
    conn.subscribe(session.topic);
    this.log.info('login', { conn: conn.data.id, user: name });
    return { ok: true, session };
  }

  /** Forward an offer, answer or candidate from `from` to the user `to`. */
  relay(from: Session, to: string, kind: Exclude<RelayKind, 'leave'>, payload: unknown): Outcome {
    const target = this.sessions.get(to);
    if (target === undefined) return 'user_not_found';
    if (kind !== 'candidate') {
      from.partner = to;
      target.partner = from.name;
    }
    return this.deliver(target, { kind, from: from.name, to, payload });
  }

  /** End the call between `from` and `to` (default: `from`'s current partner). */
  leave(from: Session, to: string | undefined = from.partner ?? undefined): Outcome {
    if (to === undefined || from.partner !== to) return 'not_in_call';
    from.partner = null;
    const target = this.sessions.get(to);
    if (target === undefined) return 'ok';
    if (target.partner === from.name) target.partner = null;
    return this.deliver(target, { kind: 'leave', from: from.name, to });
  }

  /** The socket is gone: free its name at once and tell its partner. */
  close(conn: Conn): void {
    this.connections.delete(conn);
    const session = conn.data.session;
    this.log.info('close', { conn: conn.data.id, user: session?.name });
    if (session === null) return;
    conn.data.session = null;
    session.conn = null;
    this.sessions.delete(session.name);
    this.presence.release(session.name);
    if (session.partner !== null) this.leave(session);
  }

  private deliver(target: Session, env: Envelope): Outcome {
    const delivered = this.delivery.publish(target.topic, target.face.render(env));
    return delivered === 0 ? 'user_not_found' : 'ok';
  }
}
