// express-rate-limit's counters kept in the shared store (services.ts RateCounters)
// instead of each replica's memory: behind a round-robin Service, N in-memory limits
// would let a person make N times the limit.
//
// When the store cannot count (PostgreSQL restarting, a full disk), this replica counts
// in its own memory meanwhile: the limit still holds (per replica), and the request
// goes on to its own answer — a read still works, and a run is refused by the audit
// append with the reason, instead of every request failing on its counter.
import { MemoryStore, type Options, type Store } from 'express-rate-limit';
import type { RateCounters } from '../services.js';

export function sharedRateLimitStore(counters: RateCounters, prefix: string, onFallback?: (err: unknown) => void): Store {
  let windowMs = 60_000;
  const local = new MemoryStore();
  const k = (key: string) => `${prefix}:${key}`;
  const fallback = (err: unknown) => onFallback?.(err);
  return {
    init(options: Options) {
      windowMs = options.windowMs;
      local.init(options);
    },
    async increment(key: string) {
      try {
        const r = await counters.hit(k(key), windowMs);
        return { totalHits: r.hits, resetTime: new Date(r.resetAt) };
      } catch (err) {
        fallback(err);
        return local.increment(key);
      }
    },
    async decrement(key: string) {
      await counters.unhit(k(key)).catch((err: unknown) => (fallback(err), local.decrement(key)));
    },
    async resetKey(key: string) {
      await counters.reset(k(key)).catch((err: unknown) => (fallback(err), local.resetKey(key)));
    },
  };
}
