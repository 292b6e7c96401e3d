import { LINKS_MAX, RESUME_TOKEN_BYTES } from '../protocol/limits.ts';
import type { Conn, Face } from './types.ts';

/** The topic a user's connections subscribe to; delivery to a user is one publish on it. */
export const userTopic = (name: string): string => `user:${name}`;
export const roomTopic = (name: string): string => `room:${name}`;
/** Subscribers receive a `presence` event whenever a user logs in or out (discovery). */
export const PRESENCE_TOPIC = 'presence';

/** Candidates a caller sent before its offer, held by the callee's session (see EARLY_CANDIDATES_*). */
export interface EarlyCandidates {
  since: number;
  payloads: unknown[];
}

/** A room: its members by name. Deleted when the last one leaves. */
export class Room {
  readonly topic: string;
  readonly members = new Set<string>();
  constructor(readonly name: string) {
    this.topic = roomTopic(name);
  }
}

/**
 * A logged-in user. A session is not a socket: it holds the name, the call, the rooms
 * and, while its socket is gone and it may be resumed, the messages waiting for it.
 */
export class Session {
  readonly topic: string;
  /** The user this one is in a 1:1 call with: the seed's `otherName`, made by an offer. */
  partner: string | null = null;
  /** Candidates other users sent to this one before their offer, by sender. */
  early: Map<string, EarlyCandidates> | null = null;
  /** Rooms this user is in (null until the first join: most users never join one). */
  rooms: Set<Room> | null = null;
  /** The token that resumes this session, when the client asked for one. */
  token: string | null = null;
  /** While in grace: frames waiting for the resume, their size, and the expiry timer. */
  queue: string[] | null = null;
  queueBytes = 0;
  /** Ids of queued envelopes that came through the cluster, so a handover can skip repeats. */
  queueIds: string[] | null = null;
  grace: ReturnType<typeof setTimeout> | undefined = undefined;
  /**
   * Multi-link sessions (PeerJS) only: the users this one is linked with, by an offer either
   * way, any number at once; `partner` stays null. Null for one-call sessions (the seed).
   */
  links: Set<string> | null = null;

  constructor(
    readonly name: string,
    public conn: Conn | null,
    readonly face: Face,
  ) {
    this.topic = userTopic(name);
  }

  /**
   * Link with `name` (multi-link sessions). Beyond LINKS_MAX the oldest link is dropped:
   * PeerJS signals only while a connection is being set up, so the oldest is the one least
   * likely to be needed, and a session cannot grow without bound.
   */
  link(name: string): void {
    const links = this.links!;
    links.delete(name);
    links.add(name);
    if (links.size > LINKS_MAX) links.delete(links.values().next().value!);
  }

  inRoomWith(name: string): boolean {
    if (this.rooms === null) return false;
    for (const room of this.rooms) if (room.members.has(name)) return true;
    return false;
  }
}

/** An unguessable token: 128 random bits, base64url. */
export function newToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(RESUME_TOKEN_BYTES));
  let s = '';
  for (const b of bytes) s += String.fromCharCode(b);
  return btoa(s).replaceAll('+', '-').replaceAll('/', '_').replace(/=+$/, '');
}

/** Compare tokens in time independent of where they differ. */
export function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}
