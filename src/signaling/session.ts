import type { Conn, Face } from './types.ts';

/** The topic a user's connections subscribe to; delivery to a user is one publish on it. */
export const userTopic = (name: string): string => `user:${name}`;

/**
 * A logged-in user. A session is not a socket: it holds the name and the call state, and a
 * socket is attached to it. (Resume, in a later step, re-attaches a new socket.)
 */
export class Session {
  readonly topic: string;
  /** The user this one is in a 1:1 call with: the seed's `otherName`. */
  partner: string | null = null;

  constructor(
    readonly name: string,
    public conn: Conn | null,
    readonly face: Face,
  ) {
    this.topic = userTopic(name);
  }
}
