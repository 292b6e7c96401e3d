import type { Upgrade } from '../app.ts';
import { assemble } from '../assemble.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Hub } from '../signaling/hub.ts';
import { MemoryConn, MemoryTopics, utf8Length } from './memory-topics.ts';

export interface DenoServerOptions {
  config: Config;
  log: Logger;
  version: string;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * signalbox on Deno: Hono routes HTTP and the upgrade (and decides who may connect, in the
 * runtime-free app), `Deno.upgradeWebSocket` hands over a standard WebSocket, and delivery
 * goes through in-memory topics with the semantics of Bun's (Deno has no pub/sub of its
 * own). The core is the same one Bun runs.
 */
export async function createDenoServer({ config, log, version }: DenoServerOptions) {
  const topics = new MemoryTopics();
  // Set once assembled; the upgrade below runs only after that.
  let hub: Hub;

  const upgrade: Upgrade = (c, data, protocol) => {
    let upgraded: ReturnType<typeof Deno.upgradeWebSocket>;
    try {
      // Deno pings every idleTimeout seconds and closes a socket whose pong does not come
      // back in time: what the Bun adapter's keep-alive does (adapter/keepalive.ts), give
      // or take one interval.
      upgraded = Deno.upgradeWebSocket(c.req.raw, { protocol, idleTimeout: config.idleTimeout });
    } catch {
      // Deno throws on a malformed handshake (no key, wrong version): the client's fault.
      return { ok: false, response: c.text('WebSocket upgrade failed', 400) };
    }
    const { socket, response } = upgraded;
    // Binary frames are refused by the face; an ArrayBuffer avoids building a Blob for them.
    socket.binaryType = 'arraybuffer';
    const conn = new MemoryConn(data, socket, topics, {
      backpressureLimit: config.backpressureLimit,
      // Out of the publish under way: the hub is in the middle of a relay.
      // No close code: a dropped client, not one that left, so a resumable session is held.
      onOverflow: (dropped) => queueMicrotask(() => hub.close(dropped)),
    });
    let opened = false;
    socket.onopen = () => {
      opened = true;
      hub.open(conn);
    };
    socket.onmessage = (e: MessageEvent<string | ArrayBuffer>) => {
      // Deno has no limit per frame below its own (64 MiB): the frame is already read, but
      // the client sees what Bun's maxPayloadLength gives it, a close with 1009.
      if (tooLarge(e.data, config.maxFrame)) return conn.close(1009, 'frame too large');
      hub.receive(conn, typeof e.data === 'string' ? e.data : new Uint8Array(e.data));
    };
    socket.onclose = (e: CloseEvent) => {
      conn.closed();
      // A socket that never opened was never counted by the hub: give back its reservation.
      if (opened) hub.close(conn, e.code);
      else hub.unreserve(data.ip);
    };
    return { ok: true, response };
  };
  // Read before the upgrade: once the request is handed over, Deno no longer says who sent it.
  const remoteAddress = (c: { env: unknown }) => (c.env as Deno.ServeHandlerInfo<Deno.NetAddr>).remoteAddr.hostname;

  const runtime = { name: 'deno', version: Deno.version.deno };
  const assembled = await assemble({ config, log, version, delivery: topics, upgrade, remoteAddress, runtime, memory: () => Deno.memoryUsage() });
  hub = assembled.hub;
  const app = assembled.app;
  const tls = config.tlsCert ? { cert: Deno.readTextFileSync(config.tlsCert), key: Deno.readTextFileSync(config.tlsKey) } : {};
  const server = Deno.serve({
    port: config.port,
    hostname: config.host,
    ...tls,
    onListen: () => {}, // the entry logs its own line
    handler: (req, info) => app.fetch(req, info),
  });
  hub.start();

  return {
    server,
    hub,
    topics,
    port: server.addr.port,
    /**
     * Graceful stop: refuse new connections, tell every client 1001, wait up to
     * `timeoutMs` for them to go, then stop waiting.
     */
    async stop(timeoutMs = config.shutdownTimeoutMs) {
      const listening = server.shutdown();
      for (const conn of hub.connections) conn.close(1001, 'server shutting down');
      const deadline = Date.now() + timeoutMs;
      while (hub.connections.size > 0 && Date.now() < deadline) await sleep(10);
      hub.stop();
      await Promise.race([listening, sleep(Math.max(0, deadline - Date.now()))]);
    },
  };
}

/** Whether a frame is over `max` bytes, counting a text frame's UTF-8 only when it could be. */
function tooLarge(data: string | ArrayBuffer, max: number): boolean {
  if (typeof data !== 'string') return data.byteLength > max;
  // At most 3 bytes per UTF-16 unit: most frames are decided without counting.
  if (data.length * 3 <= max) return false;
  return data.length > max || utf8Length(data) > max;
}
