// The audit log against real SQLite files: chain, tamper detection, queries, paging, read-only, query plans.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import type { AuditEvent, AuditEventInput, AuditQuery } from '../../protocol/api.js';
import { GENESIS_HASH, hashEvent, storedTextHashMatches } from '../../server/audit/chain.js';
import { type Database, SCHEMA_VERSION, encodeCursor, openDatabase } from '../../server/audit/db.js';
import { AuditLog } from '../../server/audit/store.js';
import { tempDatabases } from '../support/sqlite.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const dbs = tempDatabases('audit');

function freshFile(): string {
  return dbs.file();
}
function fresh(): { file: string; db: Database; log: AuditLog } {
  const file = freshFile();
  const db = openDatabase(file);
  dbs.track(db);
  return { file, db, log: new AuditLog(db) };
}
/** A second, independent connection: what someone with access to the file could do. */
function intruder(file: string): Database {
  const db = new BetterSqlite3(file);
  dbs.track(db);
  return db;
}

const T0 = Date.parse('2025-03-01T10:00:00.000Z');
function input(i: number, over: Partial<AuditEventInput> = {}): AuditEventInput {
  return {
    type: 'run.requested',
    actor: { login: 'alice', teams: ['payments'] },
    client: { kind: 'cli', address: '10.0.0.1', agent: 'oddjob/0.1.0' },
    runId: `run${String(i).padStart(9, '0')}`,
    namespace: 'payments',
    deployment: 'api',
    container: 'app',
    image: 'registry/api@sha256:abc',
    command: ['node', 'scripts/backfill.js', String(i)],
    reason: `INC-${i}`,
    ...over,
  };
}
function appendN(log: AuditLog, count: number, start = 1): AuditEvent[] {
  const out: AuditEvent[] = [];
  for (let i = start; i < start + count; i++) out.push(log.append(input(i), new Date(T0 + i * 1000)));
  return out;
}

describe('openDatabase', () => {
  test('creates the schema with WAL, foreign keys and a busy timeout, and reopens idempotently', () => {
    const file = freshFile();
    const db = openDatabase(file);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    new AuditLog(db).append(input(1));
    db.close();
    const again = openDatabase(file);
    assert.equal(new AuditLog(again).verify().checked, 1);
    again.close();
  });

  test('refuses :memory:, a missing directory, a non-database file and a newer schema, naming the path', () => {
    assert.throws(() => openDatabase(':memory:'), /must be a file path/);
    const missing = path.join(dbs.dir, 'no-such-dbs.dir', 'x.db');
    assert.throws(
      () => openDatabase(missing),
      (e: Error) => e.message.includes(missing) && /does not exist/.test(e.message),
    );
    const garbage = path.join(dbs.dir, 'garbage.db');
    fs.writeFileSync(garbage, 'this is not a database\n'.repeat(200));
    assert.throws(
      () => openDatabase(garbage),
      (e: Error) => e.message.includes(garbage) && /not an oddjob SQLite database/.test(e.message),
    );
    assert.throws(() => openDatabase(dbs.dir), /that is a directory/);
    const newer = freshFile();
    openDatabase(newer).pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    assert.throws(() => openDatabase(newer), /newer oddjob — upgrade oddjob/);
  });

  test('a file the process may not write is refused at open with the path and what to do (real file permissions)', (t) => {
    // Root bypasses file modes, so when running as root the open happens in a child
    // process running as nobody (uid 65534) — the OS, not a flag, makes the file unwritable.
    const sub = fs.mkdtempSync(path.join(dbs.dir, 'ro-'));
    const file = path.join(sub, 'audit.db');
    openDatabase(file).close();
    fs.chmodSync(file, 0o444);
    fs.chmodSync(sub, 0o555);
    t.after(() => fs.chmodSync(sub, 0o755));
    const script = `
      import { openDatabase } from ${JSON.stringify(path.join(root, 'server/audit/db.ts'))};
      try { openDatabase(${JSON.stringify(file)}); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ opened: false, message: e.message })); }`;
    if (process.getuid?.() !== 0) {
      assert.throws(
        () => openDatabase(file),
        (e: Error) => e.message.includes(file) && /writable/.test(e.message),
      );
      return;
    }
    fs.chmodSync(dbs.dir, 0o755); // mkdtemp made it 0700; nobody must be able to reach the file
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: root,
      uid: 65534,
      gid: 65534,
      encoding: 'utf8',
      env: { ...process.env, HOME: '/tmp' },
    });
    // Not a skip: if the unprivileged child cannot run, this proof did not happen.
    assert.ok(!r.error && r.status === 0, `could not run the check as uid 65534: ${r.error?.message ?? r.stderr}`);
    const out = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { opened: boolean; message?: string };
    assert.equal(out.opened, false);
    assert.ok(out.message?.includes(file), out.message);
    assert.match(out.message!, /writable by uid 65534/);
  });
});

