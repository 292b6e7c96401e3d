import * as v from 'valibot';
import { Name } from './names.ts';

/**
 * The PeerJS server protocol (the `peer` package, as the `peerjs` client speaks it), as
 * schemas: what a PeerJS client may send on its WebSocket, and what the upgrade URL carries.
 * docs/peerjs.md describes both directions.
 */

/** A PeerJS client's token is its own random string (or, with --auth-secret, a JWT). */
export const PEERJS_TOKEN_MAX = 4096;

/** `?key=…&id=…&token=…` on `<path>peerjs`; the client also sends `version`, which is ignored. */
export const Handshake = v.object({
  key: v.string('is required'),
  id: Name,
  token: v.pipe(v.string('is required'), v.minLength(1, 'is required'), v.maxLength(PEERJS_TOKEN_MAX, `must be at most ${PEERJS_TOKEN_MAX} characters`)),
});
export type Handshake = v.InferOutput<typeof Handshake>;

// The server never reads a payload (SDP, candidate, connectionId…): it checks it is an object
// and forwards it as sent, with `src` stamped.
const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
const Payload = v.custom<Record<string, unknown>>(isObject, 'must be an object');

export const Heartbeat = v.object({ type: v.literal('HEARTBEAT') });
export const PeerOffer = v.object({ type: v.literal('OFFER'), dst: Name, payload: Payload });
export const PeerAnswer = v.object({ type: v.literal('ANSWER'), dst: Name, payload: Payload });
export const PeerCandidate = v.object({ type: v.literal('CANDIDATE'), dst: Name, payload: Payload });
/** Sent by old clients when a connection closes; without `dst`, the client leaves the server. */
export const PeerLeave = v.object({ type: v.literal('LEAVE'), dst: v.optional(Name), payload: v.optional(Payload) });

export const PeerjsMessage = v.variant('type', [Heartbeat, PeerOffer, PeerAnswer, PeerCandidate, PeerLeave]);
export type PeerjsMessage = v.InferOutput<typeof PeerjsMessage>;
