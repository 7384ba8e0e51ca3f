// `audit verify` in a worker thread (what the server runs), on both engines: same
// verdicts as the in-process verify, on its own read-only connection.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { verifyInWorker } from '../../server/store/verify-worker.js';
import { intruder } from '../support/intruder.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('verify-worker');

for (const engine of ENGINES) {
  describe(`audit verify in a worker thread (${engine})`, () => {
    async function fill(n: number) {
      const store = await stores.open(engine);
      const appends = [];
      for (let i = 1; i <= n; i++) {
        appends.push(
          store.audit.append({
            type: 'run.requested',
            actor: { login: 'alice', teams: ['acme/payments'] },
            client: { kind: 'cli' },
            runId: `r${String(i).padStart(11, '0')}`,
            namespace: 'payments',
            deployment: 'api',
            reason: `INC-${i}`,
          }),
        );
      }
      await Promise.all(appends);
      return { target: store.target, log: store.audit };
    }

    test('an intact log verifies, with the same answer as in-process', async () => {
      const { target, log } = await fill(50);
      assert.deepEqual(await verifyInWorker(target), { ok: true, checked: 50 });
      assert.deepEqual(await verifyInWorker(target), await log.verify());
    });

    test('an edited event is found at its seq', async () => {
      const { target } = await fill(8);
      const other = await intruder(target);
      await other.dropGuard('events-update');
      assert.equal((await other.run(`UPDATE audit_events SET json = replace(json, '"INC-5"', '"INC-9999"') WHERE seq = 5`)).changes, 1);
      await other.close();
      const v = await verifyInWorker(target);
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 5);
      assert.match(v.problem!, /modified/);
    });

    test('a deleted event is found at its seq', async () => {
      const { target } = await fill(8);
      const other = await intruder(target);
      await other.dropGuard('events-delete');
      assert.equal((await other.run('DELETE FROM audit_events WHERE seq = 3')).changes, 1);
      await other.close();
      const v = await verifyInWorker(target);
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 3);
      assert.match(v.problem!, /missing \(deleted\)/);
    });
  });
}

describe('audit verify in a worker thread: no database', () => {
  test('a SQLite file that is not there is an error, not a verdict', async () => {
    await assert.rejects(verifyInWorker({ engine: 'sqlite', path: `${stores.dir}/nope.db` }), /nope\.db/);
  });
  test('a PostgreSQL database that is not there is an error naming it, without the password', async () => {
    const pg = await stores.postgres();
    const err = await verifyInWorker({ engine: 'postgres', url: pg.url('nope', { password: false }), password: pg.password }).then(
      () => assert.fail('verified a database that does not exist'),
      (e: Error) => e,
    );
    assert.match(err.message, /database nope does not exist/);
    assert.ok(!err.message.includes(pg.password));
  });
});
