// `oddjob db migrate-to`: a SQLite store (written by the pre-kysely code) copied into
// a real PostgreSQL through the real command; the chain verifies there, nothing is
// lost, the copied sign-ins still work, and a second copy is refused.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, test } from 'node:test';
import { CredentialStore } from '../../server/auth/credentials.js';
import { intruder } from '../support/intruder.js';
import { REPO_ROOT } from '../support/cluster.js';
import { testStores } from '../support/stores.js';

const stores = testStores('copy');
const FIXTURE = path.join(import.meta.dirname, '../fixtures/store-v4.db');
const FIXTURE_TOKEN = 'odjt_GwFfHeHceAZxMN_LOMsXZkwZwxVhZ1tGeJliN-_jj2Q';

function oddjob(args: string[], env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, [path.join(REPO_ROOT, 'bin/oddjob.mjs'), ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
}

describe('oddjob db migrate-to', () => {
  test('copies a SQLite store into PostgreSQL exactly and verifies the chain there', async () => {
    const file = path.join(stores.dir, 'source.db');
    fs.copyFileSync(FIXTURE, file);
    const target = await stores.target('postgres');
    assert.equal(target.engine, 'postgres');
    if (target.engine !== 'postgres') return;
    const pwFile = path.join(stores.dir, 'pw');
    fs.writeFileSync(pwFile, `${target.password}\n`);
    const r = oddjob(['db', 'migrate-to', target.url, '--db', file, '--db-password-file', pwFile]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /copied 60 audit events \(chain verified\), 30 runs, 60 output chunks, 1 credentials/);
    assert.ok(!r.stdout.includes(target.password!) && !r.stderr.includes(target.password!), 'the password is never printed');

    const source = await stores.reopen({ engine: 'sqlite', path: file });
    const copy = await stores.reopen(target);
    assert.deepEqual(await copy.audit.verify(), { ok: true, checked: 60 });
    const all = async (s: typeof copy) => {
      const out = [];
      for await (const e of s.audit.iterate()) out.push(e);
      return out;
    };
    assert.deepEqual(await all(copy), await all(source), 'every event, hash for hash');
    assert.deepEqual((await copy.runs.list({ limit: 100 })).items, (await source.runs.list({ limit: 100 })).items, 'runs, newest first as before');
    let text = '';
    for await (const c of copy.output.read('legacy000012', 5)) text += c.data.toString();
    assert.equal(text, ' from run 12\nwarning 12\n');
    const creds = new CredentialStore(copy.credentials, 's'.repeat(40), () => 1_750_000_000_000);
    assert.equal((await creds.lookup(FIXTURE_TOKEN, 'token'))?.identity.login, 'Alice', 'a token issued before the move still signs in');
    // The copied chain goes on in PostgreSQL.
    assert.equal((await copy.audit.append({ type: 'login', actor: { login: 'carol', teams: [] }, client: { kind: 'cli' } })).seq, 61);

    const again = oddjob(['db', 'migrate-to', target.url, '--db', file], { PGPASSWORD: target.password });
    assert.equal(again.status, 1);
    assert.match(again.stderr, /the target already has data \(audit_events is not empty\); migrate into an empty database/);
  });

  test('schedules move too: suspensions, cursors, missed counts, every slot (over a batch) with its launch claim', async () => {
    const source = await stores.open('sqlite');
    const now = new Date('2026-01-01T12:00:00Z');
    const at = (m: number) => new Date(Date.UTC(2026, 0, 1, 0, m));
    // The same Task name in two namespaces: the copy must not key Tasks by name alone.
    const tasks = [
      { namespace: 'payments', name: 'reindex' },
      { namespace: 'search', name: 'reindex' },
    ];
    for (const task of tasks) {
      const slots = Array.from({ length: 300 }, (_, m) => ({ nominal: at(m), state: m % 7 === 0 ? ('missed' as const) : ('scheduled' as const) }));
      await source.schedules.decide(task, at(299), slots, now);
      await source.schedules.update(task, at(1).toISOString(), { state: 'started', runId: 'aaaaaaaaaaaa', startedAt: now.toISOString() });
      await source.schedules.update(task, at(1).toISOString(), { state: 'succeeded', finishedAt: now.toISOString() });
      assert.equal(await source.schedules.claim(task, at(2).toISOString(), 0, 'replica-a', now), 'claimed');
    }
    await source.schedules.setSuspension(tasks[1]!, { at: now.toISOString(), by: 'alice', reason: 'INC-7' });
    const target = await stores.target('postgres');
    if (target.engine !== 'postgres' || source.target.engine !== 'sqlite') throw new Error('sqlite → postgres expected');
    const r = oddjob(['db', 'migrate-to', target.url, '--db', source.target.path], { PGPASSWORD: target.password });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /2 scheduled tasks, 600 schedule slots/);
    const copy = await stores.reopen(target);
    for (const task of tasks) {
      assert.deepEqual(
        await copy.schedules.taskState(task),
        await source.schedules.taskState(task),
        `${task.namespace}: cursor, suspension, missed count, last success`,
      );
      assert.deepEqual(
        await copy.schedules.history(task, { limit: 1000 }),
        await source.schedules.history(task, { limit: 1000 }),
        `${task.namespace}: every slot`,
      );
      assert.equal(await copy.schedules.claim(task, at(2).toISOString(), 0, 'replica-b', now), false, 'a slot claimed before the move stays claimed');
      assert.equal(await copy.schedules.claim(task, at(3).toISOString(), 0, 'replica-b', now), 'claimed');
    }
    assert.equal((await copy.schedules.open()).length, (await source.schedules.open()).length);
  });

  test('a copy whose chain does not verify in the target is reported, not hidden', async () => {
    const file = path.join(stores.dir, 'tampered.db');
    fs.copyFileSync(FIXTURE, file);
    const other = await intruder({ engine: 'sqlite', path: file });
    await other.dropGuard('events-update');
    await other.run(`UPDATE audit_events SET json = replace(json, '"INC-4"', '"INC-44"') WHERE seq = 7`);
    await other.close();
    const target = await stores.target('postgres');
    if (target.engine !== 'postgres') return;
    const r = oddjob(['db', 'migrate-to', target.url, '--db', file], { PGPASSWORD: target.password });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /the copy does not verify: event 7/);
  });

  test('bad arguments say what is wrong', () => {
    assert.match(oddjob(['db', 'migrate-to', 'mysql://x@y/z']).stderr, /neither a file path nor a postgres/);
    assert.match(oddjob(['db', 'migrate-to', './other.db']).stderr, /the target must be a postgres:\/\/ URL/);
    assert.match(oddjob(['db', 'frobnicate', 'x']).stderr, /unknown command "frobnicate"/);
  });
});
