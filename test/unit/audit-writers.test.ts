// Several processes (standing in for server replicas) append to one audit chain at the
// same moment, on both engines: the chain stays linear — no fork, no gap, no duplicate
// seq — every event of every writer is in it once, and it verifies.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { runWriters } from '../support/audit-writers.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('writers');

for (const engine of ENGINES) {
  describe(`audit chain under concurrent writer processes (${engine})`, () => {
    for (const writers of [2, 4]) {
      test(`${writers} writers × 150 events, 8 in flight each`, async () => {
        const store = await stores.open(engine);
        const { total, wallMs, names } = await runWriters(store.target, writers, 150);
        console.log(`${engine}: ${writers} writers appended ${total} events in ${wallMs.toFixed(0)} ms`);
        assert.deepEqual(await store.audit.verify(), { ok: true, checked: total });
        const seen = new Map<string, number>();
        let expectSeq = 1;
        for await (const e of store.audit.iterate()) {
          assert.equal(e.seq, expectSeq++, 'seq is gapless and unique');
          seen.set(e.reason!, (seen.get(e.reason!) ?? 0) + 1);
        }
        for (const name of names) for (let i = 0; i < 150; i++) assert.equal(seen.get(`${name}/${i}`), 1, `${name}/${i} once`);
      });
    }
  });
}
