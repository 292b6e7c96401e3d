import * as v from 'valibot';
import { ERRORS, LOGIN_FAILURES } from './errors.ts';
import { Name } from './names.ts';

/**
 * Messages the server sends, as schemas: the single source for their TypeScript types,
 * docs/protocol.md and the AsyncAPI document. Faces build them; nothing parses them here.
 */

const IceServer = v.object({
  urls: v.union([v.string(), v.array(v.string())]),
  username: v.optional(v.string()),
  credential: v.optional(v.string()),
});

export const LoginOk = v.object({
  type: v.literal('login'),
  success: v.literal(true),
  name: Name,
  /** Present when the login asked for `resumable` (and resume is on): the token to come back with. */
  resume: v.optional(v.string()),
  /** True when this login took back a session held for a dropped connection. */
  resumed: v.optional(v.boolean()),
  /** Present when the server hands out ICE servers: ready for `new RTCPeerConnection({ iceServers })`. */
  iceServers: v.optional(v.array(IceServer)),
});

export const LoginFailed = v.object({
  type: v.literal('login'),
  success: v.literal(false),
  reason: v.picklist(Object.keys(LOGIN_FAILURES) as [keyof typeof LOGIN_FAILURES]),
  message: v.string(),
});

const Payload = v.unknown();
export const OfferIn = v.object({ type: v.literal('offer'), offer: Payload, name: Name });
export const AnswerIn = v.object({ type: v.literal('answer'), answer: Payload, name: Name });
export const CandidateIn = v.object({ type: v.literal('candidate'), candidate: Payload, name: Name });
export const LeaveIn = v.object({ type: v.literal('leave'), name: Name });

export const ErrorOut = v.object({
  type: v.literal('error'),
  code: v.picklist(Object.keys(ERRORS) as [keyof typeof ERRORS]),
  message: v.string(),
  /** The user the refused message was addressed to. */
  name: v.optional(Name),
  /** The room the refused message was about. */
  room: v.optional(Name),
  /** The `type` of the refused message. */
  request: v.optional(v.string()),
  /** The field that failed validation. */
  field: v.optional(v.string()),
});

export const Joined = v.object({ type: v.literal('joined'), room: Name, peers: v.array(Name) });
export const Left = v.object({ type: v.literal('left'), room: Name });
export const PeerJoined = v.object({ type: v.literal('peer-joined'), room: Name, name: Name });
export const PeerLeft = v.object({ type: v.literal('peer-left'), room: Name, name: Name });
export const PeerDisconnected = v.object({ type: v.literal('peer-disconnected'), name: Name, room: v.optional(Name) });
export const PeerReconnected = v.object({ type: v.literal('peer-reconnected'), name: Name, room: v.optional(Name) });
export const Users = v.object({ type: v.literal('users'), users: v.array(Name), next: v.optional(v.string()) });
export const Presence = v.object({ type: v.literal('presence'), name: Name, online: v.boolean() });

export const ServerMessage = v.union([
  LoginOk,
  LoginFailed,
  OfferIn,
  AnswerIn,
  CandidateIn,
  LeaveIn,
  ErrorOut,
  Joined,
  Left,
  PeerJoined,
  PeerLeft,
  PeerDisconnected,
  PeerReconnected,
  Users,
  Presence,
]);
export type ServerMessage = v.InferOutput<typeof ServerMessage>;

