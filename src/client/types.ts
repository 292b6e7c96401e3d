// Types only: every import here is erased, so the browser bundle carries no valibot.
import type * as v from 'valibot';
import type * as C from '../protocol/client.ts';
import type { ErrorCode, LoginFailure } from '../protocol/errors.ts';
import type * as S from '../protocol/server.ts';
import type { Backoff } from './backoff.ts';

type Out<T extends v.GenericSchema> = v.InferOutput<T>;

/**
 * The shapes of the SDP and ICE payloads the client sends and receives. The server checks
 * only their kind and forwards them as sent, so the default is what it accepts; a browser
 * app says `createClient<WebRtcSignals>(url)` with its own DOM types, e.g.
 * `{ description: RTCSessionDescriptionInit; candidate: RTCIceCandidateInit | null }`.
 */
export interface Signals {
  description: unknown;
  candidate: unknown;
}
export interface DefaultSignals extends Signals {
  description: Out<typeof C.Description>;
  candidate: Out<typeof C.Candidate>;
}

export type LoginOk = Out<typeof S.LoginOk>;
export type LoginFailed = Out<typeof S.LoginFailed>;
export type LoginReply = LoginOk | LoginFailed;
export type OfferMessage<P extends Signals = DefaultSignals> = Omit<Out<typeof S.OfferIn>, 'offer'> & { offer: P['description'] };
export type AnswerMessage<P extends Signals = DefaultSignals> = Omit<Out<typeof S.AnswerIn>, 'answer'> & { answer: P['description'] };
export type CandidateMessage<P extends Signals = DefaultSignals> = Omit<Out<typeof S.CandidateIn>, 'candidate'> & {
  candidate: P['candidate'];
};
export type LeaveMessage = Out<typeof S.LeaveIn>;
export type ErrorMessage = Out<typeof S.ErrorOut>;
export type JoinedMessage = Out<typeof S.Joined>;
export type UsersMessage = Out<typeof S.Users>;
export type ServerMessage = Out<typeof S.ServerMessage>;
export type ListOptions = Omit<Out<typeof C.List>, 'type'>;

/**
 * Every event: one per server message `type` (each message the server sends is emitted,
 * including replies that also settle a promise), plus the connection's own.
 */
export interface ClientEvents<P extends Signals = DefaultSignals> {
  login: LoginReply;
  offer: OfferMessage<P>;
  answer: AnswerMessage<P>;
  candidate: CandidateMessage<P>;
  leave: LeaveMessage;
  error: ErrorMessage;
  joined: JoinedMessage;
  left: Out<typeof S.Left>;
  'peer-joined': Out<typeof S.PeerJoined>;
  'peer-left': Out<typeof S.PeerLeft>;
  'peer-disconnected': Out<typeof S.PeerDisconnected>;
  'peer-reconnected': Out<typeof S.PeerReconnected>;
  users: UsersMessage;
  presence: Out<typeof S.Presence>;
  /** Every server message, before its own event. */
  message: ServerMessage;
  state: { state: ClientState };
  /** The socket closed. `reconnecting`: an attempt is scheduled; otherwise the client stops here. */
  close: { code: number; reason: string; reconnecting: boolean };
  /** The next reconnect attempt, and how long until it. */
  reconnecting: { attempt: number; delayMs: number };
  /** Logged in again after a drop; `resumed`: the session (calls, rooms, queued messages) was kept. */
  reconnected: { resumed: boolean };
}

/**
 * `idle`: no socket · `connecting` · `connected`: socket open, not logged in ·
 * `online`: logged in · `reconnecting`: between a drop and the next login · `closed`: done.
 */
export type ClientState = 'idle' | 'connecting' | 'connected' | 'online' | 'reconnecting' | 'closed';

/** Why a promise of the client was rejected: a server code, a login failure, or the client's own. */
export type ClientErrorCode = ErrorCode | LoginFailure | 'timeout' | 'closed' | 'connect_failed' | 'send_queue_full';

export interface ClientOptions {
  /** Ask for a resume token at login, so a dropped connection can take its session back. Default true. */
  resumable?: boolean;
  /** Reconnect by itself after a drop (not after `close()`). Default true. */
  reconnect?: boolean;
  backoff?: Backoff;
  /** Reconnect attempts per outage before giving up. Default unlimited. */
  maxAttempts?: number;
  /** Messages held while reconnecting; beyond it, sends throw `send_queue_full`. Default 256. */
  queueLimit?: number;
  /** How long a request (login, join, leave-room, list) waits for its reply. Default 10 s. */
  requestTimeoutMs?: number;
  /** WebSocket subprotocols, e.g. `['signalbox', jwt]` with --auth-secret. */
  protocols?: string | string[];
  /** A WebSocket class, where there is no global one. */
  WebSocket?: new (url: string, protocols?: string | string[]) => WebSocket;
}