describe('AuditLog append and verify', () => {
  test('a chain of appends links each event to the previous one and verifies', () => {
    const { log } = fresh();
    assert.deepEqual(log.verify(), { ok: true, checked: 0 });
    const events = appendN(log, 25);
    events.forEach((e, i) => {
      assert.equal(e.seq, i + 1);
      assert.equal(e.prevHash, i === 0 ? GENESIS_HASH : events[i - 1]!.hash);
      assert.match(e.hash, /^[0-9a-f]{64}$/);
      assert.equal(e.time, new Date(T0 + (i + 1) * 1000).toISOString());
    });
    assert.deepEqual(log.verify(), { ok: true, checked: 25 });
    // What append returns is exactly what is read back.
    assert.deepEqual([...log.iterate()], events);
  });

  test('appendDurable: appends in one turn share one transaction, in call order, and chain like append()', async () => {
    const { db, log } = fresh();
    appendN(log, 2);
    const events = await Promise.all([3, 4, 5, 6, 7].map((i) => log.appendDurable(input(i), new Date(T0 + i * 1000))));
    assert.deepEqual(
      events.map((e) => e.seq),
      [3, 4, 5, 6, 7],
    );
    assert.deepEqual(
      events.map((e) => e.reason),
      ['INC-3', 'INC-4', 'INC-5', 'INC-6', 'INC-7'],
    );
    assert.deepEqual(log.verify(), { ok: true, checked: 7 });
    // One transaction: when the third insert of a batch fails, none of the five is stored.
    db.exec(`CREATE TEMP TRIGGER fail_one BEFORE INSERT ON audit_events WHEN NEW.json LIKE '%"INC-10"%' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END`);
    const results = await Promise.allSettled([8, 9, 10, 11, 12].map((i) => log.appendDurable(input(i))));
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
    );
    assert.deepEqual(log.verify(), { ok: true, checked: 7 });
    db.exec('DROP TRIGGER fail_one');
    // A later turn is a new batch and continues the chain.
    assert.equal((await log.appendDurable(input(13))).seq, 8);
    assert.deepEqual(log.verify(), { ok: true, checked: 8 });
  });

  test('append() after appendDurable() in the same turn keeps call order; flushPending writes what waits', async () => {
    const { log } = fresh();
    const queued = log.appendDurable(input(1));
    const direct = log.append(input(2));
    assert.equal(direct.seq, 2, 'the queued event was written first');
    assert.equal((await queued).seq, 1);
    const later = log.appendDurable(input(3));
    log.flushPending();
    assert.equal(log.query({ limit: 10 }).items.length, 3, 'written before the turn ends');
    assert.equal((await later).seq, 3);
    assert.deepEqual(log.verify(), { ok: true, checked: 3 });
  });

  test('appendDurable: invalid input is rejected alone; a batch that cannot be written rejects every event in it', async () => {
    const { file, log } = fresh();
    await assert.rejects(log.appendDurable({ ...input(1), type: 'nope' } as unknown as AuditEventInput));
    appendN(log, 1);
    const ro = openDatabase(file, { readonly: true });
    dbs.track(ro);
    const readOnly = new AuditLog(ro);
    const results = await Promise.allSettled([readOnly.appendDurable(input(2)), readOnly.appendDurable(input(3))]);
    assert.deepEqual(
      results.map((r) => r.status),
      ['rejected', 'rejected'],
    );
    assert.deepEqual(log.verify(), { ok: true, checked: 1 });
  });

  test('invalid input is refused and leaves no record', () => {
    const { log } = fresh();
    assert.throws(() => log.append({ ...input(1), type: 'run.exploded' } as unknown as AuditEventInput));
    assert.throws(() => log.append({ ...input(1), actor: { login: 'x' } } as unknown as AuditEventInput));
    assert.equal(log.query({ limit: 100 }).items.length, 0);
    assert.deepEqual(log.verify(), { ok: true, checked: 0 });
  });

  test('undefined members and unknown keys do not reach the hash', () => {
    const { log } = fresh();
    const e = log.append({ ...input(1), reason: undefined, extra: 'dropped' } as AuditEventInput);
    assert.equal('reason' in e, false);
    assert.equal('extra' in e, false);
    assert.equal(log.verify().ok, true);
  });

  test('time never goes backwards along seq, even when the clock does', () => {
    const { log } = fresh();
    const a = log.append(input(1), new Date(T0 + 60_000));
    const b = log.append(input(2), new Date(T0));
    assert.equal(b.time, a.time);
    assert.equal(log.verify().ok, true);
  });

  test('UPDATE and DELETE of audit rows are blocked by triggers, and the head cannot be moved back or deleted', () => {
    const { file, log } = fresh();
    appendN(log, 3);
    const other = intruder(file);
    assert.throws(() => other.prepare("UPDATE audit_events SET json = '{}' WHERE seq = 2").run(), /append-only: UPDATE/);
    assert.throws(() => other.prepare('DELETE FROM audit_events WHERE seq = 3').run(), /append-only: DELETE/);
    assert.throws(() => other.prepare('DELETE FROM audit_events').run(), /append-only: DELETE/);
    assert.throws(() => other.prepare('UPDATE audit_head SET seq = 2').run(), /only moves forward/);
    assert.throws(() => other.prepare('DELETE FROM audit_head').run(), /cannot be deleted/);
    assert.deepEqual(log.verify(), { ok: true, checked: 3 });
  });

  test('an event edited with the triggers dropped is detected at its seq', () => {
    const { file, log } = fresh();
    appendN(log, 6);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_update');
    const r = other.prepare(`UPDATE audit_events SET json = replace(json, '"INC-4"', '"INC-9999"') WHERE seq = 4`).run();
    assert.equal(r.changes, 1);
    const v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 4);
    assert.equal(v.checked, 3);
  });

  test('an indexed column edited alone (hiding an event from filters) is detected at its seq', () => {
    const { file, log } = fresh();
    appendN(log, 5);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_update');
    other.prepare("UPDATE audit_events SET login = 'mallory' WHERE seq = 2").run();
    assert.equal(log.query({ user: 'alice', limit: 100 }).items.length, 4);
    const v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 2);
    assert.match(v.problem!, /login column/);
  });

  test('a deleted middle event is detected at its seq', () => {
    const { file, log } = fresh();
    appendN(log, 5);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_delete');
    other.prepare('DELETE FROM audit_events WHERE seq = 3').run();
    const v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 3);
    assert.match(v.problem!, /missing/);
  });

  test('a deleted first event is detected', () => {
    const { file, log } = fresh();
    appendN(log, 3);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_delete');
    other.prepare('DELETE FROM audit_events WHERE seq = 1').run();
    assert.equal(log.verify().brokenAt, 1);
  });

  test('deleted newest events are detected through the head, and a later append does not hide it', () => {
    const { file, log } = fresh();
    appendN(log, 5);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_delete');
    other.prepare('DELETE FROM audit_events WHERE seq = 5').run();
    let v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 5);
    assert.match(v.problem!, /newest events were deleted/);

    other.prepare('DELETE FROM audit_events WHERE seq >= 4').run();
    assert.equal(log.verify().brokenAt, 4);

    // The next append chains from the head (seq 5), so the hole stays visible.
    const next = log.append(input(6), new Date(T0 + 6000));
    assert.equal(next.seq, 6);
    v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 4);
  });

  test('hash fields moved or duplicated into a nested object are detected (the fast text check falls back)', () => {
    for (const tamper of [
      // The top-level hash moved into actor: the cut text still hashes right, but the event lost its hash.
      (json: string, hash: string) => json.replace(`,"hash":"${hash}"`, '').replace('"login":"alice"', `"login":"alice","hash":"${hash}"`),
      // A nested copy in front of the real one: cutting the first occurrence leaves the real one in.
      (json: string, hash: string) => json.replace('"login":"alice"', `"login":"alice","hash":"${hash}"`),
    ]) {
      const { file, log } = fresh();
      const events = appendN(log, 4);
      const other = intruder(file);
      other.exec('DROP TRIGGER audit_events_no_update');
      const row = other.prepare('SELECT json FROM audit_events WHERE seq = 2').get() as { json: string };
      const forged = tamper(row.json, events[1]!.hash);
      assert.notEqual(forged, row.json);
      JSON.parse(forged); // still valid JSON
      other.prepare('UPDATE audit_events SET json = ? WHERE seq = 2').run(forged);
      const v = log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 2);
    }
  });

  test('the fast text check accepts exactly the stored text and nothing edited', () => {
    const { db, log } = fresh();
    const [e] = appendN(log, 1);
    const json = (db.prepare('SELECT json FROM audit_events WHERE seq = 1').get() as { json: string }).json;
    assert.equal(storedTextHashMatches(json, e!), true);
    assert.equal(storedTextHashMatches(json.replace('INC-1', 'INC-2'), e!), false);
    assert.equal(storedTextHashMatches(json.replace(`,"hash":"${e!.hash}"`, ''), e!), false);
    assert.equal(storedTextHashMatches(json, { ...e!, hash: GENESIS_HASH }), false);
  });

  test('an event inserted behind the store’s back is detected, even with a correct hash', () => {
    const { file, log } = fresh();
    const events = appendN(log, 3);
    const last = events.at(-1)!;
    const body = { ...input(4), seq: 4, time: new Date(T0 + 4000).toISOString() };
    const hash = hashEvent(last.hash, body);
    const forged = { ...body, prevHash: last.hash, hash };
    intruder(file)
      .prepare(
        `INSERT INTO audit_events (seq, time, type, login, namespace, deployment, status, run_id, json)
         VALUES (4, ?, 'run.requested', 'alice', 'payments', 'api', NULL, ?, ?)`,
      )
      .run(body.time, body.runId!, JSON.stringify(forged));
    const v = log.verify();
    assert.equal(v.ok, false);
    assert.equal(v.brokenAt, 4);
  });

  test('a consistent rewrite of the tail AND the head is not detectable from the file alone (why exports exist)', () => {
    const { file, log } = fresh();
    const events = appendN(log, 3);
    const exported = events.map((e) => e.hash);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_head_forward_only;');
    const body = { ...input(3), reason: 'innocent', seq: 3, time: events[2]!.time };
    const hash = hashEvent(events[1]!.hash, body);
    other.prepare('UPDATE audit_events SET json = ? WHERE seq = 3').run(JSON.stringify({ ...body, prevHash: events[1]!.hash, hash }));
    other.prepare('UPDATE audit_head SET hash = ? WHERE id = 1').run(hash);
    assert.equal(log.verify().ok, true);
    // ...but a copy exported earlier disagrees at seq 3.
    assert.notEqual([...log.iterate()][2]!.hash, exported[2]);
  });

  test('append refuses to continue a log whose head record was removed', () => {
    const { file, log } = fresh();
    appendN(log, 2);
    const other = intruder(file);
    other.exec('DROP TRIGGER audit_head_no_delete; DELETE FROM audit_head;');
    assert.throws(() => log.append(input(3)), /head record is missing/);
    assert.equal(log.verify().ok, false);
  });

  test('append on a store opened read-only throws, and nothing is recorded (SQLite read-only connection)', () => {
    // Honest unwritability in-process: SQLite itself refuses the write on a connection
    // opened with SQLITE_OPEN_READONLY (better-sqlite3 { readonly: true }); chmod would
    // not stop root. The real-permissions case is the openDatabase test above.
    const file = freshFile();
    const rw = openDatabase(file);
    appendN(new AuditLog(rw), 2);
    rw.close();
    const ro = openDatabase(file, { readonly: true });
    dbs.track(ro);
    const log = new AuditLog(ro);
    assert.throws(() => log.append(input(3)), /readonly/);
    assert.deepEqual(log.verify(), { ok: true, checked: 2 });
    assert.equal(log.query({ limit: 10 }).items.length, 2);
  });
});

