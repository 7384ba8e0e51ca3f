// Run leases on both engines: one owner at a time, renewals keep it, an expired lease
// is taken over by exactly one of several replicas claiming at once.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import pino from 'pino';
import { RENEW_MS, runOwnership } from '../../server/runs/own.js';
import { RunLeases } from '../../server/store/leases.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('leases');

for (const engine of ENGINES) {
  describe(`run leases (${engine})`, () => {
    test('one owner; renewals keep it; after expiry exactly one of several claimants takes it', async () => {
      const a = await stores.open(engine);
      const replicas = await Promise.all([0, 1, 2].map(async () => new RunLeases((await stores.reopen(a.target)).connection)));
      const [r1, r2, r3] = replicas as [RunLeases, RunLeases, RunLeases];
      assert.equal(await r1.claim('run1', 'A', 60_000), true);
      assert.equal(await r2.claim('run1', 'B', 60_000), false, 'held by A');
      assert.equal(await r1.claim('run1', 'A', 60_000), true, 'the owner may claim again');
      assert.deepEqual(await r1.renew('A', ['run1', 'run2'], 60_000), ['run2'], 'A does not hold run2');
      assert.equal((await r3.holder('run1'))?.owner, 'A');
      assert.deepEqual([...(await r3.held())], ['run1'], 'the runs with a live lease, for adoption to skip');
      // A stops renewing: a lease of 1 ms expires at once.
      assert.equal(await r1.claim('run1', 'A', 1), true);
      await new Promise((r) => setTimeout(r, 20));
      const wins = await Promise.all([r2.claim('run1', 'B', 60_000), r3.claim('run1', 'C', 60_000)]);
      assert.equal(wins.filter(Boolean).length, 1, 'exactly one replica adopts it');
      assert.deepEqual([...(await r1.held())], ['run1'], 'held again once adopted');
      const owner = (await r1.holder('run1'))!.owner;
      assert.deepEqual(await r1.renew('A', ['run1'], 60_000), ['run1'], 'the old owner learns it lost the run');
      await r1.release('run1', 'A');
      assert.equal((await r1.holder('run1'))?.owner, owner, 'only the holder can release');
      await (owner === 'B' ? r2 : r3).release('run1', owner);
      assert.equal(await r1.holder('run1'), undefined);
    });
  });

  describe(`run ownership (${engine})`, () => {
    test('a run being created (in owned(), its claim not written yet) is not taken for lost by a renewal', async (t) => {
      const a = await stores.open(engine);
      const leases = new RunLeases(a.connection);
      const lost: string[] = [];
      const owned = ['claimed-run', 'being-created'];
      const own = runOwnership({
        leases,
        logger: pino({ level: 'silent' }),
        owned: () => owned,
        onLost: (r) => void lost.push(r),
        adopt: async () => undefined,
      });
      t.after(() => own.stop());
      assert.equal(await own.claim('claimed-run'), true);
      own.start();
      // One renewal tick passes while `being-created` is in owned() without a lease row.
      await new Promise((r) => setTimeout(r, RENEW_MS + 500));
      assert.deepEqual(lost, [], 'nothing is lost');
      assert.ok((await leases.holder('claimed-run'))!.expiresAt > Date.now() + 5_000, 'the claimed run was renewed');
      // Truly lost: another replica holds it (its lease ran out and was taken over).
      await own.claim('being-created');
      await leases.release('being-created', own.id);
      await leases.claim('being-created', 'another-replica', 60_000);
      await new Promise((r) => setTimeout(r, RENEW_MS + 500));
      assert.deepEqual(lost, ['being-created']);
    });
  });
}
