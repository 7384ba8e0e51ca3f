// The run projection against a real SQLite file: round trip, updates, listing with paging, active runs.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import BetterSqlite3 from 'better-sqlite3';
import type { Run, RunListQuery } from '../../protocol/api.js';
import { encodeCursor, openDatabase } from '../../server/audit/db.js';
import { RunStore } from '../../server/audit/runs.js';
import { tempDatabases } from '../support/sqlite.js';

const dbs = tempDatabases('runs');

function fresh(): { file: string; store: RunStore } {
  const file = dbs.file();
  const db = openDatabase(file);
  dbs.track(db);
  return { file, store: new RunStore(db) };
}

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

describe('RunStore', () => {
  test('create, get and update round-trip through the file', () => {
    const { file, store } = fresh();
    const created = store.create(run(1));
    assert.deepEqual(created, run(1));
    assert.deepEqual(store.get(run(1).id), run(1));
    assert.equal(store.get('r00000000404'), undefined);

    const started = store.update(run(1).id, { status: 'running', podName: 'oddjob-api-1-x7k2p', startedAt: '2025-03-01T10:01:05.000Z' });
    assert.equal(started.status, 'running');
    assert.equal(started.podName, 'oddjob-api-1-x7k2p');
    assert.equal(started.reason, 'INC-2231', 'fields not in the patch are kept');
    const finished = store.update(run(1).id, { status: 'failed', exitCode: 3, finishedAt: '2025-03-01T10:02:00.000Z', outputBytes: 1234 });
    assert.deepEqual(store.get(run(1).id), finished);

    // A second connection sees the same state: it is in the file, not in memory.
    const other = new BetterSqlite3(file, { readonly: true });
    dbs.track(other);
    assert.deepEqual(new RunStore(other).get(run(1).id), finished);
  });

  test('defaults are applied and invalid runs are refused', () => {
    const { store } = fresh();
    const { outputBytes: _b, outputTruncated: _t, ...bare } = run(1);
    const created = store.create(bare as Run);
    assert.equal(created.outputBytes, 0);
    assert.equal(created.outputTruncated, false);
    assert.throws(() => store.create(run(2, { id: 'NOT-AN-ID' })), /run id/);
    assert.throws(() => store.create(run(1)), /UNIQUE/, 'ids are unique');
    assert.throws(() => store.update(run(1).id, { status: 'exploded' as Run['status'] }));
    assert.equal(store.get(run(1).id)?.status, 'pending', 'a refused update changes nothing');
  });

  test('update of a missing run, or of the id, throws', () => {
    const { store } = fresh();
    store.create(run(1));
    assert.throws(() => store.update('r00000000404', { status: 'running' }), /run r00000000404 not found/);
    assert.throws(() => store.update(run(1).id, { id: run(2).id }), /cannot change the id/);
  });

  test('a corrupted row fails on read with the run named', () => {
    const { file, store } = fresh();
    store.create(run(1));
    const other = new BetterSqlite3(file);
    dbs.track(other);
    other.prepare('UPDATE runs SET json = \'{"id":"r00000000001"}\' WHERE id = ?').run(run(1).id);
    assert.throws(() => store.get(run(1).id), /stored run r00000000001 is not a valid run/);
  });

  describe('list', () => {
    let store: RunStore;
    const runs: Run[] = [];
    before(() => {
      store = fresh().store;
      const users = ['alice', 'Alice', 'bob'];
      const statuses = ['pending', 'running', 'succeeded', 'failed', 'cancelled'] as const;
      for (let i = 1; i <= 37; i++) {
        runs.push(
          store.create(
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

    function pages(q: Partial<RunListQuery> & { user?: string }, limit: number): Run[] {
      const seen: Run[] = [];
      let cursor: string | undefined;
      for (let guard = 0; guard < 100; guard++) {
        const page = store.list({ ...q, limit, ...(cursor ? { cursor } : {}) });
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
      test(`${name}: newest first, no duplicates or gaps across pages`, () => {
        const want = runs
          .filter(match)
          .reverse()
          .map((r) => r.id);
        for (const limit of [1, 4, 500])
          assert.deepEqual(
            pages(q, limit).map((r) => r.id),
            want,
            `limit ${limit}`,
          );
      });
    }

    test('garbage cursors are rejected as invalid', () => {
      for (const cursor of ['%%%', Buffer.from('r:abc').toString('base64url'), encodeCursor('a', 3)]) {
        assert.throws(() => store.list({ limit: 10, cursor }), /invalid cursor/, cursor);
      }
    });
  });

  test('listActive returns pending and running runs, oldest first, and follows updates', () => {
    const { store } = fresh();
    const statuses = ['pending', 'running', 'succeeded', 'failed', 'deadline', 'cancelled', 'lost', 'running'] as const;
    statuses.forEach((status, i) => store.create(run(i + 1, { status })));
    assert.deepEqual(
      store.listActive().map((r) => [r.id, r.status]),
      [
        [run(1).id, 'pending'],
        [run(2).id, 'running'],
        [run(8).id, 'running'],
      ],
    );
    store.update(run(2).id, { status: 'lost', message: 'the Job disappeared' });
    assert.deepEqual(
      store.listActive().map((r) => r.id),
      [run(1).id, run(8).id],
    );
  });
});
