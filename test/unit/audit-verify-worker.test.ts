// `audit verify` in a worker thread (what the server runs): same verdicts as the
// in-process verify, on a real SQLite file, and the event loop stays free meanwhile.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import BetterSqlite3 from 'better-sqlite3';
import { AuditLog } from '../../server/audit/store.js';
import { verifyInWorker } from '../../server/audit/verify-worker.js';
import { tempDatabases } from '../support/sqlite.js';

const dbs = tempDatabases('verify-worker');

function fill(n: number) {
  const file = dbs.file();
  const log = new AuditLog(dbs.open(file));
  for (let i = 1; i <= n; i++) {
    log.append({
      type: 'run.requested',
      actor: { login: 'alice', teams: ['acme/payments'] },
      client: { kind: 'cli' },
      runId: `r${String(i).padStart(11, '0')}`,
      namespace: 'payments',
      deployment: 'api',
      reason: `INC-${i}`,
    });
  }
  return { file, log };
}

function intruder(file: string) {
  const db = new BetterSqlite3(file);
  return db;
}

describe('audit verify in a worker thread', () => {
  test('an intact log verifies, with the same answer as in-process', async () => {
    const { file, log } = fill(50);
    assert.deepEqual(await verifyInWorker(file), { ok: true, checked: 50 });
    assert.deepEqual(await verifyInWorker(file), log.verify());
  });

  test('an edited event is found at its seq', async () => {
    const { file } = fill(8);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_update');
    assert.equal(other.prepare(`UPDATE audit_events SET json = replace(json, '"INC-5"', '"INC-9999"') WHERE seq = 5`).run().changes, 1);
    other.close();
    const v = await verifyInWorker(file);
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 5);
    assert.match(v.problem!, /modified/);
  });

  test('a deleted event is found at its seq', async () => {
    const { file } = fill(8);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_delete');
    assert.equal(other.prepare('DELETE FROM audit_events WHERE seq = 3').run().changes, 1);
    other.close();
    const v = await verifyInWorker(file);
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 3);
    assert.match(v.problem!, /missing \(deleted\)/);
  });

  test('a file that is not there is an error, not a verdict', async () => {
    await assert.rejects(verifyInWorker(`${dbs.dir}/nope.db`), /nope\.db/);
  });
});