describe('AuditLog queries', () => {
  // 240 events over 4 logins (two spellings of alice), 3 deployments, 2 namespaces, all types.
  const logins = ['alice', 'Alice', 'bob', 'carol'];
  const deployments = ['api', 'worker', 'cron'];
  const namespaces = ['payments', 'search'];
  const types = ['run.requested', 'run.created', 'run.started', 'run.finished', 'run.denied', 'login'] as const;
  const statuses = ['succeeded', 'failed', 'deadline'] as const;
  let log: AuditLog;
  let all: AuditEvent[];

  before(() => {
    const f = fresh();
    log = f.log;
    const txn = f.db.transaction(() => {
      const out: AuditEvent[] = [];
      for (let i = 1; i <= 240; i++) {
        const type = types[i % types.length]!;
        out.push(
          log.append(
            input(i % 40, {
              type,
              actor: { login: logins[i % logins.length]!, teams: [] },
              namespace: namespaces[i % 2],
              deployment: deployments[i % 3],
              status: type === 'run.finished' ? statuses[i % 3] : undefined,
            }),
            new Date(T0 + i * 60_000),
          ),
        );
      }
      return out;
    });
    all = txn();
  });

  function pages(q: Partial<AuditQuery>, limit: number): AuditEvent[] {
    const seen: AuditEvent[] = [];
    let cursor: string | undefined;
    for (let guard = 0; guard < 1000; guard++) {
      const page = log.query({ ...q, limit, ...(cursor ? { cursor } : {}) });
      assert.ok(page.items.length <= limit);
      seen.push(...page.items);
      if (!page.nextCursor) return seen;
      assert.equal(page.items.length, limit, 'only the last page may be short');
      cursor = page.nextCursor;
    }
    throw new Error('paging did not end');
  }
  const iso = (minutes: number) => new Date(T0 + minutes * 60_000).toISOString();

  const cases: [string, Partial<AuditQuery>, (e: AuditEvent) => boolean][] = [
    ['everything', {}, () => true],
    ['user, case-insensitive', { user: 'ALICE' }, (e) => e.actor.login.toLowerCase() === 'alice'],
    ['deployment', { deployment: 'worker' }, (e) => e.deployment === 'worker'],
    ['namespace + deployment', { namespace: 'search', deployment: 'api' }, (e) => e.namespace === 'search' && e.deployment === 'api'],
    ['type', { type: 'run.denied' }, (e) => e.type === 'run.denied'],
    ['status', { status: 'failed' }, (e) => e.status === 'failed'],
    ['runId', { runId: input(7).runId }, (e) => e.runId === input(7).runId],
    ['since inclusive, until exclusive', { since: iso(50), until: iso(90) }, (e) => e.seq >= 50 && e.seq < 90],
    ['user + time range', { user: 'bob', since: iso(100), until: iso(200) }, (e) => e.actor.login === 'bob' && e.seq >= 100 && e.seq < 200],
    // 10:50+01:00 is 09:50Z, before every event. Minute 150 (12:30:00.000) is 0.1 ms before
    // the until bound, so it is in: the bound must round up to the millisecond, not down.
    ['offsets and sub-millisecond bounds', { since: '2025-03-01T10:50:00+01:00', until: '2025-03-01T12:30:00.0001Z' }, (e) => e.seq <= 150],
    ['since after the newest event', { since: iso(10_000) }, () => false],
    ['until before the oldest event', { until: iso(0) }, () => false],
    ['no match', { user: 'nobody' }, () => false],
  ];
  for (const [name, q, match] of cases) {
    test(`filter: ${name} — pages have no duplicates or gaps`, () => {
      const want = all.filter(match).reverse();
      for (const limit of [1, 7, 1000]) {
        const got = pages(q, limit);
        assert.deepEqual(
          got.map((e) => e.seq),
          want.map((e) => e.seq),
          `limit ${limit}`,
        );
      }
      assert.deepEqual(
        [...log.iterate(q)].map((e) => e.seq),
        want.map((e) => e.seq).reverse(),
      );
    });
  }

  test('a page of exactly the remaining items has no next cursor', () => {
    const page = log.query({ limit: 240 });
    assert.equal(page.items.length, 240);
    assert.equal(page.nextCursor, undefined);
  });

  test('garbage cursors are rejected as invalid', () => {
    const bad = [
      'not a cursor!',
      Buffer.from('hello').toString('base64url'),
      Buffer.from('a:0').toString('base64url'),
      Buffer.from('a:-3').toString('base64url'),
      Buffer.from('a:99999999999999999').toString('base64url'),
      encodeCursor('r', 5), // a runs cursor
    ];
    for (const cursor of bad) assert.throws(() => log.query({ limit: 10, cursor }), /invalid cursor/, cursor);
  });

  test('iterate crosses batch boundaries and does not block appends while a reader is paused', () => {
    const { db, log: big } = fresh();
    db.transaction(() => appendN(big, 2345))();
    const it = big.iterate();
    const first = it.next();
    assert.equal(first.done, false);
    // A paused export must not make append throw (that would refuse runs).
    const appended = big.append(input(9999), new Date(T0 + 9_999_000));
    const rest = [...it];
    assert.equal(rest.length, 2345);
    assert.equal(rest.at(-1)!.seq, appended.seq);
    const t = performance.now();
    assert.deepEqual(big.verify(), { ok: true, checked: 2346 });
    console.log(`verify: 2346 events in ${(performance.now() - t).toFixed(0)} ms`);
  });
});

