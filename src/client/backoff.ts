/** How long to wait between reconnect attempts. */
export interface Backoff {
  /** The wait before the first attempt, in ms. */
  initialMs?: number;
  /** The longest wait, in ms: the bound no attempt exceeds. */
  maxMs?: number;
  /** Each failed attempt multiplies the wait by this. */
  factor?: number;
  /** 0–1: how much of each wait is random, so clients cut off together do not return together. */
  jitter?: number;
}

/**
 * The wait before attempt `attempt` (1, 2, …): `initialMs · factor^(attempt−1)`, capped at
 * `maxMs`, less a random part of up to `jitter` of it. Always within [(1−jitter)·base, base].
 */
export function backoffDelay(
  attempt: number,
  { initialMs = 250, maxMs = 10_000, factor = 2, jitter = 0.5 }: Backoff = {},
  random: () => number = Math.random,
): number {
  const base = Math.min(maxMs, initialMs * factor ** Math.max(0, attempt - 1));
  return Math.round(base * (1 - Math.min(1, Math.max(0, jitter)) * random()));
}
