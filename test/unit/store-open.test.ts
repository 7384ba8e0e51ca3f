// Opening the store: --db targets (file or postgres:// URL, where the password comes
// from), clear refusals that never echo a password, a SQLite file written before the
// store moved to kysely brought forward without loss, and migrations on both engines.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, test } from 'node:test';
import { sql } from 'kysely';
import { CredentialStore } from '../../server/auth/credentials.js';
import { openConnection } from '../../server/store/database.js';
import { openStore } from '../../server/store/index.js';
import { MIGRATION_NAMES, SCHEMA_VERSION } from '../../server/store/migrations.js';
import { DbTargetError, describeTarget, parseDbTarget } from '../../server/store/target.js';
import { intruder } from '../support/intruder.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('store-open');
const FIXTURE = path.join(import.meta.dirname, '../fixtures/store-v4.db');
/** The token minted into the fixture by the pre-kysely code (hashed there, like any credential). */
const FIXTURE_TOKEN = 'odjt_GwFfHeHceAZxMN_LOMsXZkwZwxVhZ1tGeJliN-_jj2Q';

describe('--db targets', () => {
  const cases: [string, string, { passwordFile?: string; env?: NodeJS.ProcessEnv }, ReturnType<typeof parseDbTarget> | RegExp][] = [
    ['a file path is SQLite', './oddjob.db', {}, { engine: 'sqlite', path: './oddjob.db' }],
    ['an absolute path', '/var/lib/oddjob/oddjob.db', {}, { engine: 'sqlite', path: '/var/lib/oddjob/oddjob.db' }],
    [
      'a postgres:// URL with its password',
      'postgres://oddjob:s3cr%40t@db:5432/oddjob',
      {},
      { engine: 'postgres', url: 'postgres://oddjob@db:5432/oddjob', password: 's3cr@t' },
    ],
    [
      'postgresql:// and PGPASSWORD',
      'postgresql://oddjob@db/oddjob?sslmode=require',
      { env: { PGPASSWORD: 'from-env' } },
      { engine: 'postgres', url: 'postgresql://oddjob@db/oddjob?sslmode=require', password: 'from-env' },
    ],
    [
      'no password anywhere (pg_hba trust, or a .pgpass)',
      'postgres://oddjob@db/oddjob',
      {},
      { engine: 'postgres', url: 'postgres://oddjob@db/oddjob', password: undefined },
    ],
    ['another scheme', 'mysql://root:hunter2@db/x', {}, /neither a file path nor a postgres/],
    ['no database', 'postgres://oddjob:hunter2@db:5432/', {}, /names no database/],
    ['no host', 'postgres:///oddjob', {}, /names no host/],
    ['a password file for a SQLite file', './oddjob.db', { passwordFile: '/x' }, /only applies to a postgres/],
    ['a password in the URL and a file', 'postgres://u:hunter2@db/x', { passwordFile: '/x' }, /give one of them/],
    ['a password file that is not there', 'postgres://u@db/x', { passwordFile: '/nonexistent/pw' }, /cannot read \/nonexistent\/pw: no such file/],
  ];
  for (const [name, value, opts, want] of cases) {
    test(name, () => {
      if (want instanceof RegExp) {
        assert.throws(
          () => parseDbTarget(value, opts),
          (e: Error) => e instanceof DbTargetError && want.test(e.message) && !e.message.includes('hunter2'),
        );
      } else {
        assert.deepEqual(parseDbTarget(value, opts), want);
      }
    });
  }

  test('a password file wins over PGPASSWORD; a trailing newline is not part of it; nothing shown has it', () => {
    const file = path.join(stores.dir, 'pw');
    fs.writeFileSync(file, 'from-file\n');
    const t = parseDbTarget('postgres://oddjob@db/oddjob', { passwordFile: file, env: { PGPASSWORD: 'from-env' } });
    assert.equal(t.engine === 'postgres' && t.password, 'from-file');
    assert.equal(describeTarget(t), 'postgres://oddjob@db/oddjob');
  });
});

describe('PostgreSQL connection failures say what to fix, without the password', () => {
  test('unreachable server', async () => {
    const port = await new Promise<number>((r) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const p = (s.address() as net.AddressInfo).port;
        s.close(() => r(p));
      });
    });
    await assert.rejects(
      openConnection({ engine: 'postgres', url: `postgres://oddjob@127.0.0.1:${port}/oddjob`, password: 'hunter2' }),
      (e: Error) =>
        /cannot reach the PostgreSQL server \(ECONNREFUSED\)/.test(e.message) && e.message.includes(`127.0.0.1:${port}`) && !e.message.includes('hunter2'),
    );
  });

  test('wrong password, no password, missing database', async () => {
    const pg = await stores.postgres();
    await assert.rejects(
      openConnection({ engine: 'postgres', url: pg.url('postgres', { password: false }), password: 'hunter2-wrong' }),
      (e: Error) => /refused the password for user oddjob/.test(e.message) && !e.message.includes('hunter2'),
    );
    await assert.rejects(openConnection({ engine: 'postgres', url: pg.url('postgres', { password: false }) }), /asks for a password and none was given/);
    await assert.rejects(
      openConnection({ engine: 'postgres', url: pg.url('no_such_db', { password: false }), password: pg.password }),
      (e: Error) => /database no_such_db does not exist/.test(e.message) && !e.message.includes(pg.password),
    );
  });
});

