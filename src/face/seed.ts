import * as v from 'valibot';
import { ClientMessage, isCandidate, isDescription } from '../protocol/client.ts';
import { type ErrorCode, ERRORS, errorMessage, LOGIN_FAILURES, type LoginFailure } from '../protocol/errors.ts';
import { ECHO_MAX_CHARS } from '../protocol/limits.ts';
import type { IceServer } from '../signaling/ice.ts';
import type { Hub, JoinOutcome, LoginOutcome } from '../signaling/hub.ts';
import type { Conn, Envelope, Face, Outcome } from '../signaling/types.ts';

type Message<K extends ClientMessage['type']> = Extract<ClientMessage, { type: K }>;
type Handler<M> = (conn: Conn, msg: M) => void;

export interface SeedFaceOptions {
  /** ICE servers for a user's login reply, when the server hands them out. */
  iceServers?: (name: string) => IceServer[];
}

// Pick the message's schema by `type`, then parse with it. v.variant would try the options
// in order, building a full issue (message string and all) for every option whose `type`
// literal fails, plus a Set and a closure per call: a quarter of the server's CPU at load.
// Unknown types still go through the variant, so their error is unchanged.
const parseAny = v.safeParser(ClientMessage);
const PARSERS = new Map<unknown, typeof parseAny>(
  ClientMessage.options.map((o) => [o.entries.type.literal, v.safeParser(o) as unknown as typeof parseAny]),
);
const parse = (data: object) => (PARSERS.get((data as { type?: unknown }).type) ?? parseAny)(data);

/**
 * The seed tutorial's protocol: JSON text frames, `type` plus fields, the peer's name in
 * `name`. Parses and validates once, calls one hub operation, renders the outcome.
 */
