import { createHmac } from 'node:crypto';

/** One entry of RTCConfiguration.iceServers. */
export interface IceServer {
  urls: string | string[];
  username?: string;
  credential?: string;
}

export interface IceOptions {
  stun: readonly string[];
  turnUrls: readonly string[];
  turnSecret: string;
  /** Seconds a TURN credential stays valid. */
  turnTtl: number;
}

/**
 * TURN credentials by the TURN REST convention (coturn's `use-auth-secret`): the username
 * is the expiry as a Unix time, optionally `:name`; the credential is the base64
 * HMAC-SHA1 of the username under the shared secret. (`node:crypto`, which Bun and Deno
 * both provide, keeps this synchronous, so a login reply never waits behind later frames.)
 */
export function turnCredential(secret: string, expiresAt: number, name?: string) {
  const username = name === undefined ? String(expiresAt) : `${expiresAt}:${name}`;
  const credential = createHmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** The ICE servers to hand a user, or undefined when none are configured. */
export function createIceServers({ stun, turnUrls, turnSecret, turnTtl }: IceOptions) {
  if (stun.length === 0 && turnUrls.length === 0) return undefined;
  return (name?: string, nowSeconds = Math.floor(Date.now() / 1000)): IceServer[] => {
    const servers: IceServer[] = [];
    if (stun.length > 0) servers.push({ urls: [...stun] });
    if (turnUrls.length > 0) {
      const creds = turnSecret ? turnCredential(turnSecret, nowSeconds + turnTtl, name) : {};
      servers.push({ urls: [...turnUrls], ...creds });
    }
    return servers;
  };
}
