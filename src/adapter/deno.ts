import type { Context } from 'hono';
import { createApp } from '../app.ts';
import type { Config } from '../config.ts';
import { createSeedFace } from '../face/seed.ts';
import type { Logger } from '../log.ts';
import { Hub } from '../signaling/hub.ts';
import { MemoryConn, MemoryTopics } from './memory-topics.ts';

export interface DenoServerOptions {
  config: Config;
  log: Logger;
  version: string;
}

/**
 * signalbox on Deno: Hono routes HTTP and the upgrade, `Deno.upgradeWebSocket` hands over
 * a standard WebSocket, and delivery goes through in-memory topics with the semantics of
 * Bun's (Deno has no pub/sub of its own). The core is the same one Bun runs.
 */
export function createDenoServer({ config, log, version }: DenoServerOptions) {
  const topics = new MemoryTopics();
  const hub = new Hub({ delivery: topics, log });
  const seed = createSeedFace(hub);
  let nextId = 1;

  const upgrade = (c: Context) => {
    // Read before upgrading: once the request is handed over, Deno refuses to say who sent it.
    const ip = (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr.hostname; // we listen on TCP
    let upgraded: ReturnType<typeof Deno.upgradeWebSocket>;
    try {
      upgraded = Deno.upgradeWebSocket(c.req.raw);
    } catch {
      // Deno throws on a malformed handshake (no key, wrong version): the client's fault.
      return c.text('WebSocket upgrade failed', 400);
    }
    const { socket, response } = upgraded;
    // Binary frames are refused by the face; an ArrayBuffer avoids building a Blob for them.
    socket.binaryType = 'arraybuffer';
    const conn = new MemoryConn(
      { id: nextId++, ip, face: seed, session: null, pending: false },
      socket,
      topics,
    );
    socket.onopen = () => hub.open(conn);
    socket.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
      const frame = typeof e.data === 'string' ? e.data : new Uint8Array(e.data);
      try {
        conn.data.face.handle(conn, frame);
      } catch (err) {
        // A bug must cost one message, not the process or the other users.
        log.error('handler_failed', { conn: conn.data.id, err });
        conn.send(conn.data.face.error('internal', 'The server failed to handle the message.'));
      }
    };
    socket.onclose = () => {
      conn.closed();
      hub.close(conn);
    };
    return response;
  };

  const app = createApp({ hub, upgrade, version });
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    onListen: () => {}, // the entry logs its own line
    handler: (req, info) => app.fetch(req, info),
  });

  return {
    server,
    hub,
    topics,
    port: server.addr.port,
    /** Close every socket with 1001 and stop listening. */
    async stop() {
      for (const conn of hub.connections) conn.close(1001, 'server shutting down');
      await server.shutdown();
    },
  };
}
