import type { ConnState } from './types.ts';

/**
 * Token bucket on the connection's own state: `rate` tokens a second, at most `burst`.
 * Returns whether one more frame may be handled now. No timers: tokens are counted when a
 * frame arrives.
 */
export function takeToken(state: ConnState, now: number, rate: number, burst: number): boolean {
  const tokens = Math.min(burst, state.tokens + ((now - state.stamp) * rate) / 1000);
  state.stamp = now;
  if (tokens >= 1) {
    state.tokens = tokens - 1;
    state.strikes = 0;
    return true;
  }
  state.tokens = tokens;
  state.strikes++;
  return false;
}
