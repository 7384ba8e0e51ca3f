// express-rate-limit's counters kept in the shared store (services.ts RateCounters)
// instead of each replica's memory: behind a round-robin Service, N in-memory limits
// would let a person make N times the limit.
import type { Options, Store } from 'express-rate-limit';
import type { RateCounters } from '../services.js';

export function sharedRateLimitStore(counters: RateCounters, prefix: string): Store {
  let windowMs = 60_000;
  const k = (key: string) => `${prefix}:${key}`;
  return {
    init(options: Options) {
      windowMs = options.windowMs;
    },
    async increment(key: string) {
      const r = await counters.hit(k(key), windowMs);
      return { totalHits: r.hits, resetTime: new Date(r.resetAt) };
    },
    async decrement(key: string) {
      await counters.unhit(k(key));
    },
    async resetKey(key: string) {
      await counters.reset(k(key));
    },
  };
}
