import type { Server, ServerWebSocket } from 'bun';
import type { Context } from 'hono';
import { createApp } from '../app.ts';
import type { Config } from '../config.ts';
import { createSeedFace } from '../face/seed.ts';
import type { Logger } from '../log.ts';
import { Hub } from '../signaling/hub.ts';
import type { ConnState, Delivery } from '../signaling/types.ts';

export interface BunServerOptions {
  config: Config;
  log: Logger;
  version: string;
}

export type BunSocket = ServerWebSocket<ConnState>;

/**
 * signalbox on Bun: Hono routes HTTP and the upgrade, Bun's native WebSocket server owns
 * the sockets, and delivery to a user is one `server.publish` on the user's topic.
 */
export function createBunServer({ config, log, version }: BunServerOptions) {
  let server: Server<ConnState> | undefined;
  // `server.publish` (not `ws.publish`) so a sender subscribed to the topic still counts.
  const delivery: Delivery = { publish: (topic, frame) => server!.publish(topic, frame) };
  const hub = new Hub({ delivery, log });
  const seed = createSeedFace(hub);
  let nextId = 1;

  const upgrade = (c: Context) => {
    const srv = c.env as Server<ConnState>;
    const req = c.req.raw;
    const data: ConnState = {
      id: nextId++,
      ip: srv.requestIP(req)?.address ?? '',
      face: seed,
      session: null,
      pending: false,
    };
    // Bun ignores the returned response once the upgrade succeeded.
    if (srv.upgrade(req, { data })) return new Response(null);
    return c.text('WebSocket upgrade failed', 400);
  };

  const app = createApp({ hub, upgrade, version, demo: config.demo });

  server = Bun.serve<ConnState>({
    port: config.port,
    hostname: config.host,
    fetch: app.fetch,
    websocket: {
      open(ws) {
        hub.open(ws);
      },
      message(ws, frame) {
        try {
          ws.data.face.handle(ws, frame);
        } catch (err) {
          // A bug must cost one message, not the process or the other users.
          log.error('handler_failed', { conn: ws.data.id, err });
          ws.send(ws.data.face.error('internal', 'The server failed to handle the message.'));
        }
      },
      close(ws) {
        hub.close(ws);
      },
    },
  });

  return {
    server,
    hub,
    /** Close every socket with 1001 and stop listening. */
    async stop(closeActive = true) {
      for (const conn of hub.connections) conn.close(1001, 'server shutting down');
      await server!.stop(closeActive);
    },
  };
}