describe('a SQLite file written by the pre-kysely store (user_version 4)', () => {
  test('is brought forward without loss: chain, runs, output and credentials, then appends continue the chain', async () => {
    const file = path.join(stores.dir, 'legacy.db');
    fs.copyFileSync(FIXTURE, file);
    const store = await stores.reopen({ engine: 'sqlite', path: file });
    assert.deepEqual(await store.audit.verify(), { ok: true, checked: 60 });
    const runs = await store.runs.list({ limit: 100 });
    assert.equal(runs.items.length, 30);
    assert.deepEqual(
      (await store.runs.listActive()).map((r) => r.id),
      ['legacy000030'],
    );
    let text = '';
    for await (const c of store.output.read('legacy000007', 0)) text += c.data.toString();
    assert.equal(text, 'hello from run 7\nwarning 7\n');
    assert.deepEqual(await store.output.perChannel('legacy000007'), { 1: 17, 2: 10 });
    const creds = new CredentialStore(store.credentials, 's'.repeat(40), () => 1_750_000_000_000);
    const cred = await creds.lookup(FIXTURE_TOKEN, 'token');
    assert.equal(cred?.identity.login, 'Alice');
    assert.equal(await creds.githubToken(cred.id), 'gho_legacy', 'the sealed GitHub token still opens');
    assert.equal((await store.audit.query({ user: 'alice', limit: 100 })).items.length, 15, 'case-insensitive login, as before');

    const next = await store.audit.append({ type: 'login', actor: { login: 'carol', teams: [] }, client: { kind: 'cli' } });
    assert.equal(next.seq, 61);
    assert.deepEqual(await store.audit.verify(), { ok: true, checked: 61 });
    const recorded = await sql<{ name: string }>`select name from oddjob_migrations order by name`.execute(store.connection.db);
    assert.deepEqual(
      recorded.rows.map((r) => r.name),
      MIGRATION_NAMES.slice(0, SCHEMA_VERSION),
    );
    assert.equal(store.connection.sqlite!.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    await store.close();
    // Opening again runs nothing more.
    const again = await stores.reopen({ engine: 'sqlite', path: file });
    assert.deepEqual(await again.audit.verify(), { ok: true, checked: 61 });
  });
});

describe('a SQLite file migrated by the build before Tasks and schedules (through 0031-run-output-gaps)', () => {
  // 0010-approval-requests sorts before 0030/0031-*, which such a file has already run;
  // kysely's default migrator refuses that ('corrupted migrations').
  test('migrates forward and keeps its chain', async () => {
    const file = path.join(stores.dir, 'at-0031.db');
    fs.copyFileSync(path.join(import.meta.dirname, '../fixtures/store-0031.db'), file);
    const store = await stores.reopen({ engine: 'sqlite', path: file });
    assert.deepEqual(await store.audit.verify(), { ok: true, checked: 1 });
    const recorded = await sql<{ name: string }>`select name from oddjob_migrations order by name`.execute(store.connection.db);
    assert.deepEqual(
      recorded.rows.map((r) => r.name),
      [...MIGRATION_NAMES].sort(),
    );
  });
});

for (const engine of ENGINES) {
  describe(`migrations (${engine})`, () => {
    test('two servers opening the same empty database at once both get one schema', async () => {
      const target = await stores.target(engine);
      const [a, b] = await Promise.all([openStore(target), openStore(target)]);
      stores.track(a);
      stores.track(b);
      await Promise.all([
        a.audit.append({ type: 'login', actor: { login: 'a', teams: [] }, client: { kind: 'cli' } }),
        b.audit.append({ type: 'login', actor: { login: 'b', teams: [] }, client: { kind: 'cli' } }),
      ]);
      assert.deepEqual(await a.audit.verify(), { ok: true, checked: 2 });
    });

    test('the readiness probe passes on a writable store', async () => {
      const store = await stores.open(engine);
      await store.probe();
    });

    test('a database migrated by a newer oddjob is refused with what to do', async () => {
      const store = await stores.open(engine);
      const other = stores.track(await intruder(store.target));
      await other.run("INSERT INTO oddjob_migrations (name, timestamp) VALUES ('9999-from-the-future', '2030-01-01T00:00:00Z')");
      await assert.rejects(openStore(store.target), /written by a newer oddjob — upgrade oddjob/);
    });
  });
}
