import * as v from 'valibot';
import { NAME_MAX_CHARS } from './limits.ts';

// `u` makes the quantifier count code points, so "1–64 characters" means what a person
// would count, not UTF-16 units. Control characters (C0, DEL, C1) are refused because they
// corrupt logs and UIs; lone surrogates because they cannot be encoded back to UTF-8.
const NAME_PATTERN = new RegExp(`^[^\\p{Cc}]{1,${NAME_MAX_CHARS}}$`, 'u');

/** A user (and, later, room) name. Any other Unicode string is an ordinary name. */
export const Name = v.pipe(
  v.string('must be a string'),
  v.check(
    (s) => NAME_PATTERN.test(s) && s.isWellFormed(),
    `must be 1–${NAME_MAX_CHARS} characters without control characters`,
  ),
);
export type Name = v.InferOutput<typeof Name>;
