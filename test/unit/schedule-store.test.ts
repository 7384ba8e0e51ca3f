// The slot store on both engines (a real SQLite file, a real PostgreSQL server): a slot
// is decided once (also by two connections racing, as two replicas would), transitions
// follow the state machine, suspension is the store's (not the Task's), history pages
// newest first.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ScheduleSlots } from '../../server/store/schedules.js';
import type { DbTarget } from '../../server/store/target.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('slots');
const task = { namespace: 'payments', name: 'reindex' };
const t = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m));
const now = new Date('2026-01-01T01:00:00Z');

for (const engine of ENGINES) {
  describe(`ScheduleSlots (${engine})`, () => {
    /** A fresh store, or (with `target`) another connection to the same database, as another replica's. */
    async function open(target?: DbTarget) {
      if (!target) {
        const s = await stores.open(engine);
        return { target: s.target, store: s.schedules };
      }
      return { target, store: new ScheduleSlots(await stores.connect(target)) };
    }

    test('the same slot cannot be inserted twice; the second decide gets nothing to run', async () => {
      const { store } = await open();
      const first = await store.decide(task, t(1), [{ nominal: t(1), state: 'scheduled' }], now);
      assert.equal(first.length, 1);
      const again = await store.decide(task, t(1), [{ nominal: t(1), state: 'scheduled' }], now);
      assert.deepEqual(again, []);
      assert.equal((await store.open()).length, 1);
    });

    test('two connections to one database (as two replicas) deciding the same 200 slots: each slot goes to exactly one', async () => {
      const { target, store: a } = await open();
      const { store: b } = await open(target);
      const won: string[] = [];
      for (let m = 0; m < 200; m++) {
        const slot = [{ nominal: t(m), state: 'scheduled' as const }];
        const [x, y] = await Promise.all([a.decide(task, t(m), slot, now), b.decide(task, t(m), slot, now)]);
        assert.equal(x.length + y.length, 1, `slot ${m}`);
        won.push(...[...x, ...y].map((s) => s.nominal));
      }
      assert.equal(new Set(won).size, 200);
    });

    test('two replicas deciding the same tick for 20 Tasks at once (one transaction each): every slot is inserted by exactly one', async () => {
      const { target, store: a } = await open();
      const { store: b } = await open(target);
      const entries = Array.from({ length: 20 }, (_, i) => ({
        task: { namespace: 'payments', name: `task-${i}` },
        cursor: t(9),
        slots: Array.from({ length: 10 }, (_, m) => ({ nominal: t(m), state: 'scheduled' as const })),
      }));
      const [x, y] = await Promise.all([a.decideMany(entries, now), b.decideMany(entries, now)]);
      const won = [...x.flat(), ...y.flat()].map((s) => `${s.task}@${s.nominal}`);
      assert.equal(won.length, 200);
      assert.equal(new Set(won).size, 200);
      assert.equal((await a.open()).length, 200);
    });

    test('the cursor and the missed count move with decide', async () => {
      const { store } = await open();
      assert.equal((await store.taskState(task)).cursor, undefined);
      await store.decide(
        task,
        t(5),
        [
          { nominal: t(3), state: 'missed', message: 'older than the slot that ran' },
          { nominal: t(4), state: 'missed' },
          { nominal: t(5), state: 'scheduled' },
        ],
        now,
      );
      const s = await store.taskState(task);
      assert.equal(s.cursor?.toISOString(), t(5).toISOString());
      assert.equal(s.missedTotal, 2);
    });

    test('transitions follow the state machine; the run ids of every attempt are kept', async () => {
      const { store } = await open();
      const [slot] = await store.decide(task, t(1), [{ nominal: t(1), state: 'scheduled' }], now);
      await store.update(task, slot!.nominal, { state: 'started', runId: 'aaaaaaaaaaaa', startedAt: now.toISOString() });
      await store.update(task, slot!.nominal, { state: 'started', runId: 'bbbbbbbbbbbb', attempt: 1 });
      const done = await store.update(task, slot!.nominal, { state: 'succeeded', finishedAt: '2026-01-01T01:02:00.000Z' });
      assert.deepEqual(done.runIds, ['aaaaaaaaaaaa', 'bbbbbbbbbbbb']);
      assert.equal(done.runId, 'bbbbbbbbbbbb');
      assert.equal((await store.taskState(task)).lastSuccess, '2026-01-01T01:02:00.000Z');
      await assert.rejects(store.update(task, slot!.nominal, { state: 'failed' }), /cannot go from succeeded to failed/);
      assert.deepEqual(await store.open(), []);
    });

    test('suspension is kept per Task, apart from the Task object, until cleared', async () => {
      const { target, store } = await open();
      await store.setSuspension(task, { at: now.toISOString(), by: 'alice', reason: 'INC-1 bad data' });
      const reopened = (await open(target)).store;
      assert.deepEqual((await reopened.taskState(task)).suspension, { at: now.toISOString(), by: 'alice', reason: 'INC-1 bad data' });
      await reopened.setSuspension(task, undefined);
      assert.equal((await store.taskState(task)).suspension, undefined);
    });

    test('history: newest first, paged by nominal time, per Task', async () => {
      const { store } = await open();
      const slots = Array.from({ length: 25 }, (_, m) => ({ nominal: t(m), state: 'skipped' as const, message: 'suspended' }));
      await store.decide(task, t(24), slots, now);
      await store.decide({ ...task, name: 'other' }, t(24), slots, now);
      const page1 = await store.history(task, { limit: 10 });
      assert.deepEqual(
        page1.map((s) => s.nominal),
        Array.from({ length: 10 }, (_, i) => t(24 - i).toISOString()),
      );
      const page3 = await store.history(task, { limit: 10, before: (await store.history(task, { limit: 20 })).at(-1)!.nominal });
      assert.equal(page3.length, 5);
      assert.equal(page3.at(-1)!.nominal, t(0).toISOString());
    });
  });
}
