export { backoffDelay } from './backoff.ts';
export { createClient, SignalboxClient, SignalboxError } from './client.ts';
export { Emitter } from './emitter.ts';
export type { Backoff } from './backoff.ts';
export type {
  AnswerMessage,
  CandidateMessage,
  ClientErrorCode,
  ClientEvents,
  ClientOptions,
  ClientState,
  DefaultSignals,
  ErrorMessage,
  JoinedMessage,
  LeaveMessage,
  ListOptions,
  LoginFailed,
  LoginOk,
  LoginReply,
  OfferMessage,
  ServerMessage,
  Signals,
  UsersMessage,
} from './types.ts';
