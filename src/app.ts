import { Hono } from 'hono';
import type { Context } from 'hono';
import type { Hub } from './signaling/hub.ts';

export interface AppOptions {
  hub: Hub;
  /** Runtime-specific WebSocket upgrade for the seed face at `/`. */
  upgrade: (c: Context) => Response | Promise<Response>;
  version: string;
}

const isUpgrade = (c: Context) => c.req.header('upgrade')?.toLowerCase() === 'websocket';

/**
 * The HTTP face of signalbox. Hono routes the upgrade; the runtime's own WebSocket server
 * owns the socket afterwards, so no per-event framework object sits on the message path.
 */
export function createApp({ hub, upgrade, version }: AppOptions) {
  const startedAt = Date.now();
  const app = new Hono();

  app.get('/', (c) =>
    isUpgrade(c)
      ? upgrade(c)
      : c.text(
          `signalbox ${version}: a WebRTC signaling server.\n` +
            'Connect a WebSocket to this URL and send {"type":"login","name":"..."}.\n',
        ),
  );

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
