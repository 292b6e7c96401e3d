import type { Context, Hono } from 'hono';
import type { Hub } from '../signaling/hub.ts';

export interface PeerjsRoutesOptions {
  hub: Hub;
  /** Where PeerJS clients look (`--peerjs-path`, their `path` option). */
  path: string;
  /** Their `key` option (`--peerjs-key`). */
  key: string;
  /** Serve `GET <path><key>/peers` (--discovery). */
  discovery: boolean;
  /** Admit a WebSocket for the PeerJS face, under the server's upgrade policy (app.ts). */
  accept: (c: Context, handshake: Record<string, string>) => Promise<Response>;
  /** Browser origins that may read the answers (--allowed-origins); null: any. */
  originAllowed: ((origin: string) => boolean) | null;
}

/** Ids in one answer of `GET <path><key>/peers` (`peer` lists every one; here ten pages at most). */
export const PEERS_MAX = 1000;

/** `myapp` → `/myapp/`: the client joins `path` and `peerjs` with nothing in between. */
export const peerjsBase = (path: string) => `${path.startsWith('/') ? '' : '/'}${path}${path.endsWith('/') ? '' : '/'}`;

const isUpgrade = (c: Context) => c.req.header('upgrade')?.toLowerCase() === 'websocket';

/**
 * The HTTP side of the PeerJS server protocol, mounted at `path`: the WebSocket at
 * `<path>peerjs`, a fresh id at `<path><key>/id`, and the list of ids at `<path><key>/peers`
 * with discovery on. Pages on other origins read the answers, so they carry CORS headers.
 */
export function mountPeerjs(app: Hono, { hub, path, key, discovery, accept, originAllowed }: PeerjsRoutesOptions): void {
  const base = peerjsBase(path);

  const cors = (c: Context) => {
    const origin = c.req.header('origin');
    if (origin === undefined) return;
    if (originAllowed !== null && !originAllowed(origin)) return;
    c.header('Access-Control-Allow-Origin', origin);
    c.header('Vary', 'Origin');
  };

  app.get(`${base}peerjs`, async (c) => {
    if (!isUpgrade(c)) return c.text('The PeerJS WebSocket endpoint: connect with a WebSocket (?key=…&id=…&token=…).\n', 426);
    // Only what the face reads: the rest of the query (`version`, anything else) stays out.
    const query = c.req.query();
    const handshake: Record<string, string> = {};
    for (const name of ['key', 'id', 'token']) if (query[name] !== undefined) handshake[name] = query[name];
    return accept(c, handshake);
  });

  // Any key gets an id, as from `peer`: a wrong key is then refused on the WebSocket with
  // INVALID-KEY, which the client reports in words, where a failed fetch says only "Could not
  // get an ID". An id is a random UUID no one here holds.
  app.get(`${base}:key/id`, (c) => {
    cors(c);
    let id = crypto.randomUUID();
    while (hub.sessions.has(id)) id = crypto.randomUUID();
    return c.text(id, 200, { 'Cache-Control': 'no-store' });
  });

  app.get(`${base}:key/peers`, async (c) => {
    cors(c);
    // 401, as from `peer`: the client's message then tells its developer to turn discovery on.
    if (!discovery || c.req.param('key') !== key) return c.text('Discovery is off (--discovery) or the key is wrong.', 401);
    const ids: string[] = [];
    let cursor = '';
    try {
      while (ids.length < PEERS_MAX) {
        const page = await hub.listUsers(cursor);
        ids.push(...page.users);
        if (page.next === undefined) break;
        cursor = page.next;
      }
    } catch {
      return c.json({ error: 'unavailable' }, 503);
    }
    return c.json(ids.slice(0, PEERS_MAX), 200, { 'Cache-Control': 'no-store' });
  });

  // A preflight, for pages whose fetch adds headers of their own.
  app.options(`${base}:key/:what`, (c) => {
    cors(c);
    c.header('Access-Control-Allow-Methods', 'GET');
    const asked = c.req.header('access-control-request-headers');
    if (asked !== undefined) c.header('Access-Control-Allow-Headers', asked);
    return c.body(null, 204);
  });
}
