// --output-retention against a real SQLite file: the output of runs that ended
// longer ago than the retention is deleted (space given back to the database),
// live and recent runs keep theirs, the run records and the audit log stay.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { Run } from '../../protocol/api.js';
import { openDatabase } from '../../server/audit/db.js';
import { OutputStore, schedulePruning } from '../../server/audit/output.js';
import { RunStore } from '../../server/audit/runs.js';
import { AuditLog } from '../../server/audit/store.js';
import { tempDatabases } from '../support/sqlite.js';

const dbs = tempDatabases('retention');
const DAY = 86_400_000;
const NOW = Date.parse('2025-06-01T00:00:00Z');

function run(id: string, over: Partial<Run>): Run {
  return {
    id,
    namespace: 'payments',
    deployment: 'api',
    container: 'app',
    image: 'img',
    command: ['node', 'x.js'],
    user: 'alice',
    interactive: false,
    tty: false,
    status: 'succeeded',
    jobName: `api-oddjob-${id}`,
    createdAt: new Date(NOW - 40 * DAY).toISOString(),
    outputBytes: 0,
    outputTruncated: false,
    ...over,
  };
}

function setup() {
  const db = dbs.track(openDatabase(dbs.file()));
  const output = new OutputStore(db);
  const runs = new RunStore(db);
  const audit = new AuditLog(db);
  const MiB = Buffer.alloc(1024 * 1024, 0x61);
  const add = (id: string, over: Partial<Run>) => {
    runs.create(run(id, over));
    for (let i = 0; i < 4; i++) output.append(id, ((i % 2) + 1) as 1 | 2, MiB);
    audit.append({ type: 'run.finished', actor: { login: 'alice', teams: [] }, client: { kind: 'server' }, runId: id, status: over.status ?? 'succeeded' });
  };
  const ago = (days: number) => new Date(NOW - days * DAY).toISOString();
  add('old000000001', { finishedAt: ago(31) });
  add('old000000002', { status: 'failed', exitCode: 1, finishedAt: ago(45) });
  add('lost00000001', { status: 'lost', createdAt: ago(60) }); // ended without a finish time: counts from creation
  add('recent000001', { finishedAt: ago(29) });
  add('running00001', { status: 'running', createdAt: ago(90), startedAt: ago(90) }); // still live: never pruned
  return { db, output, runs, audit };
}

const bytesOf = (output: OutputStore, id: string) => [...output.read(id)].reduce((n, c) => n + c.data.length, 0);

describe('output retention', () => {
  test('prune deletes the output of runs that ended before the cutoff, and only theirs', () => {
    const { db, output, runs, audit } = setup();
    const chunksBefore = db.prepare('SELECT COUNT(*) FROM run_output_chunks').pluck().get() as number;
    const eventsBefore = audit.query({ limit: 1000 }).items.length;

    assert.equal(
      output.prune(new Date(NOW - 30 * DAY), 50, () => NOW),
      3,
    );
    for (const id of ['old000000001', 'old000000002', 'lost00000001']) {
      assert.equal(bytesOf(output, id), 0, `${id}: output deleted`);
      const r = runs.get(id)!;
      assert.equal(r.outputExpiredAt, new Date(NOW).toISOString(), `${id}: the run record says when`);
      assert.equal(r.outputBytes, 0);
      assert.equal(r.outputTruncated, true);
      assert.equal(r.status === 'lost' || r.finishedAt !== undefined, true, 'the rest of the record stays');
    }
    for (const id of ['recent000001', 'running00001']) {
      assert.equal(bytesOf(output, id), 4 * 1024 * 1024, `${id}: output kept`);
      assert.equal(runs.get(id)!.outputExpiredAt, undefined);
    }
    const chunksAfter = db.prepare('SELECT COUNT(*) FROM run_output_chunks').pluck().get() as number;
    assert.equal(chunksAfter, chunksBefore - 3 * 4);
    assert.equal(audit.query({ limit: 1000 }).items.length, eventsBefore, 'audit events stay');
    assert.equal(audit.verify().ok, true, 'and the chain still verifies');
    // Idempotent: nothing more is due.
    assert.equal(
      output.prune(new Date(NOW - 30 * DAY), 50, () => NOW),
      0,
    );
  });

  test('batches: a prune of many runs takes several calls of at most maxRuns each', () => {
    const db = dbs.track(openDatabase(dbs.file()));
    const output = new OutputStore(db);
    const runs = new RunStore(db);
    for (let i = 0; i < 120; i++) {
      const id = `b${String(i).padStart(11, '0')}`;
      runs.create(run(id, { finishedAt: new Date(NOW - 40 * DAY).toISOString() }));
      output.append(id, 1, Buffer.from(`output of ${id}\n`));
    }
    const counts: number[] = [];
    for (let n = output.prune(new Date(NOW - 30 * DAY), 50); n > 0; n = output.prune(new Date(NOW - 30 * DAY), 50)) counts.push(n);
    assert.deepEqual(counts, [50, 50, 20]);
    assert.equal(db.prepare('SELECT COUNT(*) FROM run_output_chunks').pluck().get(), 0);
  });

  test('the server schedule prunes on its own, in the background', async () => {
    const { output } = setup();
    // Retention relative to the real clock: everything in setup ended long before now.
    const pruned = await new Promise<number>((resolve, reject) => {
      const stop = schedulePruning(output, {
        retentionMs: 1000,
        onPruned: (n) => {
          stop();
          resolve(n);
        },
        onError: reject,
      });
    });
    assert.equal(pruned, 4, 'every finished run (the live one stays)');
    assert.equal(bytesOf(output, 'running00001'), 4 * 1024 * 1024);
  });
});
