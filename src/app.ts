import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Config } from './config.ts';
import { DEMO_CSP, DEMO_HTML } from './demo/page.ts';
import { mountPeerjs } from './face/peerjs-http.ts';
import { METRICS_CONTENT_TYPE, type MemoryUsage, renderMetrics, UPGRADE_REFUSALS, type UpgradeRefusal } from './metrics.ts';
import { LIST_MAX } from './protocol/limits.ts';
import type { Hub } from './signaling/hub.ts';
import type { IceServer } from './signaling/ice.ts';
import { sameToken } from './signaling/session.ts';
import type { ConnState, Face } from './signaling/types.ts';

/**
 * The runtime's part of an upgrade: hand the request to its WebSocket server, with the
 * connection's state and the subprotocol to echo. `response` is what the route returns.
 */
export type Upgrade = (
  c: Context,
  data: ConnState,
  protocol: string | undefined,
) => { ok: boolean; response: Response };

export interface AppOptions {
  hub: Hub;
  seed: Face;
  /** The PeerJS face, unless --no-peerjs. */
  peerjs?: Face;
  config: Config;
  upgrade: Upgrade;
  /** The peer address of the TCP connection, as the runtime sees it. */
  remoteAddress: (c: Context) => string;
  /** ICE servers to hand out, when configured. */
  iceServers?: (name?: string) => IceServer[];
  /** hono/jwt's verify, loaded only with --auth-secret. */
  verifyToken?: (token: string, secret: string) => Promise<Record<string, unknown>>;
  version: string;
  /** The runtime serving, for GET /metrics (e.g. `{ name: 'bun', version: Bun.version }`). */
  runtime?: { name: string; version: string };
  /** The process's memory, for GET /metrics: the adapter asks its runtime. */
  memory?: () => MemoryUsage;
}

