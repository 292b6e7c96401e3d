import type { Server, ServerWebSocket } from 'bun';
import type { Upgrade } from '../app.ts';
import { assemble } from '../assemble.ts';
import type { Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { Cluster, ConnState, Delivery } from '../signaling/types.ts';
import { Keepalive } from './keepalive.ts';

export interface BunServerOptions {
  config: Config;
  log: Logger;
  version: string;
  /** Connected already (src/cluster/redis.ts), when the namespace is shared. */
  cluster?: Cluster;
}

export type BunSocket = ServerWebSocket<ConnState>;

/**
 * signalbox on Bun: Hono routes HTTP and the upgrade, Bun's native WebSocket server owns
 * the sockets, and delivery to a user is one `server.publish` on the user's topic.
 */
export async function createBunServer({ config, log, version, cluster }: BunServerOptions) {
  let server: Server<ConnState> | undefined;
  // `server.publish` (not `ws.publish`) so a sender subscribed to the topic still counts.
  const delivery: Delivery = { publish: (topic, frame) => server!.publish(topic, frame) };

  const upgrade: Upgrade = (c, data, protocol) => {
    const srv = c.env as Server<ConnState>;
    const headers = protocol === undefined ? undefined : { 'Sec-WebSocket-Protocol': protocol };
    // Bun ignores the returned response once the upgrade succeeded.
    if (srv.upgrade(c.req.raw, { data, headers })) return { ok: true, response: new Response(null) };
    return { ok: false, response: c.text('WebSocket upgrade failed', 400) };
  };
  const remoteAddress = (c: { env: unknown; req: { raw: Request } }) =>
    (c.env as Server<ConnState>).requestIP(c.req.raw)?.address ?? '';

  const runtime = { name: 'bun', version: Bun.version };
  const memory = () => process.memoryUsage();
  const { hub, app } = await assemble({ config, log, version, delivery, cluster, upgrade, remoteAddress, runtime, memory });

  // Liveness: each connection is pinged once per half idle timeout, spread over that time,
  // and closed when its ping is still unanswered at its next turn (keepalive.ts). Bun's
  // own idle timer and pings are off: its pings come in bursts, and its timer, reset by
  // the server's own pings, cannot tell a dead peer from a pinged one. Bun treated 1–7 s
  // as 8.
  const keepalive =
    config.idleTimeout > 0
      ? new Keepalive<BunSocket>({
          conns: hub.connections as Set<BunSocket>,
          intervalMs: (Math.max(8, config.idleTimeout) * 1000) / 2,
          ping: (ws) => ws.ping(),
          // Like an expired idle timer: no close handshake with a peer that is not there.
          dead: (ws) => ws.terminate(),
        })
      : undefined;

  server = Bun.serve<ConnState>({
    port: config.port,
    hostname: config.host,
    reusePort: config.reusePort,
    fetch: app.fetch,
    tls: config.tlsCert ? { cert: Bun.file(config.tlsCert), key: Bun.file(config.tlsKey) } : undefined,
    websocket: {
      maxPayloadLength: config.maxFrame,
      idleTimeout: 0,
      sendPings: false,
      backpressureLimit: config.backpressureLimit,
      closeOnBackpressureLimit: true,
      open(ws) {
        hub.open(ws);
        keepalive?.wake();
      },
      message(ws, frame) {
        hub.receive(ws, frame);
      },
      pong(ws) {
        keepalive?.answered(ws);
      },
      close(ws, code) {
        keepalive?.forget(ws);
        hub.close(ws, code);
      },
    },
  });
  hub.start();
  keepalive?.start();

  return {
    server,
    hub,
    /**
     * Graceful stop: refuse new connections, tell every client 1001, wait up to
     * `timeoutMs` for them to go, then close what is left.
     */
    async stop(timeoutMs = config.shutdownTimeoutMs) {
      const listening = server!.stop(false);
      for (const conn of hub.connections) conn.close(1001, 'server shutting down');
      // In a cluster, sessions dropped by the 1001 may be resumed on another node: keep
      // serving their handovers until they are gone or the time is up.
      const deadline = Date.now() + timeoutMs;
      const busy = () => hub.connections.size > 0 || (cluster !== undefined && hub.sessions.size > 0);
      while (busy() && Date.now() < deadline) await Bun.sleep(10);
      hub.endAll();
      hub.stop();
      keepalive?.stop();
      await Promise.race([server!.stop(true), listening]);
      await cluster?.stop();
    },
  };
}
