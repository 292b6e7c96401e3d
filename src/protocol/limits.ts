/**
 * Protocol limits that are not operator settings: they are part of the wire contract and
 * every face and transport reads them from here. Operator-tunable limits (frame size,
 * rates, connection caps) live in `config.ts`, which documents each with its flag.
 */
export const NAME_MAX_CHARS = 64;

/** How much of an offending value an error message may echo back. */
export const ECHO_MAX_CHARS = 64;
