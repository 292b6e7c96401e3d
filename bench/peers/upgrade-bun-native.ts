/**
 * Upgrade style B (signalbox's): Hono routes the request, the route calls Bun's
 * `server.upgrade` with per-connection data, and Bun's own `websocket` handlers own the
 * socket. Same `login` handling as upgrade-hono-helper.ts, for the idle-memory comparison.
 * Usage: bun bench/peers/upgrade-bun-native.ts <port>
 */
import type { Server } from 'bun';
import { Hono } from 'hono';

interface Data {
  name: string;
}

const app = new Hono<{ Bindings: Server<Data> }>();
app.get('/', (c) =>
  c.env.upgrade(c.req.raw, { data: { name: '' } }) ? new Response(null) : c.text('upgrade failed', 400),
);

Bun.serve<Data>({
  hostname: '127.0.0.1',
  port: Number(process.argv[2] ?? 9090),
  fetch: app.fetch,
  websocket: {
    message(ws, text) {
      const m = JSON.parse(String(text));
      if (m.type !== 'login') return;
      ws.data.name = m.name;
      ws.subscribe(`user:${m.name}`);
      ws.send(JSON.stringify({ type: 'login', success: true, name: m.name }));
    },
  },
});
