/**
 * The two wire formats the generator speaks. The seed protocol (signalbox, the floor, the
 * seed's own server): `login` by message, then `{type, name, offer|answer|candidate}`.
 * PeerJS: the id is claimed in the URL (the server answers OPEN), then
 * `{type: OFFER|ANSWER|CANDIDATE|LEAVE, dst, payload}` and the server stamps `src`.
 * Both put `type` first in what they send, which the generator's hot path relies on.
 */
import { bytesOf, buildFrame } from './ws-client.ts';

export type DialectName = 'seed' | 'peerjs';

// A realistic server-reflexive ICE candidate, as browsers send it (documentation addresses).
export const ICE_CANDIDATE = {
  candidate:
    'candidate:842163049 1 udp 1677729535 203.0.113.7 46154 typ srflx raddr 192.0.2.23 rport 46154 generation 0 ufrag sXzF network-cost 999',
  sdpMid: '0',
  sdpMLineIndex: 0,
  usernameFragment: 'sXzF',
};

// A short but well-formed SDP (one audio section), the size class of a data-channel offer.
const sdp = (kind: string) =>
  [
    'v=0',
    'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
    's=-',
    't=0 0',
    'a=group:BUNDLE 0',
    'a=msid-semantic: WMS',
    'm=application 9 UDP/DTLS/SCTP webrtc-datachannel',
    'c=IN IP4 0.0.0.0',
    'a=ice-ufrag:sXzF',
    'a=ice-pwd:7bC4y9qZ2WmKp0sT5vNx1eRg',
    'a=ice-options:trickle',
    'a=fingerprint:sha-256 4F:2C:9A:11:B6:7E:D3:58:0A:C4:E9:72:1D:86:3B:F5:60:AF:29:84:C7:1E:5B:D0:93:6A:F2:47:08:BC:35:E1',
    `a=setup:${kind === 'offer' ? 'actpass' : 'active'}`,
    'a=mid:0',
    'a=sctp-port:5000',
    'a=max-message-size:262144',
    '',
  ].join('\r\n');

export interface Dialect {
  name: DialectName;
  /** The request path for a connection that will be (or, for PeerJS, is) logged in as `name`. */
  path(name: string): string;
  /** The login frame, or null when connecting already logs in (PeerJS). */
  login(name: string): Uint8Array | null;
  /** Payload prefixes of what the server sends. */
  loginOk: Uint8Array;
  candidateIn: Uint8Array;
  offerIn: Uint8Array;
  answerIn: Uint8Array;
  leaveIn: Uint8Array;
  candidate(to: string): Uint8Array;
  offer(to: string): Uint8Array;
  answer(to: string): Uint8Array;
  leave(to: string): Uint8Array;
}

const seed: Dialect = {
  name: 'seed',
  path: () => '/',
  login: (name) => buildFrame(JSON.stringify({ type: 'login', name })),
  loginOk: bytesOf('{"type":"login","success":true'),
  candidateIn: bytesOf('{"type":"candidate"'),
  offerIn: bytesOf('{"type":"offer"'),
  answerIn: bytesOf('{"type":"answer"'),
  leaveIn: bytesOf('{"type":"leave"'),
  candidate: (to) => buildFrame(JSON.stringify({ type: 'candidate', name: to, candidate: ICE_CANDIDATE })),
  offer: (to) => buildFrame(JSON.stringify({ type: 'offer', name: to, offer: { type: 'offer', sdp: sdp('offer') } })),
  answer: (to) =>
    buildFrame(JSON.stringify({ type: 'answer', name: to, answer: { type: 'answer', sdp: sdp('answer') } })),
  leave: (to) => buildFrame(JSON.stringify({ type: 'leave', name: to })),
};

// What the PeerJS browser client sends: payloads carry the connection's type and id.
const connectionId = 'mc_k1x9p2q7b3';
const peerjs: Dialect = {
  name: 'peerjs',
  path: (name) => `/peerjs?key=peerjs&id=${encodeURIComponent(name)}&token=t${name.length}x7q`,
  login: () => null,
  loginOk: bytesOf('{"type":"OPEN"'),
  candidateIn: bytesOf('{"type":"CANDIDATE"'),
  offerIn: bytesOf('{"type":"OFFER"'),
  answerIn: bytesOf('{"type":"ANSWER"'),
  leaveIn: bytesOf('{"type":"LEAVE"'),
  candidate: (to) =>
    buildFrame(
      JSON.stringify({ type: 'CANDIDATE', dst: to, payload: { candidate: ICE_CANDIDATE, type: 'media', connectionId } }),
    ),
  offer: (to) =>
    buildFrame(
      JSON.stringify({
        type: 'OFFER',
        dst: to,
        payload: { sdp: { type: 'offer', sdp: sdp('offer') }, type: 'media', connectionId, metadata: null },
      }),
    ),
  answer: (to) =>
    buildFrame(
      JSON.stringify({ type: 'ANSWER', dst: to, payload: { sdp: { type: 'answer', sdp: sdp('answer') }, type: 'media', connectionId } }),
    ),
  leave: (to) => buildFrame(JSON.stringify({ type: 'LEAVE', dst: to })),
};

export const DIALECTS: Record<DialectName, Dialect> = { seed, peerjs };
