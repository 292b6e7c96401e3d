/** `node:crypto`'s createHmac, passed in so that only servers handing out TURN load it. */
export type Hmac = (algorithm: 'sha1', key: string) => { update(data: string): { digest(encoding: 'base64'): string } };

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
  /** Needed when `turnSecret` is set. */
  hmac?: Hmac;
}

/**
 * TURN credentials by the TURN REST convention (coturn's `use-auth-secret`): the username
 * is the expiry as a Unix time, optionally `:name`; the credential is the base64
 * HMAC-SHA1 of the username under the shared secret. (`node:crypto`, which Bun and Deno
 * both provide, keeps this synchronous, so a login reply never waits behind later frames.)
 */
export function turnCredential(hmac: Hmac, secret: string, expiresAt: number, name?: string) {
  const username = name === undefined ? String(expiresAt) : `${expiresAt}:${name}`;
  const credential = hmac('sha1', secret).update(username).digest('base64');
  return { username, credential };
}

/** The ICE servers to hand a user, or undefined when none are configured. */
export function createIceServers({ stun, turnUrls, turnSecret, turnTtl, hmac }: IceOptions) {
  if (stun.length === 0 && turnUrls.length === 0) return undefined;
  if (turnSecret && hmac === undefined) throw new Error('a TURN secret needs an HMAC implementation');
  return (name?: string, nowSeconds = Math.floor(Date.now() / 1000)): IceServer[] => {
    const servers: IceServer[] = [];
    if (stun.length > 0) servers.push({ urls: [...stun] });
    if (turnUrls.length > 0) {
      const creds = turnSecret ? turnCredential(hmac!, turnSecret, nowSeconds + turnTtl, name) : {};
      servers.push({ urls: [...turnUrls], ...creds });
    }
    return servers;
  };
}
