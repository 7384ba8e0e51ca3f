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

    test('1,000 slots, 8 claimers on their own connections racing for every slot: each slot is claimed exactly once', async () => {
      const { target, store } = await open();
      const tasks = Array.from({ length: 100 }, (_, i) => ({ namespace: 'payments', name: `task-${i}` }));
      await store.decideMany(
        tasks.map((tk) => ({ task: tk, cursor: t(9), slots: Array.from({ length: 10 }, (_, m) => ({ nominal: t(m), state: 'scheduled' as const })) })),
        now,
      );
      const slots = tasks.flatMap((tk) => Array.from({ length: 10 }, (_, m) => ({ task: tk, nominal: t(m).toISOString() })));
      assert.equal(slots.length, 1000);
      const claimers = [store, ...(await Promise.all(Array.from({ length: 7 }, async () => (await open(target)).store)))];
      const wins = new Map<string, string[]>();
      // Each claimer goes through every slot in its own order, 16 claims in flight at once.
      await Promise.all(
        claimers.map(async (c, i) => {
          const order = slots.map((x, j) => ({ x, k: (j * (i * 2 + 1) * 7919) % slots.length })).sort((a, b) => a.k - b.k);
          let next = 0;
          const worker = async () => {
            for (let j = next++; j < order.length; j = next++) {
              const { task: tk, nominal } = order[j]!.x;
              const got = await c.claim(tk, nominal, 0, `replica-${i}`, now, new Date(now.getTime() - 120_000));
              if (got) wins.set(`${tk.name}@${nominal}`, [...(wins.get(`${tk.name}@${nominal}`) ?? []), `replica-${i}:${got}`]);
            }
          };
          await Promise.all(Array.from({ length: 16 }, worker));
        }),
      );
      const twice = [...wins].filter(([, w]) => w.length !== 1);
      assert.deepEqual(twice, [], 'claimed more than once');
      assert.equal(wins.size, 1000, 'every slot claimed once');
      // A retry is a new attempt: it is claimed once too, and the first attempt stays taken.
      const [first] = slots;
      await store.update(first!.task, first!.nominal, { state: 'started', runId: 'aaaaaaaaaaaa' });
      const retry = await Promise.all(claimers.map((c, i) => c.claim(first!.task, first!.nominal, 1, `replica-${i}`, now)));
      assert.equal(retry.filter(Boolean).length, 1);
      assert.equal(await store.claim(first!.task, first!.nominal, 0, 'late', now), false);
    });

    test('a stale claim whose attempt never started is taken over by one claimer; a started one, a fresh one or an ended slot never', async () => {
      const { target, store } = await open();
      const other = (await open(target)).store;
      await store.decide(
        task,
        t(3),
        [1, 2, 3].map((m) => ({ nominal: t(m), state: 'scheduled' as const })),
        now,
      );
      const [a, b, c] = [1, 2, 3].map((m) => t(m).toISOString());
      const claimedAt = new Date(now.getTime() - 300_000);
      for (const n of [a!, b!, c!]) assert.equal(await store.claim(task, n, 0, 'dead', claimedAt), 'claimed');
      await store.update(task, b!, { state: 'started', runId: 'bbbbbbbbbbbb' });
      await store.update(task, c!, { state: 'missed', message: 'not started inside startingDeadline' });
      // Not stale yet (claimed after staleBefore): nobody takes it.
      assert.equal(await other.claim(task, a!, 0, 'live', now, new Date(claimedAt.getTime() - 1)), false);
      const stale = new Date(now.getTime() - 120_000);
      const takers = await Promise.all([store.claim(task, a!, 0, 'x', now, stale), other.claim(task, a!, 0, 'y', now, stale)]);
      assert.deepEqual(takers.filter(Boolean), ['taken-over']);
      assert.equal(await other.claim(task, b!, 0, 'y', now, stale), false, 'started: never relaunched');
      assert.equal(await other.claim(task, c!, 0, 'y', now, stale), false, 'missed: never started late');
    });

    test('a released claim (a launch that created nothing) can be claimed again; only its holder releases it', async () => {
      const { store } = await open();
      const [slot] = await store.decide(task, t(1), [{ nominal: t(1), state: 'scheduled' }], now);
      assert.equal(await store.claim(task, slot!.nominal, 0, 'a', now), 'claimed');
      await store.release(task, slot!.nominal, 0, 'b');
      assert.equal(await store.claim(task, slot!.nominal, 0, 'b', now), false);
      await store.release(task, slot!.nominal, 0, 'a');
      assert.equal(await store.claim(task, slot!.nominal, 0, 'b', now), 'claimed');
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
