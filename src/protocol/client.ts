import * as v from 'valibot';
import { LIST_MAX } from './limits.ts';
import { Name } from './names.ts';

/**
 * Messages a client sends. The seed tutorial's five are the contract: every field it
 * sends keeps its meaning, extra fields are ignored (and never forwarded). The rest are
 * extensions a seed client never sends, so it sees exactly the seed's behaviour.
 */

// Payloads are checked by kind only, never copied or walked: they are forwarded as sent.
const isJsonObject = (x: unknown) => typeof x === 'object' && x !== null && !Array.isArray(x);

// An SDP travels as an RTCSessionDescriptionInit object; the seed tutorial also uses plain
// strings. Anything else (numbers, arrays, null) cannot be a description.
export const isDescription = (x: unknown): x is string | Record<string, unknown> => typeof x === 'string' || isJsonObject(x);
export const Description = v.custom<string | Record<string, unknown>>(isDescription, 'must be a session description (an object or a string)');

// `null` is the end-of-candidates marker some stacks forward as is.
export const isCandidate = (x: unknown): x is string | Record<string, unknown> | null =>
  x === null || typeof x === 'string' || isJsonObject(x);
export const Candidate = v.custom<string | Record<string, unknown> | null>(isCandidate, 'must be an ICE candidate (an object, a string or null)');

/** JSON Schemas for the two custom checks above, for the protocol documents. */
export const CUSTOM_JSON_SCHEMAS = new Map<unknown, object>([
  [Description, { oneOf: [{ type: 'string' }, { type: 'object' }] }],
  [Candidate, { oneOf: [{ type: 'null' }, { type: 'string' }, { type: 'object' }] }],
]);

export const Login = v.object({
  type: v.literal('login'),
  name: Name,
  /** Ask for a resume token, to come back after a dropped connection. */
  resumable: v.optional(v.boolean('must be true or false')),
  /**
   * The token from the last login reply: take the session back. Tokens are base64url; a
   * pattern (not `maxLength`, which valibot counts in UTF-16 units and JSON Schema in code
   * points) keeps the validator and the AsyncAPI document in exact agreement.
   */
  resume: v.optional(v.pipe(v.string('must be a string'), v.regex(/^[A-Za-z0-9_-]{0,128}$/, 'must be a token from a login reply (base64url, at most 128 characters)'))),
});
export type Login = v.InferOutput<typeof Login>;

export const Offer = v.object({ type: v.literal('offer'), name: Name, offer: Description });
export type Offer = v.InferOutput<typeof Offer>;

export const Answer = v.object({ type: v.literal('answer'), name: Name, answer: Description });
export type Answer = v.InferOutput<typeof Answer>;

export const CandidateMessage = v.object({ type: v.literal('candidate'), name: Name, candidate: Candidate });
export type CandidateMessage = v.InferOutput<typeof CandidateMessage>;

// The seed client sends `leave` without `name` when it never had a partner; without a
// name the server ends the caller's current call, if any.
export const Leave = v.object({ type: v.literal('leave'), name: v.optional(Name) });
export type Leave = v.InferOutput<typeof Leave>;

export const Join = v.object({ type: v.literal('join'), room: Name });
export type Join = v.InferOutput<typeof Join>;

export const LeaveRoom = v.object({ type: v.literal('leave-room'), room: Name });
export type LeaveRoom = v.InferOutput<typeof LeaveRoom>;

export const List = v.object({
  type: v.literal('list'),
  /** The `next` of the previous page. */
  cursor: v.optional(v.string('must be a string')),
  limit: v.optional(v.pipe(v.number('must be a number'), v.integer('must be an integer'), v.minValue(1, 'must be at least 1'), v.maxValue(LIST_MAX, `must be at most ${LIST_MAX}`))),
  /** Also receive a `presence` event whenever a user logs in or out. */
  watch: v.optional(v.boolean('must be true or false')),
});
export type List = v.InferOutput<typeof List>;

export const ClientMessage = v.variant('type', [Login, Offer, Answer, CandidateMessage, Leave, Join, LeaveRoom, List]);
export type ClientMessage = v.InferOutput<typeof ClientMessage>;
export type ClientType = ClientMessage['type'];
