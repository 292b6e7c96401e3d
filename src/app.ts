import { Hono } from 'hono';
import type { Context } from 'hono';
import { DEMO_CSP, DEMO_HTML } from './demo/page.ts';
import type { Hub } from './signaling/hub.ts';

export interface AppOptions {
  hub: Hub;
  /** Runtime-specific WebSocket upgrade for the seed face at `/`. */
  upgrade: (c: Context) => Response | Promise<Response>;
  version: string;
  /** Serve the call page at `GET /` (config `demo`, `--no-demo`); otherwise a short text. */
  demo?: boolean;
}

// The page runs only its own inline code and talks only to this server.
const DEMO_HEADERS = {
  'content-security-policy': DEMO_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'cache-control': 'no-cache',
};

const isUpgrade = (c: Context) => c.req.header('upgrade')?.toLowerCase() === 'websocket';

/**
 * The HTTP face of signalbox. Hono routes the upgrade; the runtime's own WebSocket server
 * owns the socket afterwards, so no per-event framework object sits on the message path.
 */
export function createApp({ hub, upgrade, version, demo = true }: AppOptions) {
  const startedAt = Date.now();
  const app = new Hono();

  app.get('/', (c) => {
    if (isUpgrade(c)) return upgrade(c);
    if (demo) return c.html(DEMO_HTML, 200, DEMO_HEADERS);
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
      uptime: Math.round((Date.now() - startedAt) / 1000),
    }),
  );

  return app;
}
