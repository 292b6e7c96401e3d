import * as v from 'valibot';
import { Name } from './names.ts';

/**
 * Messages a seed-protocol client sends. The seed tutorial's wire format is the contract:
 * every field it sends keeps its meaning, extra fields are ignored (and never forwarded).
 */

// An SDP travels as an RTCSessionDescriptionInit object; the seed tutorial also uses plain
// strings. Anything else (numbers, arrays, null) cannot be a description.
const Description = v.custom<string | Record<string, unknown>>(
  (x) => typeof x === 'string' || (typeof x === 'object' && x !== null && !Array.isArray(x)),
  'must be a session description (an object or a string)',
);

// `null` is the end-of-candidates marker some stacks forward as is.
const Candidate = v.custom<string | Record<string, unknown> | null>(
  (x) => x === null || typeof x === 'string' || (typeof x === 'object' && !Array.isArray(x)),
  'must be an ICE candidate (an object, a string or null)',
);

export const Login = v.object({ type: v.literal('login'), name: Name });
export type Login = v.InferOutput<typeof Login>;

export const Offer = v.object({ type: v.literal('offer'), name: Name, offer: Description });
export type Offer = v.InferOutput<typeof Offer>;

export const Answer = v.object({ type: v.literal('answer'), name: Name, answer: Description });
export type Answer = v.InferOutput<typeof Answer>;

export const CandidateMessage = v.object({
  type: v.literal('candidate'),
  name: Name,
  candidate: Candidate,
});
export type CandidateMessage = v.InferOutput<typeof CandidateMessage>;

// The seed client sends `leave` without `name` when it never had a partner; without a
// name the server ends the caller's current call, if any.
export const Leave = v.object({ type: v.literal('leave'), name: v.optional(Name) });
export type Leave = v.InferOutput<typeof Leave>;

export const ClientMessage = v.variant('type', [Login, Offer, Answer, CandidateMessage, Leave]);
export type ClientMessage = v.InferOutput<typeof ClientMessage>;
export type ClientType = ClientMessage['type'];

/** The `type` values a client may send, derived from the schema so the two cannot drift. */
export const CLIENT_TYPES: ReadonlySet<string> = new Set(
  ClientMessage.options.map((o) => o.entries.type.literal),
);