describe('AuditLog at 1M rows', () => {
  test('the common queries use an index (EXPLAIN QUERY PLAN) and stay fast', () => {
    const file = freshFile();
    const db = openDatabase(file);
    dbs.track(db);
    // Record the SQL the log prepares, to ask SQLite how it runs exactly those statements.
    const prepared: string[] = [];
    const spy = new Proxy(db, {
      get(target, prop) {
        if (prop === 'prepare') return (sql: string) => (prepared.push(sql), target.prepare(sql));
        const v = Reflect.get(target, prop, target) as unknown;
        return typeof v === 'function' ? v.bind(target) : v;
      },
    });
    const log = new AuditLog(spy);

    // 1M synthetic rows straight into the table (no hashing: the chain is irrelevant here),
    // then real appends on top so the head exists.
    const rows = 1_000_000;
    let t = performance.now();
    db.exec(`
      WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < ${rows})
      INSERT INTO audit_events (seq, time, type, login, namespace, deployment, status, run_id, json)
      SELECT i,
             strftime('%Y-%m-%dT%H:%M:%fZ', '2024-01-01', '+' || (i * 30) || ' seconds'),
             CASE i % 5 WHEN 0 THEN 'run.requested' WHEN 1 THEN 'run.created' WHEN 2 THEN 'run.started'
                        WHEN 3 THEN 'run.finished' ELSE 'login' END,
             'user' || (i % 500),
             CASE WHEN i % 5 = 4 THEN NULL ELSE 'ns' || (i % 20) END,
             CASE WHEN i % 5 = 4 THEN NULL ELSE 'deploy' || (i % 300) END,
             CASE WHEN i % 5 = 3 THEN (CASE WHEN i % 7 = 0 THEN 'failed' ELSE 'succeeded' END) END,
             CASE WHEN i % 5 = 4 THEN NULL ELSE printf('r%011d', i / 5) END,
             json_object('seq', i)
      FROM s;
      INSERT INTO audit_head (id, seq, hash, time)
      SELECT 1, seq, 'x', time FROM audit_events ORDER BY seq DESC LIMIT 1;`);
    console.log(`inserted ${rows} synthetic audit rows in ${Math.round(performance.now() - t)} ms`);

    const queries: [string, AuditQuery, RegExp][] = [
      [
        'user + time range',
        { user: 'USER42', since: '2024-03-01T00:00:00Z', until: '2024-03-08T00:00:00Z', limit: 100 },
        /USING INDEX audit_events_login \(login=\? AND rowid>\? AND rowid<\?\)/,
      ],
      ['deployment', { deployment: 'deploy7', limit: 100 }, /USING INDEX audit_events_deployment \(deployment=\?/],
      ['status', { status: 'failed', limit: 100 }, /USING INDEX audit_events_status \(status=\?/],
      ['namespace + status', { namespace: 'ns3', status: 'failed', limit: 100 }, /USING INDEX audit_events_namespace_status \(namespace=\? AND status=\?/],
      [
        'deployment + status',
        { deployment: 'deploy3', status: 'failed', limit: 100 },
        /USING INDEX audit_events_deployment_status \(deployment=\? AND status=\?/,
      ],
      ['user + status', { user: 'user43', status: 'failed', limit: 100 }, /USING INDEX audit_events_login_status \(login=\? AND status=\?/],
      ['user + deployment', { user: 'user42', deployment: 'deploy42', limit: 100 }, /USING INDEX audit_events_login_deployment \(login=\? AND deployment=\?/],
      // The user's events, not the whole namespace's, are walked.
      ['namespace + user', { namespace: 'ns2', user: 'user42', limit: 100 }, /USING INDEX audit_events_login \(login=\?/],
      ['runId', { runId: 'r00000012345', limit: 100 }, /USING INDEX audit_events_run_id \(run_id=\?/],
      ['type', { type: 'login', limit: 100 }, /USING INDEX audit_events_type \(type=\?/],
      ['time range only', { since: '2024-06-01T00:00:00Z', until: '2024-06-02T00:00:00Z', limit: 100 }, /USING INTEGER PRIMARY KEY \(rowid>\? AND rowid<\?\)/],
    ];
    for (const [name, q, expected] of queries) {
      prepared.length = 0;
      t = performance.now();
      const first = log.query(q);
      const second = first.nextCursor ? log.query({ ...q, cursor: first.nextCursor }) : { items: [] };
      const ms = performance.now() - t;
      // Both the first page and the cursor page (which adds "seq < @before").
      const selects = prepared.filter((s) => s.startsWith('SELECT seq, json FROM audit_events'));
      assert.equal(selects.length, first.nextCursor ? 2 : 1, `queries prepared for ${name}`);
      console.log(`${name}: ${first.items.length}+${second.items.length} rows in ${ms.toFixed(1)} ms`);
      for (const sql of selects) {
        const params = Object.fromEntries([...sql.matchAll(/@(\w+)/g)].map((m) => [m[1], 1]));
        const plan = db.prepare(`EXPLAIN QUERY PLAN ${sql}`).all(params) as { detail: string }[];
        const detail = plan.map((p) => p.detail).join(' | ');
        console.log(`  ${detail}`);
        assert.match(detail, expected, name);
        assert.doesNotMatch(detail, /TEMP B-TREE|SCAN audit_events/, name);
      }
      assert.ok(first.items.length > 0, `${name} found nothing`);
    }
  });
});
