/**
 * Upgrade style A, for the idle-memory comparison DESIGN.md asks for: Hono's
 * `upgradeWebSocket` helper from hono/bun owns the socket's events (a WSContext per event).
 * Handles `login` only (subscribe to the user's topic, reply), like signalbox does.
 * Usage: bun bench/peers/upgrade-hono-helper.ts <port>
 */
import { Hono } from 'hono';
import { upgradeWebSocket, websocket } from 'hono/bun';

const app = new Hono();
app.get(
  '/',
  upgradeWebSocket(() => ({
    onMessage(evt, ws) {
      const m = JSON.parse(String(evt.data));
      if (m.type !== 'login') return;
      (ws.raw as { subscribe(t: string): void }).subscribe(`user:${m.name}`);
      ws.send(JSON.stringify({ type: 'login', success: true, name: m.name }));
    },
  })),
);

Bun.serve({ hostname: '127.0.0.1', port: Number(process.argv[2] ?? 9090), fetch: app.fetch, websocket });
