import * as v from 'valibot';
import { NAME_MAX_CHARS } from './limits.ts';

/**
 * 1–64 code points, none a control character (C0, DEL, C1: they corrupt logs and UIs) or a
 * lone surrogate (it cannot be encoded back to UTF-8). Under the `u` flag the quantifier
 * counts code points and a well-formed surrogate pair is one astral code point, so only a
 * lone half matches `\p{Cs}`. One regular expression, so the AsyncAPI document can carry
 * it as the JSON Schema `pattern` (src/protocol/asyncapi.ts).
 */
export const NAME_PATTERN = new RegExp(`^[^\\p{Cc}\\p{Cs}]{1,${NAME_MAX_CHARS}}$`, 'u');

/** A user or room name. Any other Unicode string is an ordinary name. */
export const Name = v.pipe(
  v.string('must be a string'),
  v.regex(NAME_PATTERN, `must be 1–${NAME_MAX_CHARS} characters without control characters`),
);
export type Name = v.InferOutput<typeof Name>;
