/** Latency histogram: 1 µs buckets below 10 ms, 100 µs buckets to 10 s; exact max. */
export class Histogram {
  private fine = new Uint32Array(10_000);
  private coarse = new Uint32Array(100_000);
  count = 0;
  max = 0;
  over = 0;

  record(ms: number): void {
    const us = ms * 1000;
    this.count++;
    if (ms > this.max) this.max = ms;
    if (us < 10_000) this.fine[us < 0 ? 0 : us | 0]!++;
    else if (us < 10_000_000) this.coarse[(us / 100) | 0]!++;
    else this.over++;
  }

  /** The latency (ms) at or below which a fraction `p` (0..1) of samples fall. */
  percentile(p: number): number {
    if (this.count === 0) return Number.NaN;
    const rank = Math.ceil(p * this.count);
    let seen = 0;
    for (let i = 0; i < this.fine.length; i++) {
      seen += this.fine[i]!;
      if (seen >= rank) return (i + 1) / 1000;
    }
    for (let i = 100; i < this.coarse.length; i++) {
      seen += this.coarse[i]!;
      if (seen >= rank) return ((i + 1) * 100) / 1000;
    }
    return this.max;
  }
}

export const median = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return Number.NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** Spread of repeated runs: (max - min) / median, as a fraction. */
export const spread = (xs: number[]): number => {
  const s = xs.filter((x) => Number.isFinite(x));
  if (s.length < 2) return 0;
  const m = median(s);
  return m === 0 ? 0 : (Math.max(...s) - Math.min(...s)) / Math.abs(m);
};

export const round = (x: number, digits = 2): number =>
  Number.isFinite(x) ? Math.round(x * 10 ** digits) / 10 ** digits : x;

/** Percentile of a small array of samples (nearest rank). */
export const percentileOf = (xs: number[], p: number): number => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(p * s.length) - 1))]!;
};
