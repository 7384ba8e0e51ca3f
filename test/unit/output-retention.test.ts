// --output-retention on both engines: the output of runs that ended longer ago than
// the retention is deleted, live and recent runs keep theirs, the run records and the
// audit log stay.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import type { Run } from '../../protocol/api.js';
import { type OutputStore, schedulePruning } from '../../server/store/output.js';
import type { Store } from '../../server/store/index.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('retention');
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

async function setup(engine: (typeof ENGINES)[number]) {
  const store = await stores.open(engine);
  const { output, runs, audit } = store;
  const MiB = Buffer.alloc(1024 * 1024, 0x61);
  const add = async (id: string, over: Partial<Run>) => {
    await runs.create(run(id, over));
    for (let i = 0; i < 4; i++) await output.append(id, ((i % 2) + 1) as 1 | 2, MiB);
    await audit.append({
      type: 'run.finished',
      actor: { login: 'alice', teams: [] },
      client: { kind: 'server' },
      runId: id,
      status: over.status ?? 'succeeded',
    });
  };
  const ago = (days: number) => new Date(NOW - days * DAY).toISOString();
  await add('old000000001', { finishedAt: ago(31) });
  await add('old000000002', { status: 'failed', exitCode: 1, finishedAt: ago(45) });
  await add('lost00000001', { status: 'lost', createdAt: ago(60) }); // ended without a finish time: counts from creation
  await add('recent000001', { finishedAt: ago(29) });
  await add('running00001', { status: 'running', createdAt: ago(90), startedAt: ago(90) }); // still live: never pruned
  return store;
}

const bytesOf = async (output: OutputStore, id: string) => {
  let n = 0;
  for await (const c of output.read(id)) n += c.data.length;
  return n;
};
const chunkCount = async (store: Store) =>
  Number((await sql<{ n: number }>`select count(*) as n from run_output_chunks`.execute(store.connection.db)).rows[0]!.n);

for (const engine of ENGINES) {
  describe(`output retention (${engine})`, () => {
    test('prune deletes the output of runs that ended before the cutoff, and only theirs', async () => {
      const store = await setup(engine);
      const { output, runs, audit } = store;
      const chunksBefore = await chunkCount(store);
      const eventsBefore = (await audit.query({ limit: 1000 })).items.length;

      assert.equal(await output.prune(new Date(NOW - 30 * DAY), 50, () => NOW), 3);
      for (const id of ['old000000001', 'old000000002', 'lost00000001']) {
        assert.equal(await bytesOf(output, id), 0, `${id}: output deleted`);
        const r = (await runs.get(id))!;
        assert.equal(r.outputExpiredAt, new Date(NOW).toISOString(), `${id}: the run record says when`);
        assert.equal(r.outputBytes, 0);
        assert.equal(r.outputTruncated, true);
        assert.equal(r.status === 'lost' || r.finishedAt !== undefined, true, 'the rest of the record stays');
      }
      for (const id of ['recent000001', 'running00001']) {
        assert.equal(await bytesOf(output, id), 4 * 1024 * 1024, `${id}: output kept`);
        assert.equal((await runs.get(id))!.outputExpiredAt, undefined);
      }
      assert.equal(await chunkCount(store), chunksBefore - 3 * 4);
      assert.equal((await audit.query({ limit: 1000 })).items.length, eventsBefore, 'audit events stay');
      assert.equal((await audit.verify()).ok, true, 'and the chain still verifies');
      // Idempotent: nothing more is due.
      assert.equal(await output.prune(new Date(NOW - 30 * DAY), 50, () => NOW), 0);
    });

    test('batches: a prune of many runs takes several calls of at most maxRuns each', async () => {
      const store = await stores.open(engine);
      const { output, runs } = store;
      for (let i = 0; i < 120; i++) {
        const id = `b${String(i).padStart(11, '0')}`;
        await runs.create(run(id, { finishedAt: new Date(NOW - 40 * DAY).toISOString() }));
        await output.append(id, 1, Buffer.from(`output of ${id}\n`));
      }
      const counts: number[] = [];
      for (let n = await output.prune(new Date(NOW - 30 * DAY), 50); n > 0; n = await output.prune(new Date(NOW - 30 * DAY), 50)) counts.push(n);
      assert.deepEqual(counts, [50, 50, 20]);
      assert.equal(await chunkCount(store), 0);
    });

    test('the server schedule prunes on its own, in the background', async () => {
      const { output } = await setup(engine);
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
      assert.equal(await bytesOf(output, 'running00001'), 4 * 1024 * 1024);
    });
  });
}
