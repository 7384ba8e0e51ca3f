// The run projection on both engines (a real SQLite file, a real PostgreSQL server): round trip, updates, listing with paging, active runs.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import type { Run, RunListQuery } from '../../protocol/api.js';
import { encodeCursor } from '../../server/store/cursor.js';
import { RunStore } from '../../server/store/runs.js';
import { intruder } from '../support/intruder.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('runs');

function run(i: number, over: Partial<Run> = {}): Run {
  return {
    id: `r${String(i).padStart(11, '0')}`,
    namespace: 'payments',
    deployment: 'api',
    container: 'app',
    image: 'registry/api@sha256:abc',
    command: ['node', 'scripts/backfill.js'],
    reason: 'INC-2231',
    user: 'alice',
    interactive: false,
    tty: false,
    status: 'pending',
    jobName: `oddjob-api-${i}`,
    createdAt: new Date(Date.UTC(2025, 2, 1, 10, i)).toISOString(),
    outputBytes: 0,
    outputTruncated: false,
    ...over,
  };
}

for (const engine of ENGINES) {
  describe(`RunStore (${engine})`, () => {
    const fresh = async () => {
      const s = await stores.open(engine);
      return { target: s.target, store: s.runs };
    };

    test('create, get and update round-trip through the database', async () => {
      const { target, store } = await fresh();
      const created = await store.create(run(1));
      assert.deepEqual(created, run(1));
      assert.deepEqual(await store.get(run(1).id), run(1));
      assert.equal(await store.get('r00000000404'), undefined);

      const started = await store.update(run(1).id, { status: 'running', podName: 'oddjob-api-1-x7k2p', startedAt: '2025-03-01T10:01:05.000Z' });
      assert.equal(started.status, 'running');
      assert.equal(started.podName, 'oddjob-api-1-x7k2p');
      assert.equal(started.reason, 'INC-2231', 'fields not in the patch are kept');
      const finished = await store.update(run(1).id, { status: 'failed', exitCode: 3, finishedAt: '2025-03-01T10:02:00.000Z', outputBytes: 1234 });
      assert.deepEqual(await store.get(run(1).id), finished);

      // A second connection sees the same state: it is in the database, not in memory.
      const other = new RunStore(await stores.connect(target, { readonly: true }));
      assert.deepEqual(await other.get(run(1).id), finished);
    });

    test('concurrent updates of one run from two connections both land (read-modify-write is atomic)', async () => {
      const { target, store } = await fresh();
      await store.create(run(1));
      const other = (await stores.reopen(target)).runs;
      await Promise.all([store.update(run(1).id, { podName: 'pod-a' }), other.update(run(1).id, { exitCode: 7 }), store.update(run(1).id, { message: 'm' })]);
      const got = await store.get(run(1).id);
      assert.equal(got?.podName, 'pod-a');
      assert.equal(got?.exitCode, 7);
      assert.equal(got?.message, 'm');
    });

    test('defaults are applied and invalid runs are refused', async () => {
      const { store } = await fresh();
      const { outputBytes: _b, outputTruncated: _t, ...bare } = run(1);
      const created = await store.create(bare as Run);
      assert.equal(created.outputBytes, 0);
      assert.equal(created.outputTruncated, false);
      await assert.rejects(store.create(run(2, { id: 'NOT-AN-ID' })), /run id/);
      await assert.rejects(store.create(run(1)), /UNIQUE|unique/, 'ids are unique');
      await assert.rejects(store.update(run(1).id, { status: 'exploded' as Run['status'] }));
      assert.equal((await store.get(run(1).id))?.status, 'pending', 'a refused update changes nothing');
    });

    test('update of a missing run, or of the id, throws', async () => {
      const { store } = await fresh();
      await store.create(run(1));
      await assert.rejects(store.update('r00000000404', { status: 'running' }), /run r00000000404 not found/);
      await assert.rejects(store.update(run(1).id, { id: run(2).id }), /cannot change the id/);
    });

    test('a corrupted row fails on read with the run named', async () => {
      const { target, store } = await fresh();
      await store.create(run(1));
      const other = stores.track(await intruder(target));
      await other.run('UPDATE runs SET json = \'{"id":"r00000000001"}\' WHERE id = ?', run(1).id);
      await assert.rejects(store.get(run(1).id), /stored run r00000000001 is not a valid run/);
    });

    describe('list', () => {
      let store: RunStore;
      const runs: Run[] = [];
      before(async () => {
        store = (await fresh()).store;
        const users = ['alice', 'Alice', 'bob'];
        const statuses = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
        for (let i = 1; i <= 37; i++) {
          runs.push(
            await store.create(
              run(i, {
                user: users[i % 3]!,
                namespace: i % 2 ? 'payments' : 'search',
                deployment: i % 4 ? 'api' : 'worker',
                status: statuses[i % statuses.length]!,
              }),
            ),
          );
        }
      });

      async function pages(q: Partial<RunListQuery> & { user?: string }, limit: number): Promise<Run[]> {
        const seen: Run[] = [];
        let cursor: string | undefined;
        for (let guard = 0; guard < 100; guard++) {
          const page = await store.list({ ...q, limit, ...(cursor ? { cursor } : {}) });
          seen.push(...page.items);
          if (!page.nextCursor) return seen;
          assert.equal(page.items.length, limit);
          cursor = page.nextCursor;
        }
        throw new Error('paging did not end');
      }

      const cases: [string, Partial<RunListQuery> & { user?: string }, (r: Run) => boolean][] = [
        ['everything', {}, () => true],
        ['user, case-insensitive', { user: 'ALICE' }, (r) => r.user.toLowerCase() === 'alice'],
        ['namespace', { namespace: 'search' }, (r) => r.namespace === 'search'],
        ['deployment + status', { deployment: 'api', status: 'failed' }, (r) => r.deployment === 'api' && r.status === 'failed'],
        ['no match', { user: 'nobody' }, () => false],
      ];
      for (const [name, q, match] of cases) {
        test(`${name}: newest first, no duplicates or gaps across pages`, async () => {
          const want = runs
            .filter(match)
            .reverse()
            .map((r) => r.id);
          for (const limit of [1, 4, 500])
            assert.deepEqual(
              (await pages(q, limit)).map((r) => r.id),
              want,
              `limit ${limit}`,
            );
        });
      }

      test('garbage cursors are rejected as invalid', async () => {
        for (const cursor of ['%%%', Buffer.from('r:abc').toString('base64url'), encodeCursor('a', 3)]) {
          await assert.rejects(store.list({ limit: 10, cursor }), /invalid cursor/, cursor);
        }
      });
    });

    test('listActive returns pending and running runs, oldest first, and follows updates', async () => {
      const { store } = await fresh();
      const statuses = ['pending', 'running', 'succeeded', 'failed', 'deadline', 'cancelled', 'lost', 'running'] as const;
      for (const [i, status] of statuses.entries()) await store.create(run(i + 1, { status }));
      assert.deepEqual(
        (await store.listActive()).map((r) => [r.id, r.status]),
        [
          [run(1).id, 'pending'],
          [run(2).id, 'running'],
          [run(8).id, 'running'],
        ],
      );
      await store.update(run(2).id, { status: 'lost', message: 'the Job disappeared' });
      assert.deepEqual(
        (await store.listActive()).map((r) => r.id),
        [run(1).id, run(8).id],
      );
    });
  });
}
