/**
 * Every error code and close code signalbox can send, defined once. Faces render them,
 * `docs/protocol.md` is checked against them (test/docs.test.ts), and metrics count by them.
 */
export const ERRORS = {
  invalid_json: 'The frame is not valid JSON. Send one JSON object per text frame.',
  binary_frame: 'Binary frames are not accepted. Send JSON as a text frame.',
  unknown_type: 'The message type is not one the server knows. Check the `type` field.',
  invalid_message: 'A field failed validation; the message names it. Fix the field and resend.',
  not_logged_in: 'Log in first: send {"type":"login","name":...}.',
  already_logged_in: 'This connection is already logged in. Open a new connection for another name.',
  user_not_found: 'No user of that name is logged in. Check the name, or wait for them to log in.',
  not_in_call: 'You are not in a call with that user. Send an offer first.',
  busy: 'The user is in a call with someone else. Try again later.',
  already_in_call: 'You are in a call with someone else. Send leave before calling another user.',
  self_target: 'You cannot address a message to yourself.',
  protocol_mismatch: 'That user is connected with the other protocol (seed JSON or PeerJS); the two cannot signal each other.',
  room_full: 'The room has as many members as it allows. Try another room or later.',
  too_many_rooms: 'You are in as many rooms as one user may be. Leave one first.',
  not_in_room: 'You are not a member of that room.',
  queue_full: 'The user is reconnecting and has too many messages waiting. Slow down or try again shortly.',
  discovery_disabled: 'This server does not list its users (it runs without --discovery).',
  unavailable: 'The server cannot reach its cluster right now, so this could not be done. Try again shortly.',
  rate_limited: 'Too many messages. Slow down; the server closes connections that keep flooding.',
  internal: 'The server failed to handle the message. It has been logged; the connection is still usable.',
} as const;
export type ErrorCode = keyof typeof ERRORS;

/** Why a `login` failed: `{type:"login", success:false, reason, message}`. */
export const LOGIN_FAILURES = {
  name_taken: 'That name is in use. Choose another name.',
  invalid_name: 'Names are 1–64 characters without control characters.',
  server_full: 'The server holds as many users as it allows. Try again later.',
  unauthorized: 'Your token does not allow this name. Log in with the name in your token.',
  unavailable: 'The server cannot reach its cluster right now. Try again shortly.',
} as const;
export type LoginFailure = keyof typeof LOGIN_FAILURES;

/** WebSocket close codes the server uses, with what a client should do about each. */
export const CLOSE_CODES = {
  1000: ['normal', 'The connection ended normally.'],
  1001: ['going_away', 'The server is shutting down or restarting. Reconnect after a short delay.'],
  1006: ['abnormal', 'Not sent by the server: the connection dropped (seen by clients only).'],
  1007: ['invalid_utf8', 'A text frame was not valid UTF-8. Send UTF-8 text.'],
  1009: ['too_large', 'A frame exceeded the maximum frame size. Send smaller messages.'],
  1011: ['internal', 'The server hit an unexpected condition. Reconnect.'],
  4000: ['login_timeout', 'No login arrived in time after connecting. Log in right after the connection opens.'],
  4001: ['rate_limited', 'The connection kept sending after rate_limited errors. Reconnect and slow down.'],
  4002: ['resumed_elsewhere', 'The session was resumed on another connection; this one is no longer used.'],
  4003: ['name_lost', 'In a cluster, another node took the name while this one was cut off from Redis. Log in again.'],
} as const;
export type CloseCode = keyof typeof CLOSE_CODES;

/** A sentence for an error about a named user (or room), for the person behind the client. */
export function errorMessage(code: ErrorCode, name?: string): string {
  const who = name === undefined ? 'anyone' : JSON.stringify(name);
  switch (code) {
    case 'user_not_found':
      return `User ${who} is not logged in.`;
    case 'not_in_call':
      return `You are not in a call with ${who}. Send an offer first.`;
    case 'busy':
      return `User ${who} is in a call with someone else.`;
    case 'already_in_call':
      return `You are in a call with someone else. Send leave before calling ${who}.`;
    case 'protocol_mismatch':
      return `User ${who} is connected with the other protocol (seed JSON or PeerJS); the two cannot signal each other.`;
    case 'queue_full':
      return `User ${who} is reconnecting and has too many messages waiting. Try again shortly.`;
    default:
      return ERRORS[code];
  }
}