// The page runs only its own inline code and talks only to this server.
const DEMO_HEADERS = {
  'content-security-policy': DEMO_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const isUpgrade = (c: Context) => c.req.header('upgrade')?.toLowerCase() === 'websocket';

/** `https://*.example.com` → a RegExp; `*` alone allows every origin. */
export function originMatcher(patterns: readonly string[]): ((origin: string) => boolean) | null {
  if (patterns.length === 0 || patterns.includes('*')) return null;
  const exact = new Set(patterns.filter((p) => !p.includes('*')));
  const wild = patterns
    .filter((p) => p.includes('*'))
    .map((p) => new RegExp(`^${p.replace(/[.+?^${}()|[\]\\]/g, '\\$&').replaceAll('*', '[a-zA-Z0-9-]+(?:\\.[a-zA-Z0-9-]+)*')}$`));
  return (origin) => exact.has(origin) || wild.some((r) => r.test(origin));
}

/**
 * The HTTP face of signalbox. Hono routes the upgrade and decides who may connect; the
 * runtime's own WebSocket server owns the socket afterwards, so no per-event framework
 * object sits on the message path.
 */
export function createApp({ hub, seed, peerjs, config, upgrade, remoteAddress, iceServers, verifyToken, version, runtime, memory }: AppOptions) {
  const startedAt = Date.now();
  const rejected = Object.fromEntries(UPGRADE_REFUSALS.map((r) => [r, 0])) as Record<UpgradeRefusal, number>;
  const app = new Hono();
  // Never serve without the check the operator asked for.
  if (config.authSecret && verifyToken === undefined) throw new Error('--auth-secret needs verifyToken');
  const originAllowed = originMatcher(config.allowedOrigins);
  let nextId = 1;

  const clientAddress = (c: Context): string => {
    if (config.trustProxy) {
      // Our proxy appends the address it saw: the last entry is the one we can trust.
      const hop = c.req.header('x-forwarded-for')?.split(',').at(-1)?.trim();
      if (hop) return hop;
    }
    return remoteAddress(c);
  };

  /** The token from `?token=` or from a `Sec-WebSocket-Protocol` entry, and the protocol to echo. */
  const tokenOf = (c: Context): { token: string | undefined; protocol: string | undefined } => {
    const offered = c.req.header('sec-websocket-protocol')?.split(',').map((p) => p.trim()) ?? [];
    const fromProtocol = offered.find((p) => p.split('.').length === 3);
    return {
      token: c.req.query('token') ?? fromProtocol,
      // A browser that offered protocols fails the handshake unless one is echoed back.
      protocol: offered.find((p) => p !== fromProtocol) ?? fromProtocol,
    };
  };

  /**
   * Admit a WebSocket for `face`. A face whose login travels in the upgrade request passes
   * it as `handshake`; its client (PeerJS) sees an HTTP refusal only as a lost connection, so
   * a refused token opens the socket anyway and the face says why and closes it (Face.open).
   */
  const acceptSocket = async (c: Context, face: Face, handshake?: Record<string, string>) => {
    const origin = c.req.header('origin');
    if (originAllowed !== null && origin !== undefined && !originAllowed(origin)) {
      rejected.origin++;
      hub.log.info('upgrade_refused', { reason: 'origin', origin });
      return c.text('Origin not allowed', 403);
    }
    const { token, protocol } = tokenOf(c);
    let identity: string | null = null;
    if (verifyToken !== undefined) {
      let refused: string | undefined;
      if (token === undefined) {
        refused = 'A token is required (?token= or Sec-WebSocket-Protocol)';
        hub.log.info('upgrade_refused', { reason: 'token', err: 'no token' });
      } else {
        try {
          const claims = await verifyToken(token, config.authSecret);
          if (typeof claims.sub !== 'string' || claims.sub === '') throw new Error('no sub claim');
          identity = claims.sub;
        } catch (err) {
          // The error's name, not its message: hono's messages quote the token, a credential.
          hub.log.info('upgrade_refused', { reason: 'token', err: (err as Error).name });
          refused = 'Invalid or expired token';
        }
      }
      if (refused !== undefined) {
        rejected.token++;
        if (handshake === undefined) return c.text(refused, 401);
        handshake = { ...handshake, refused };
      }
    }
    const ip = clientAddress(c);
    const refusal = hub.reserve(ip);
    if (refusal !== null) {
      rejected[refusal]++;
      hub.log.warn('upgrade_refused', { reason: refusal, ip });
      return refusal === 'server_full'
        ? c.text('Server full', 503, { 'Retry-After': '5' })
        : c.text('Too many connections from your address', 429, { 'Retry-After': '5' });
    }
    const data: ConnState = {
      id: nextId++,
      ip,
      face,
      identity,
      openedAt: hub.now(),
      ...(handshake === undefined ? {} : { handshake }),
      session: null,
      pending: false,
      tokens: config.burst,
      stamp: hub.now(),
      strikes: 0,
    };
    const { ok, response } = upgrade(c, data, protocol);
    if (!ok) hub.unreserve(ip);
    return response;
  };

  app.get('/', async (c) => {
    if (isUpgrade(c)) return acceptSocket(c, seed);
    if (config.demo) return c.html(DEMO_HTML, 200, DEMO_HEADERS);
    return c.text(
      `signalbox ${version}: a WebRTC signaling server.\n` +
        'Connect a WebSocket to this URL and send {"type":"login","name":"..."}.\n',
    );
  });

  app.get('/healthz', (c) =>
    c.json({
      status: 'ok',
      version,
      connections: hub.connections.size,
      users: hub.sessions.size,
      ...(hub.cluster === undefined ? {} : { node: hub.cluster.node }),
      uptime: Math.round((Date.now() - startedAt) / 1000),
    }),
  );

  // Ready to take users: in a cluster, only while Redis is reachable and subscribed, since
  // without it this node can neither claim names nor reach users elsewhere.
  app.get('/readyz', (c) => {
    const cluster = hub.cluster;
    const node = cluster === undefined ? {} : { node: cluster.node };
    if (cluster !== undefined && !cluster.ready) return c.json({ status: 'unavailable', reason: 'redis_unreachable', ...node }, 503);
    return c.json({ status: 'ready', ...node });
  });

  // Counts for Prometheus. On unless --no-metrics; with --metrics-token, only for its bearer.
  const metricsAuth = `Bearer ${config.metricsToken}`;
  app.get('/metrics', (c) => {
    if (!config.metrics) return c.text('Metrics are off (--no-metrics)', 404);
    if (config.metricsToken && !sameToken(c.req.header('authorization') ?? '', metricsAuth)) {
      return c.text('A bearer token is required (--metrics-token)', 401, { 'WWW-Authenticate': 'Bearer' });
    }
    const body = renderMetrics({ hub, version, runtime: runtime ?? { name: 'unknown', version: '' }, rejected, startedAt, memory });
    return c.body(body, 200, { 'Content-Type': METRICS_CONTENT_TYPE, 'Cache-Control': 'no-store' });
  });

  // Discovery over HTTP, for clients that are not logged in: off unless --discovery.
  app.get('/users', async (c) => {
    if (!config.discovery) return c.json({ error: 'discovery_disabled' }, 404);
    const limit = Number(c.req.query('limit') ?? LIST_MAX);
    if (!Number.isInteger(limit) || limit < 1) return c.json({ error: 'invalid limit' }, 400);
    try {
      return c.json(await hub.listUsers(c.req.query('cursor') ?? '', limit));
    } catch {
      return c.json({ error: 'unavailable' }, 503);
    }
  });

  // The PeerJS server protocol (docs/peerjs.md), at its own path: `<path>peerjs` never is `/`.
  if (peerjs !== undefined) {
    const { peerjsPath: path, peerjsKey: key, discovery } = config;
    mountPeerjs(app, { hub, path, key, discovery, originAllowed, accept: (c, handshake) => acceptSocket(c, peerjs, handshake) });
  }

  // What a page needs for `new RTCPeerConnection({ iceServers })`; [] on a LAN.
  app.get('/ice-servers', (c) => c.json({ iceServers: iceServers?.() ?? [] }, 200, { 'Cache-Control': 'no-store' }));

  // The protocol as AsyncAPI 3.0, built on first request: start-up never loads the converter.
  let asyncApi: Promise<Record<string, unknown>> | undefined;
  app.get('/asyncapi.json', async (c) => {
    asyncApi ??= import('./protocol/asyncapi.ts').then((m) => m.createAsyncApi({ version }));
    const url = new URL(c.req.url);
    const protocol = url.protocol === 'https:' ? 'wss' : 'ws';
    const { asyncapi, info, ...rest } = await asyncApi;
    return c.json({ asyncapi, info, servers: { signalbox: { host: url.host, protocol, pathname: '/' } }, ...rest });
  });

  return app;
}
