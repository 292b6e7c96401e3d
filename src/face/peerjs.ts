import * as v from 'valibot';
import { type ErrorCode, ERRORS, errorMessage, LOGIN_FAILURES, type LoginFailure } from '../protocol/errors.ts';
import { ECHO_MAX_CHARS } from '../protocol/limits.ts';
import { Handshake, PeerjsMessage } from '../protocol/peerjs.ts';
import type { Hub, LoginOutcome } from '../signaling/hub.ts';
import type { Conn, Envelope, Face, RelayKind } from '../signaling/types.ts';

export interface PeerjsFaceOptions {
  /** The `key` PeerJS clients must present (`--peerjs-key`). */
  key: string;
}

const parseHandshake = v.safeParser(Handshake);
const parse = v.safeParser(PeerjsMessage);

const KINDS = { OFFER: 'offer', ANSWER: 'answer', CANDIDATE: 'candidate' } as const;
const TYPES: Record<string, string> = { offer: 'OFFER', answer: 'ANSWER', candidate: 'CANDIDATE', leave: 'LEAVE' };

/** Frames a connection may send while a cluster decides its login (claims are asynchronous there). */
const EARLY_FRAMES_MAX = 64;

const MISSING = 'Connect to <path>peerjs?key=…&id=…&token=… (the PeerJS client does).';

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

/**
 * The PeerJS server protocol as a face of the core. A PeerJS client logs in with the upgrade
 * request itself (`?key&id&token`), so the login happens when the socket opens; its OFFER,
 * ANSWER, CANDIDATE and LEAVE are the core's relay operations on a multi-link session
 * (several connections at once, to several peers), rendered back with `src` stamped.
 *
 * The client's `token` is its own random string: the session is bound to it at the first
 * OPEN, and a reconnect with the same id and token within the grace period resumes it.
 *
 * Errors: a PeerJS client treats ERROR as fatal (it drops its server connection), so ERROR is
 * kept for what is wrong with the connection itself; a refused message about another peer
 * comes back as EXPIRE from that peer, which the client reports as `peer-unavailable`.
 */
