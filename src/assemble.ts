import { type AppOptions, createApp } from './app.ts';
import type { Config } from './config.ts';
import { createPeerjsFace } from './face/peerjs.ts';
import { createSeedFace } from './face/seed.ts';
import type { Logger } from './log.ts';
import { Hub } from './signaling/hub.ts';
import { createIceServers } from './signaling/ice.ts';
import type { Cluster, Delivery } from './signaling/types.ts';

export interface AssembleOptions extends Pick<AppOptions, 'upgrade' | 'remoteAddress' | 'runtime' | 'memory'> {
  config: Config;
  log: Logger;
  version: string;
  delivery: Delivery;
  cluster?: Cluster;
}

/**
 * The parts every runtime shares: the hub, the seed and PeerJS faces, the HTTP app. What only some
 * configurations use (token checks, TURN credentials) is loaded only when configured, so a
 * plain server starts without it: "a seed user pays nothing for what it does not use".
 */
export async function assemble({ config, log, version, delivery, cluster, upgrade, remoteAddress, runtime, memory }: AssembleOptions) {
  const jwt = config.authSecret ? await import('hono/jwt') : undefined;
  const verifyToken = jwt && ((token: string, secret: string) => jwt.verify(token, secret, 'HS256'));
  const hmac = config.turnSecret ? (await import('node:crypto')).createHmac : undefined;
  const hub = new Hub({ delivery, cluster, log, limits: config });
  const iceServers = createIceServers({ ...config, turnUrls: config.turnUrl, hmac });
  const seed = createSeedFace(hub, { iceServers });
  const peerjs = config.peerjs ? createPeerjsFace(hub, { key: config.peerjsKey }) : undefined;
  cluster?.attach(hub, seed);
  const app = createApp({ hub, seed, peerjs, config, upgrade, remoteAddress, iceServers, verifyToken, version, runtime, memory });
  return { hub, seed, app };
}
