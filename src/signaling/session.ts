import type { Conn, Face } from './types.ts';

/** The topic a user's connections subscribe to; delivery to a user is one publish on it. */
export const userTopic = (name: string): string => `user:${name}`;

/** Candidates a caller sent before its offer, waiting for it (see EARLY_CANDIDATES_*). */
export interface EarlyCandidates {
  to: string;
  since: number;
  payloads: unknown[];
}

/**
 * A logged-in user. A session is not a socket: it holds the name and the call state, and a
 * socket is attached to it.
 */
export class Session {
  readonly topic: string;
  /** The user this one is in a 1:1 call with: the seed's `otherName`, made by an offer. */
  partner: string | null = null;
  early: EarlyCandidates | null = null;

  constructor(
    readonly name: string,
    public conn: Conn | null,
    readonly face: Face,
  ) {
    this.topic = userTopic(name);
  }
}
