/**
 * Protocol limits that are not operator settings: they are part of the wire contract and
 * every face and transport reads them from here. Operator-tunable limits (frame size,
 * rates, connection caps) live in `config.ts`, which documents each with its flag.
 */
export const NAME_MAX_CHARS = 64;

/** How much of an offending value an error message may echo back. */
export const ECHO_MAX_CHARS = 64;

/**
 * ICE candidates a caller sends to a user before its offer (werift does) are held, at most
 * this many and this long, and delivered right after the offer. See docs/protocol.md.
 */
export const EARLY_CANDIDATES_MAX = 32;
export const EARLY_CANDIDATES_MS = 5_000;

/**
 * After a `rate_limited` error, this many further refused frames in a row (without one
 * accepted frame in between) close the connection with close code 4001.
 */
export const RATE_STRIKES_BEFORE_CLOSE = 100;

/** Users in one page of `list` / `GET /users`. */
export const LIST_MAX = 100;

/** Bytes of randomness in a resume token (base64url: 22 characters). */
export const RESUME_TOKEN_BYTES = 16;

/** Callers whose early candidates one user holds at a time; more are refused at once. */
export const EARLY_SENDERS_MAX = 8;

/**
 * Multi-link sessions (PeerJS): links one session keeps at once (the oldest is dropped
 * beyond it), and what it may send to a user who is not logged in yet: held at most this
 * long (as `peer`'s expire_timeout), this many messages for this many recipients.
 */
export const LINKS_MAX = 256;
export const OUTBOX_MS = 5_000;
export const OUTBOX_MESSAGES = 64;
export const OUTBOX_PEERS = 8;