export function createSeedFace(hub: Hub, { iceServers }: SeedFaceOptions = {}): Face {
  const send = (conn: Conn, body: object) => hub.send(conn, JSON.stringify(body));

  const reply = (conn: Conn, code: ErrorCode, message: string = ERRORS[code], extra?: object) =>
    send(conn, { type: 'error', code, message, ...extra });
  // Errors found here (not by the hub, which counts its own) are counted here.
  const fail = (conn: Conn, code: ErrorCode, message?: string, extra?: object) => {
    hub.countError(code);
    reply(conn, code, message, extra);
  };

  // The outcome of an operation on a named peer: nothing on success, one error otherwise.
  const answerFor = (conn: Conn, outcome: Outcome, type: string, name: string | undefined) => {
    if (outcome !== 'ok') reply(conn, outcome, errorMessage(outcome, name), { name, request: type });
  };

  const loginReply = (conn: Conn, name: string, r: LoginOutcome) => {
    if (!r.ok) return loginFailed(conn, r.reason);
    const { session, resumed } = r;
    send(conn, {
      type: 'login',
      success: true,
      name,
      ...(session.token === null ? {} : { resume: session.token, resumed }),
      ...(iceServers === undefined ? {} : { iceServers: iceServers(name) }),
    });
    if (resumed) {
      hub.flush(session);
      for (const { room, peers } of hub.roomsOf(session)) send(conn, { type: 'joined', room, peers });
    }
  };
  const loginFailed = (conn: Conn, reason: LoginFailure, message: string = LOGIN_FAILURES[reason]) =>
    send(conn, { type: 'login', success: false, reason, message });

  const handlers: { [K in ClientMessage['type']]: Handler<Message<K>> } = {
    login(conn, { name, resumable, resume }) {
      if (conn.data.session !== null || conn.data.pending) return fail(conn, 'already_logged_in', undefined, { request: 'login' });
      const r = hub.login(conn, name, { resumable, resume });
      if (r instanceof Promise) {
        r.then(
          (res) => loginReply(conn, name, res),
          (err: unknown) => {
            hub.log.error('login_failed', { conn: conn.data.id, err });
            fail(conn, 'internal');
          },
        );
      } else loginReply(conn, name, r);
    },
    offer(conn, { name, offer }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'offer' });
      answerFor(conn, hub.relay(s, name, 'offer', offer), 'offer', name);
    },
    answer(conn, { name, answer }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'answer' });
      answerFor(conn, hub.relay(s, name, 'answer', answer), 'answer', name);
    },
    candidate(conn, { name, candidate }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'candidate' });
      answerFor(conn, hub.relay(s, name, 'candidate', candidate), 'candidate', name);
    },
    leave(conn, { name }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'leave' });
      answerFor(conn, hub.leave(s, name), 'leave', name);
    },
    join(conn, { room }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'join' });
      const answer = (r: JoinOutcome) => {
        if (r.ok) send(conn, { type: 'joined', room, peers: r.peers });
        else reply(conn, r.code, ERRORS[r.code], { room, request: 'join' });
      };
      const r = hub.join(s, room);
      if (r instanceof Promise) r.then(answer);
      else answer(r);
    },
    'leave-room'(conn, { room }) {
      const s = conn.data.session;
      if (s === null) return fail(conn, 'not_logged_in', undefined, { request: 'leave-room' });
      const outcome = hub.leaveRoom(s, room);
      if (outcome === 'ok') send(conn, { type: 'left', room });
      else reply(conn, outcome, ERRORS[outcome], { room, request: 'leave-room' });
    },
    list(conn, { cursor, limit, watch }) {
      if (!hub.limits.discovery) return fail(conn, 'discovery_disabled', undefined, { request: 'list' });
      if (conn.data.session === null) return fail(conn, 'not_logged_in', undefined, { request: 'list' });
      if (watch) hub.watchPresence(conn);
      const answer = (page: { users: string[]; next?: string }) => send(conn, { type: 'users', ...page });
      const page = hub.listUsers(cursor, limit);
      if (page instanceof Promise) page.then(answer, () => fail(conn, 'unavailable', undefined, { request: 'list' }));
      else answer(page);
    },
  };

  return {
    name: 'seed',

    handle(conn, frame) {
      if (typeof frame !== 'string') return fail(conn, 'binary_frame');
      let data: unknown;
      try {
        data = JSON.parse(frame);
      } catch {
        return fail(conn, 'invalid_json');
      }
      if (typeof data !== 'object' || data === null || Array.isArray(data)) {
        return fail(conn, 'invalid_message', 'Expected a JSON object with a "type" field.');
      }
      const session = conn.data.session;
      if (session !== null && session.partner !== null) {
        const kind = withinCall(data, session.partner);
        if (kind !== undefined) {
          const outcome = hub.relay(session, session.partner, kind, (data as Record<string, unknown>)[kind]);
          return outcome === 'ok' ? undefined : answerFor(conn, outcome, kind, session.partner);
        }
      }
      const result = parse(data);
      if (result.success) {
        const msg = result.output;
        (handlers[msg.type] as Handler<ClientMessage>)(conn, msg);
        return;
      }
      const issue = result.issues[0];
      const field = issue.path?.map((p) => p.key).join('.') ?? '';
      if (issue.type === 'variant' && field === 'type') {
        // The seed's own wording, so clients that show it keep working.
        const type = (data as { type?: unknown }).type;
        return fail(conn, 'unknown_type', `Command not found: ${echo(type)}`);
      }
      const reason = issue.input === undefined ? 'is required' : issue.message;
      if ((data as { type?: unknown }).type === 'login' && field === 'name') {
        hub.countLoginFailure('invalid_name');
        return loginFailed(conn, 'invalid_name', `name: ${reason}`);
      }
      const request = (data as { type?: unknown }).type;
      fail(conn, 'invalid_message', `${field}: ${reason}`, { field, request });
    },

    render(env: Envelope): string {
      switch (env.kind) {
        case 'offer':
          return JSON.stringify({ type: 'offer', offer: env.payload, name: env.from });
        case 'answer':
          return JSON.stringify({ type: 'answer', answer: env.payload, name: env.from });
        case 'candidate':
          return JSON.stringify({ type: 'candidate', candidate: env.payload, name: env.from });
        case 'leave':
          return JSON.stringify({ type: 'leave', name: env.from });
        case 'presence':
          return JSON.stringify({ type: 'presence', name: env.from, online: env.payload });
        default:
          // peer-joined, peer-left, peer-disconnected, peer-reconnected
          return JSON.stringify(env.room === undefined ? { type: env.kind, name: env.from } : { type: env.kind, room: env.room, name: env.from });
      }
    },

    error(code, message, extra) {
      return JSON.stringify({ type: 'error', code, message, ...extra });
    },
  };
}

/**
 * The hot path: an offer, answer or candidate to the sender's call partner. Its `name` is
 * that partner (a name validated when that user logged in), so only the payload is left to
 * check, with the predicate its schema in src/protocol/client.ts is built from. This skips
 * building valibot's copy of the message, which cost a fifth of the server's time at load
 * (docs/benchmarks.md); anything else, and every refusal's wording, goes through the
 * schemas. test/fast-path.test.ts checks that it accepts nothing the schemas refuse.
 */
export function withinCall(data: object, partner: string): 'offer' | 'answer' | 'candidate' | undefined {
  const m = data as { type?: unknown; name?: unknown; offer?: unknown; answer?: unknown; candidate?: unknown };
  if (m.name !== partner) return undefined;
  switch (m.type) {
    case 'candidate':
      return isCandidate(m.candidate) ? 'candidate' : undefined;
    case 'answer':
      return isDescription(m.answer) ? 'answer' : undefined;
    case 'offer':
      return isDescription(m.offer) ? 'offer' : undefined;
    default:
      return undefined;
  }
}

function echo(value: unknown): string {
  const s = typeof value === 'string' ? value : JSON.stringify(value) ?? 'undefined';
  return s.length > ECHO_MAX_CHARS ? `${s.slice(0, ECHO_MAX_CHARS)}…` : s;
}