export function createPeerjsFace(hub: Hub, { key }: PeerjsFaceOptions): Face {
  // Through the hub, which counts the bytes.
  const send = (conn: Conn, body: object) => hub.send(conn, JSON.stringify(body));
  const error = (conn: Conn, code: ErrorCode | LoginFailure, msg: string) => send(conn, { type: 'ERROR', payload: { code, msg } });
  // Errors found here (not by the hub, which counts its own) are counted here.
  const fail = (conn: Conn, code: ErrorCode, msg: string = ERRORS[code]) => {
    hub.countError(code);
    error(conn, code, msg);
  };
  /** A connection that cannot log in: say why, in the client's own vocabulary, and close. */
  const refuse = (conn: Conn, type: 'ERROR' | 'ID-TAKEN' | 'INVALID-KEY', code: ErrorCode | LoginFailure | undefined, msg: string) => {
    send(conn, { type, payload: { code, msg } });
    conn.close(1000, 'login refused');
  };
  /** A handshake refused before it reaches the hub (which counts the logins it refuses itself). */
  const refuseHandshake: typeof refuse = (conn, type, code, msg) => {
    // Counted by reason: a wrong key or token is `unauthorized`, a malformed id `invalid_name`.
    hub.countLoginFailure(type === 'INVALID-KEY' || code === 'unauthorized' ? 'unauthorized' : 'invalid_name');
    refuse(conn, type, code, msg);
  };
  const expire = (conn: Conn, about: string, code: ErrorCode, request: string) =>
    hub.send(conn, face.error(code, errorMessage(code, about), { name: about, request }));

  /** What arrived while a login was being decided, replayed after the OPEN. */
  const early = new Map<Conn, string[]>();

  const opened = (conn: Conn, id: string, r: LoginOutcome) => {
    const frames = early.get(conn);
    early.delete(conn);
    if (!r.ok) {
      const { reason } = r;
      if (reason === 'name_taken') return refuse(conn, 'ID-TAKEN', reason, `ID "${id}" is taken.`);
      return refuse(conn, 'ERROR', reason, LOGIN_FAILURES[reason]);
    }
    send(conn, { type: 'OPEN' });
    // What waited: queued during a grace period, or held by senders here for this id.
    hub.flush(r.session);
    if (frames !== undefined) for (const frame of frames) face.handle(conn, frame);
  };

  const face: Face = {
    name: 'peerjs',

    open(conn) {
      const h = conn.data.handshake ?? {};
      if (h.refused !== undefined) return refuseHandshake(conn, 'ERROR', 'unauthorized', h.refused);
      if (!h.key || !h.id || !h.token) return refuseHandshake(conn, 'ERROR', 'invalid_message', MISSING);
      if (h.key !== key) return refuseHandshake(conn, 'INVALID-KEY', undefined, 'Invalid key provided.');
      const checked = parseHandshake(h);
      if (!checked.success) {
        const issue = checked.issues[0];
        return refuseHandshake(conn, 'ERROR', 'invalid_message', `${issue.path?.map((p) => p.key).join('.')}: ${issue.message}`);
      }
      const { id, token } = checked.output;
      const r = hub.login(conn, id, { resume: token, token, links: true });
      if (r instanceof Promise) {
        r.then(
          (res) => opened(conn, id, res),
          (err: unknown) => {
            early.delete(conn);
            hub.log.error('login_failed', { conn: conn.data.id, err });
            hub.countError('internal');
            error(conn, 'internal', ERRORS.internal);
            conn.close(1011, 'internal error');
          },
        );
      } else opened(conn, id, r);
    },

    handle(conn, frame) {
      if (typeof frame !== 'string') return fail(conn, 'binary_frame');
      const session = conn.data.session;
      if (session === null) {
        if (!conn.data.pending) return fail(conn, 'not_logged_in');
        const frames = early.get(conn) ?? [];
        if (frames.length >= EARLY_FRAMES_MAX) return fail(conn, 'not_logged_in', 'Wait for OPEN before sending more.');
        frames.push(frame);
        early.set(conn, frames);
        return;
      }
      let data: unknown;
      try {
        data = JSON.parse(frame);
      } catch {
        return fail(conn, 'invalid_json');
      }
      if (!isObject(data)) return fail(conn, 'invalid_message', 'Expected a JSON object with a "type" field.');
      const result = parse(data);
      if (!result.success) {
        const issue = result.issues[0];
        const field = issue.path?.map((p) => p.key).join('.') ?? '';
        if (issue.type === 'variant' && field === 'type') return fail(conn, 'unknown_type', `Unknown message type: ${echo(data.type)}`);
        return fail(conn, 'invalid_message', `${field}: ${issue.input === undefined ? 'is required' : issue.message}`);
      }
      const msg = result.output;
      switch (msg.type) {
        case 'HEARTBEAT':
          // Liveness is the WebSocket's own ping and --idle-timeout; nothing to do.
          return;
        case 'LEAVE': {
          // Without a destination, `peer` takes it as the client leaving the server.
          if (msg.dst === undefined) return conn.close(1000, 'left');
          const outcome = hub.leave(session, msg.dst);
          if (outcome !== 'ok') expire(conn, msg.dst, outcome, msg.type);
          return;
        }
        default: {
          const outcome = hub.relay(session, msg.dst, KINDS[msg.type], msg.payload);
          if (outcome !== 'ok') expire(conn, msg.dst, outcome, msg.type);
        }
      }
    },

    render(env: Envelope): string {
      // Only relayed kinds reach a PeerJS session (it has no call partner and no rooms).
      const type = TYPES[env.kind as RelayKind] ?? env.kind.toUpperCase();
      const body = { type, src: env.from, dst: env.to };
      return JSON.stringify(env.payload === undefined ? body : { ...body, payload: env.payload });
    },

    error(code, message, extra) {
      const about = extra?.name;
      if (typeof about === 'string') {
        const request = typeof extra?.request === 'string' ? (TYPES[extra.request] ?? extra.request) : undefined;
        return JSON.stringify({ type: 'EXPIRE', src: about, payload: { code, msg: message, request } });
      }
      return JSON.stringify({ type: 'ERROR', payload: { code, msg: message } });
    },

    // peer.disconnect() and peer.destroy() close with no code, a page that goes away with
    // 1001: none of them comes back with the same token, and a reloaded page asks for its id
    // again at once. Only a connection that dropped (1006, a timeout) waits for its client.
    isFinal: (code) => code === 1000 || code === 1001 || code === 1005,
  };
  return face;
}

function echo(value: unknown): string {
  const s = typeof value === 'string' ? value : (JSON.stringify(value) ?? 'undefined');
  return s.length > ECHO_MAX_CHARS ? `${s.slice(0, ECHO_MAX_CHARS)}…` : s;
}
