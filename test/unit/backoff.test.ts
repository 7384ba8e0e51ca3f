// protocol/backoff.ts: the one retry delay (full jitter) every reconnect loop uses.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay } from '../../protocol/backoff.js';

const opts = { baseMs: 200, capMs: 5_000 };

describe('backoffDelay (full jitter)', () => {
  // [attempt, ceiling]: the ceiling doubles from baseMs and stops at capMs.
  const ceilings: [number, number][] = [
    [0, 200],
    [1, 400],
    [2, 800],
    [4, 3_200],
    [5, 5_000],
    [9, 5_000],
    [10_000, 5_000], // no overflow to Infinity or NaN after a very long outage
    [-1, 200], // a caller's off-by-one never yields a fraction of the base
  ];
  for (const [attempt, ceiling] of ceilings) {
    test(`attempt ${attempt}: anywhere in [0, ${ceiling})`, () => {
      assert.equal(
        backoffDelay(attempt, opts, () => 0),
        0,
      );
      assert.equal(
        backoffDelay(attempt, opts, () => 0.5),
        ceiling / 2,
      );
      assert.equal(
        backoffDelay(attempt, opts, () => 0.999_999),
        ceiling - 1,
      );
    });
  }

  test('clients failing together do not retry together', () => {
    const delays = Array.from({ length: 1_000 }, () => backoffDelay(3, opts));
    assert.ok(delays.every((d) => Number.isInteger(d) && d >= 0 && d < 1_600));
    // 1,000 clients over 1,600 possible milliseconds: without jitter they would share one value.
    assert.ok(new Set(delays).size > 400, `only ${new Set(delays).size} distinct delays`);
  });
});
