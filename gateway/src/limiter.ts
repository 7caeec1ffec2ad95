/**
 * Fixed-window request counter per identity. Per replica and in memory: a first line against
 * floods, not a billing-grade quota.
 */
export function createRateLimiter(perMinute: number, now: () => number = Date.now) {
  let window = Math.floor(now() / 60_000);
  let counts = new Map<string, number>();
  return {
    /** Seconds to wait when over the limit, else 0. */
    take(key: string): number {
      const w = Math.floor(now() / 60_000);
      if (w !== window) {
        window = w;
        counts = new Map();
      }
      const n = (counts.get(key) ?? 0) + 1;
      counts.set(key, n);
      return n > perMinute ? 60 - Math.floor((now() / 1000) % 60) : 0;
    },
  };
}
