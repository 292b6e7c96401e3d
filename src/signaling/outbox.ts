import { type ErrorCode, errorMessage } from '../protocol/errors.ts';
import { OUTBOX_MESSAGES, OUTBOX_MS, OUTBOX_PEERS } from '../protocol/limits.ts';
import type { Session } from './session.ts';
import type { Cluster, Envelope, Outcome } from './types.ts';

/** What the outbox needs from the hub. */
export interface OutboxHost {
  readonly cluster: Cluster | undefined;
  now(): number;
  /** Whether `name` is logged in on this node. */
  hosts(name: string): boolean;
  /** Carry an envelope to its recipient (the hub's `route`). */
  route(from: Session, env: Envelope): Outcome;
  /** Tell `from` that its message to `about` was refused (the hub's `tell`). */
  tell(from: Session, about: string, request: string, code: ErrorCode): void;
}

interface Held {
  since: number;
  envs: Envelope[];
  /** A delivery attempt through the cluster is under way. */
  probing: boolean;
}

/**
 * Messages a multi-link (PeerJS) sender addressed to a user who is not logged in yet. PeerJS
 * apps signal peers whose socket may still be opening, and `peer` holds messages for an absent
 * id for a few seconds; here the sender's side holds them, bounded (OUTBOX_*), and sends them
 * on, in order, when the user logs in on this node (`release`) or, in a cluster, when a sweep
 * finds it on another. After OUTBOX_MS the sender hears `user_not_found` once (PeerJS: EXPIRE).
 */
export class Outbox {
  private readonly held = new Map<Session, Map<string, Held>>();

  constructor(private readonly host: OutboxHost) {}

  /** Senders holding something (for the hub's census). */
  get size(): number {
    return this.held.size;
  }

  /** Whether `from` holds messages for `to` (later ones then wait behind them). */
  has(from: Session, to: string): boolean {
    return this.held.get(from)?.has(to) ?? false;
  }

  /** Hold `env` for its recipient; false when the bounds are reached. */
  hold(from: Session, env: Envelope): boolean {
    let mine = this.held.get(from);
    if (mine === undefined) this.held.set(from, (mine = new Map()));
    let held = mine.get(env.to);
    if (held === undefined) {
      if (mine.size >= OUTBOX_PEERS) return false;
      mine.set(env.to, (held = { since: this.host.now(), envs: [], probing: false }));
    }
    if (held.envs.length >= OUTBOX_MESSAGES) return false;
    held.envs.push(env);
    return true;
  }

  /** `name` logged in here: what every sender held for it goes now. */
  release(name: string): void {
    for (const [from, mine] of this.held) {
      const held = mine.get(name);
      if (held !== undefined) this.send(from, name, held);
    }
  }

  /** The sender's session ends or moves: what it held goes nowhere. */
  drop(from: Session): void {
    this.held.delete(from);
  }

  /** Once a tick: expire what waited too long, deliver what can go now. */
  sweep(now: number): void {
    const { cluster } = this.host;
    for (const [from, mine] of this.held) {
      for (const [to, held] of mine) {
        if (now - held.since >= OUTBOX_MS) {
          this.forget(from, to);
          from.links?.delete(to);
          this.host.tell(from, to, held.envs[0]!.kind, 'user_not_found');
        } else if (this.host.hosts(to)) {
          this.send(from, to, held);
        } else if (cluster !== undefined && !held.probing) {
          // Send the first message alone: once a node takes it, the rest follow in order.
          held.probing = true;
          const first = held.envs[0]!;
          first.node = cluster.node;
          cluster.send(first).then(
            (n) => {
              held.probing = false;
              if (n === 0 || this.held.get(from)?.get(to) !== held) return;
              held.envs.shift();
              this.send(from, to, held);
            },
            () => (held.probing = false),
          );
        }
      }
    }
  }

  private forget(from: Session, to: string): void {
    const mine = this.held.get(from);
    mine?.delete(to);
    if (mine?.size === 0) this.held.delete(from);
  }

  /** `to` is reachable: route what `from` held for it, in order, and report refusals. */
  private send(from: Session, to: string, held: Held): void {
    this.forget(from, to);
    for (const env of held.envs) {
      const outcome = this.host.route(from, env);
      if (outcome !== 'ok') from.conn?.send(from.face.error(outcome, errorMessage(outcome, to), { name: to, request: env.kind }));
    }
  }
}
