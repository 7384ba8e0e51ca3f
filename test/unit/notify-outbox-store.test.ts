// The outbox claim is the one statement replicas race on. Here several claimers, each
// with its own store (its own connection pool, like a replica), drain 1,000 rows of one
// target at once on a real PostgreSQL server and a real SQLite file: every row is
// leased to exactly one claimer and settled once (no duplicate sends), and the rows of
// one run go out one at a time, in order (a run's finish never overtakes its start).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { NotifyEvent } from '../../server/notify/events.js';
import type { NewDelivery } from '../../server/notify/outbox.js';
import type { Store } from '../../server/store/index.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('outbox');
const ROWS = 1000;
const CLAIMERS = 8;
const RUNS = 100; // 100 runs of 5 events each, and 500 events about no run

function deliveries(now: number): NewDelivery[] {
  const rows: NewDelivery[] = [];
  for (let i = 0; i < ROWS; i++) {
    const runIndex = i % 2 === 0 ? (i / 2) % RUNS : undefined;
    const event: NotifyEvent = {
      type: runIndex === undefined ? 'schedule.missed' : 'run.progress',
      time: new Date(now).toISOString(),
      auditSeq: i + 1,
      actor: 'alice',
      ...(runIndex === undefined
        ? { where: { namespace: 'payments' }, message: `missed ${i}` }
        : {
            run: {
              id: `run${String(runIndex).padStart(9, '0')}`,
              namespace: 'payments',
              deployment: 'api',
              container: 'app',
              command: ['true'],
              status: 'running',
            },
            text: `step ${i}`,
          }),
    };
    rows.push({ target: 'hooks', event, now });
  }
  return rows;
}

for (const engine of ENGINES) {
  describe(`on ${engine}`, () => {
    test(`${CLAIMERS} concurrent claimers drain ${ROWS} rows: each is leased once and settled once; a run's rows one at a time, in order`, async () => {
      const first = await stores.open(engine, { maxConnections: 4 });
      const now = Date.now();
      await first.connection.db.transaction().execute((trx) => first.outbox.enqueueInTransaction(trx, deliveries(now)));
      const replicas: Store[] = [first];
      for (let i = 1; i < CLAIMERS; i++) replicas.push(await stores.reopen(first.target, { maxConnections: 4 }));

      const claims = new Map<number, string[]>();
      const inFlightByRun = new Map<string, number>();
      const orderByRun = new Map<string, number[]>();
      const overlaps: string[] = [];
      const lostSettles: number[] = [];
      let settled = 0;

      const claimer = async (store: Store, owner: string) => {
        let idle = 0;
        while (settled < ROWS && idle < 2000) {
          // A long lease: nothing here may be claimed twice because a lease ran out.
          const rows = await store.outbox.claim('hooks', owner, 7, Date.now(), Date.now() + 600_000);
          if (!rows.length) {
            idle++;
            await new Promise((r) => setTimeout(r, 2));
            continue;
          }
          idle = 0;
          for (const row of rows) {
            claims.set(row.id, [...(claims.get(row.id) ?? []), owner]);
            if (row.runId) {
              const n = (inFlightByRun.get(row.runId) ?? 0) + 1;
              inFlightByRun.set(row.runId, n);
              if (n > 1) overlaps.push(`${row.runId}: row ${row.id} leased while another of its rows was`);
              orderByRun.set(row.runId, [...(orderByRun.get(row.runId) ?? []), row.id]);
            }
          }
          // Let the other claimers in while these rows are "being sent".
          await new Promise((r) => setImmediate(r));
          for (const row of rows) {
            // Marked done before the settle commits: a row of the same run claimed by
            // someone else before this point would be a real overlap.
            if (row.runId) inFlightByRun.set(row.runId, inFlightByRun.get(row.runId)! - 1);
            const ok = await store.outbox.settle(row.id, owner, { state: 'delivered', status: 204, now: Date.now() });
            if (ok) settled++;
            else lostSettles.push(row.id);
          }
        }
      };
      await Promise.all(replicas.map((s, i) => claimer(s, `replica-${i}`)));

      const duplicates = [...claims].filter(([, owners]) => owners.length > 1);
      assert.deepEqual(duplicates.slice(0, 5), [], `${duplicates.length} rows were leased more than once`);
      assert.equal(claims.size, ROWS, 'every row was claimed');
      assert.deepEqual(lostSettles, [], 'no claimer lost a lease it held');
      assert.equal(settled, ROWS);
      assert.deepEqual(overlaps.slice(0, 5), []);
      for (const [run, ids] of orderByRun) {
        assert.deepEqual(
          ids,
          [...ids].sort((a, b) => a - b),
          `the rows of ${run} went out in order`,
        );
        assert.equal(ids.length, ROWS / 2 / RUNS);
      }
      const owners = new Set([...claims.values()].map((o) => o[0]));
      assert.ok(owners.size > 1, `the claimers really competed (rows went to ${owners.size} of them)`);
      const left = await first.outbox.list({ state: 'pending', limit: 10 });
      assert.equal(left.items.length, 0, 'nothing left pending');
      const done = await first.outbox.list({ state: 'delivered', limit: ROWS + 1 });
      assert.equal(done.items.length, ROWS);
      assert.ok(
        done.items.every((d) => d.attempts === 1),
        'each row was attempted once',
      );
    });
  });
}
