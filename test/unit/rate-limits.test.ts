// Rate-limit counters in the store, on both engines: two replicas (two connections)
// count into one limit, and a new window starts from zero.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { RateLimitCounters } from '../../server/store/rate-limits.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('rate-limits');

for (const engine of ENGINES) {
  describe(`rate-limit counters (${engine})`, () => {
    test('hits on two replicas count against one limit; the next window starts again', async () => {
      let now = 1_000_000_020_000;
      const a = await stores.open(engine);
      const b = await stores.reopen(a.target);
      const ca = new RateLimitCounters(a.connection, () => now);
      const cb = new RateLimitCounters(b.connection, () => now);
      const hits = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? ca : cb).hit('user:11', 60_000)));
      assert.deepEqual(
        hits.map((h) => h.hits).sort((x, y) => x - y),
        Array.from({ length: 20 }, (_, i) => i + 1),
        'every hit counted once, whichever replica took it',
      );
      assert.equal(hits[0]!.resetAt, now - (now % 60_000) + 60_000);
      assert.equal((await ca.hit('user:12', 60_000)).hits, 1, 'keys are apart');
      await cb.unhit('user:11');
      assert.equal((await ca.hit('user:11', 60_000)).hits, 20);
      now += 60_000;
      assert.equal((await cb.hit('user:11', 60_000)).hits, 1, 'a new window');
      await ca.reset('user:11');
      assert.equal((await ca.hit('user:11', 60_000)).hits, 1);
    });
  });
}
