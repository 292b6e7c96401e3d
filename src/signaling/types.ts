import type { ErrorCode } from '../protocol/errors.ts';
import type { Hub } from './hub.ts';
import type { Session } from './session.ts';

/** Messages one user addresses to another. */
export type RelayKind = 'offer' | 'answer' | 'candidate' | 'leave';
/** Events the server tells users about. */
export type EventKind = 'peer-joined' | 'peer-left' | 'peer-disconnected' | 'peer-reconnected' | 'presence';

/**
 * What travels from one session to others (and, in a cluster, between nodes): neutral,
 * rendered for each recipient's face. `to` is a user, or empty for a room or presence event.
 */
export interface Envelope {
  /** `error` carries a refusal back; `resume`/`handover` move a session between nodes. */
  kind: RelayKind | EventKind | 'error' | 'resume' | 'handover';
  from: string;
  to: string;
  payload?: unknown;
  room?: string;
  /** For `error` envelopes (a refusal travelling back to the sender's node). */
  code?: ErrorCode;
  request?: string;
  /** The node that sent it, and an id unique in the cluster (cluster only). */
  node?: string;
  id?: string;
  /** Sent by a multi-link session (PeerJS), whose payloads only its own kind can read. */
  multi?: true;
}

/** What a session takes along when it is resumed on another node. */
export interface Handover {
  partner: string | null;
  /** Its rooms, each with every member (the user included). */
  rooms: Array<{ room: string; members: string[] }>;
  /** Frames queued for it, rendered, in order; and the ids of those that came by the cluster. */
  queue: string[];
  queueIds: string[];
  /** A multi-link session's links (absent for one-call sessions). */
  links?: string[];
}

/** A face renders core events in its wire format (the seed JSON, later PeerJS). */
export interface Face {
  readonly name: string;
  /** Handle one inbound frame from a connection of this face. */
  handle(conn: Conn, frame: string | Uint8Array): void;
  /** Render an envelope for a recipient on this face. */
  render(env: Envelope): string;
  /** Render an error for a connection of this face. */
  error(code: ErrorCode, message: string, extra?: Record<string, unknown>): string;
  /** A socket of this face opened (a face whose login travels in the upgrade request logs in here). */
  open?(conn: Conn): void;
  /** Whether a close with `code` ends a resumable session at once (default: 1000 and 1005 do). */
  isFinal?(code: number | undefined): boolean;
}

/** Per-connection state, kept on the socket itself so an idle connection costs little. */
export interface ConnState {
  readonly id: number;
  readonly ip: string;
  readonly face: Face;
  /** The name a verified token allows this connection to claim (auth on), else null. */
  readonly identity: string | null;
  readonly openedAt: number;
  /** What the upgrade request said, for the face's open() (PeerJS: key, id, token); absent for the seed. */
  readonly handshake?: Readonly<Record<string, string>>;
  session: Session | null;
  /** A login is being decided (presence claims may be asynchronous). */
  pending: boolean;
  /** Token bucket: tokens left, when they were last counted, refusals in a row. */
  tokens: number;
  stamp: number;
  strikes: number;
}

/**
 * The slice of a WebSocket the core uses. Bun's ServerWebSocket satisfies it as is, so
 * the Bun adapter allocates no wrapper per connection; other runtimes wrap their socket.
 */
export interface Conn {
  readonly data: ConnState;
  send(frame: string): number;
  close(code?: number, reason?: string): void;
  subscribe(topic: string): void;
  unsubscribe(topic: string): void;
}

/**
 * Delivery over named topics. `publish` reaches every subscriber of the topic and returns
 * how much was delivered: 0 means nobody is subscribed (the user is offline).
 */
export interface Delivery {
  publish(topic: string, frame: string): number;
}

/**
 * Who holds which name. On one node the hub's own session map is the whole namespace and
 * claims succeed at once; a cluster claims in a shared store, asynchronously, and may fail.
 */
export interface Presence {
  claim(name: string): boolean | Promise<boolean>;
  release(name: string): void;
}

/**
 * What the hub needs from the other nodes of a cluster (src/cluster/ implements it on
 * Redis). Every call may fail while the shared store is unreachable; the hub turns that
 * into `unavailable` for the client.
 */
export interface Cluster extends Presence {
  readonly node: string;
  /** Connected to the shared store and subscribed to it: this node can serve its part (GET /readyz). */
  readonly ready: boolean;
  /** Serve `hub`: hand it what arrives for its users and rooms (room events render with `face`). */
  attach(hub: Hub, face: Face): void;
  /** Let go of the shared store (after the last session here ended). */
  stop(): Promise<void>;
  claim(name: string): Promise<boolean>;
  /** Envelopes for `name` reach this node from now on (its channel is subscribed). */
  host(name: string): Promise<void>;
  unhost(name: string): void;
  /** Deliver to a user hosted elsewhere: resolves to how many nodes got it (0 = nobody has that user). */
  send(env: Envelope): Promise<number>;
  /** Join a room shared by the nodes: every member after joining, or null when it is full. */
  joinRoom(room: string, name: string, limit: number): Promise<string[] | null>;
  leaveRoom(room: string, name: string): void;
  /** A room event for the other nodes with members in the room. */
  roomEvent(env: Envelope): void;
  /**
   * Take over `name`, held by another node, with its resume token: the session's state and
   * what arrived for it meanwhile, or null if the token is wrong or nobody answers.
   */
  takeOver(name: string, token: string): Promise<{ state: Handover; since: Envelope[] } | null>;
  /** A page of the cluster's users (code-point order) and a user logging in or out. */
  listUsers(cursor: string, limit: number): Promise<{ users: string[]; next?: string }>;
  announce(env: Envelope): void;
}

export type Outcome = 'ok' | ErrorCode;
