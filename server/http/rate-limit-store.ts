// express-rate-limit's counters kept in the shared store (services.ts RateCounters)
// instead of each replica's memory: behind a round-robin Service, N in-memory limits
// would let a person make N times the limit.
import type { Options, Store } from 'express-rate-limit';
import { unavailable } from '../errors.js';
import type { RateCounters } from '../services.js';

/** A store that cannot count fails closed, as a 503 that says why (not an internal error). */
async function counted<T>(f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (err) {
    throw unavailable(`requests cannot be counted against the rate limit: the store is unavailable (${(err as Error).message})`, 'try again in a moment');
  }
}

export function sharedRateLimitStore(counters: RateCounters, prefix: string): Store {
  let windowMs = 60_000;
  const k = (key: string) => `${prefix}:${key}`;
  return {
    init(options: Options) {
      windowMs = options.windowMs;
    },
    async increment(key: string) {
      const r = await counted(() => counters.hit(k(key), windowMs));
      return { totalHits: r.hits, resetTime: new Date(r.resetAt) };
    },
    async decrement(key: string) {
      await counted(() => counters.unhit(k(key)));
    },
    async resetKey(key: string) {
      await counted(() => counters.reset(k(key)));
    },
  };
}
