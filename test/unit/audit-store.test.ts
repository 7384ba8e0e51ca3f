// The audit log on both engines (a real SQLite file, a real PostgreSQL server): chain,
// tamper detection, queries, paging, read-only; SQLite's open errors and query plans.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { AuditEvent, AuditEventInput, AuditQuery } from '../../protocol/api.js';
import { GENESIS_HASH, hashEvent, storedTextHashMatches } from '../../server/audit/chain.js';
import { AuditLog } from '../../server/store/audit.js';
import { encodeCursor } from '../../server/store/cursor.js';
import { openConnection } from '../../server/store/database.js';
import { SCHEMA_VERSION } from '../../server/store/migrations.js';
import type { DbTarget } from '../../server/store/target.js';
import { intruder } from '../support/intruder.js';
import { ENGINES, testStores } from '../support/stores.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const stores = testStores('audit');

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
/** count appends in one group commit, in order, one second apart. */
function appendN(log: AuditLog, count: number, start = 1): Promise<AuditEvent[]> {
  const out: Promise<AuditEvent>[] = [];
  for (let i = start; i < start + count; i++) out.push(log.append(input(i), new Date(T0 + i * 1000)));
  return Promise.all(out);
}
async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

async function fresh(engine: (typeof ENGINES)[number]): Promise<{ target: DbTarget; log: AuditLog }> {
  const store = await stores.open(engine);
  return { target: store.target, log: store.audit };
}
async function tamper(target: DbTarget) {
  return stores.track(await intruder(target));
}

describe('SQLite store: opening a file', () => {
  test('creates the schema with WAL, foreign keys and a busy timeout, and reopens idempotently', async () => {
    const target = await stores.target('sqlite');
    const conn = await openConnection(target);
    const db = conn.sqlite!;
    assert.equal(db.pragma('journal_mode', { simple: true }), 'wal');
    assert.equal(db.pragma('foreign_keys', { simple: true }), 1);
    assert.equal(db.pragma('busy_timeout', { simple: true }), 5000);
    assert.equal(db.pragma('user_version', { simple: true }), SCHEMA_VERSION);
    await new AuditLog(conn).append(input(1));
    await conn.close();
    const again = await stores.connect(target);
    assert.equal((await new AuditLog(again).verify()).checked, 1);
  });

  test('refuses :memory:, a missing directory, a non-database file and a newer schema, naming the path', async () => {
    const open = (p: string) => openConnection({ engine: 'sqlite', path: p });
    await assert.rejects(open(':memory:'), /must be a file path/);
    const missing = path.join(stores.dir, 'no-such-dir', 'x.db');
    await assert.rejects(open(missing), (e: Error) => e.message.includes(missing) && /does not exist/.test(e.message));
    const garbage = path.join(stores.dir, 'garbage.db');
    fs.writeFileSync(garbage, 'this is not a database\n'.repeat(200));
    await assert.rejects(open(garbage), (e: Error) => e.message.includes(garbage) && /not an oddjob SQLite database/.test(e.message));
    await assert.rejects(open(stores.dir), /that is a directory/);
    const newer = await stores.target('sqlite');
    const c = await openConnection(newer);
    c.sqlite!.pragma(`user_version = ${SCHEMA_VERSION + 1}`);
    await c.close();
    await assert.rejects(openConnection(newer), /newer oddjob — upgrade oddjob/);
  });

  test('a file the process may not write is refused at open with the path and what to do (real file permissions)', async (t) => {
    // Root bypasses file modes, so when running as root the open happens in a child
    // process running as nobody (uid 65534) — the OS, not a flag, makes the file unwritable.
    const sub = fs.mkdtempSync(path.join(stores.dir, 'ro-'));
    const file = path.join(sub, 'audit.db');
    await (await openConnection({ engine: 'sqlite', path: file })).close();
    fs.chmodSync(file, 0o444);
    fs.chmodSync(sub, 0o555);
    t.after(() => fs.chmodSync(sub, 0o755));
    const script = `
      import { openConnection } from ${JSON.stringify(path.join(root, 'server/store/database.ts'))};
      try { await openConnection({ engine: 'sqlite', path: ${JSON.stringify(file)} }); console.log(JSON.stringify({ opened: true })); }
      catch (e) { console.log(JSON.stringify({ opened: false, message: e.message })); }`;
    if (process.getuid?.() !== 0) {
      await assert.rejects(openConnection({ engine: 'sqlite', path: file }), (e: Error) => e.message.includes(file) && /writable/.test(e.message));
      return;
    }
    fs.chmodSync(stores.dir, 0o755); // mkdtemp made it 0700; nobody must be able to reach the file
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

for (const engine of ENGINES) {
  describe(`AuditLog append and verify (${engine})`, () => {
    test('a chain of appends links each event to the previous one and verifies', async () => {
      const { log } = await fresh(engine);
      assert.deepEqual(await log.verify(), { ok: true, checked: 0 });
      const events: AuditEvent[] = [];
      // One at a time (each its own commit) and then a group: both chain alike.
      for (let i = 1; i <= 5; i++) events.push(await log.append(input(i), new Date(T0 + i * 1000)));
      events.push(...(await appendN(log, 20, 6)));
      events.forEach((e, i) => {
        assert.equal(e.seq, i + 1);
        assert.equal(e.prevHash, i === 0 ? GENESIS_HASH : events[i - 1]!.hash);
        assert.match(e.hash, /^[0-9a-f]{64}$/);
        assert.equal(e.time, new Date(T0 + (i + 1) * 1000).toISOString());
      });
      assert.deepEqual(await log.verify(), { ok: true, checked: 25 });
      // What append returns is exactly what is read back.
      assert.deepEqual(await collect(log.iterate()), events);
    });

    test('group commit: appends in one turn share one transaction, in call order; a failed batch stores none of them', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 2);
      const events = await Promise.all([3, 4, 5, 6, 7].map((i) => log.append(input(i), new Date(T0 + i * 1000))));
      assert.deepEqual(
        events.map((e) => [e.seq, e.reason]),
        [3, 4, 5, 6, 7].map((i) => [i, `INC-${i}`]),
      );
      assert.deepEqual(await log.verify(), { ok: true, checked: 7 });
      // One transaction: when the third insert of a batch fails, none of the five is stored.
      const other = await tamper(target);
      if (engine === 'sqlite') {
        await other.run(`CREATE TRIGGER fail_one BEFORE INSERT ON audit_events WHEN NEW.json LIKE '%"INC-10"%' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END`);
      } else {
        await other.run(`CREATE FUNCTION fail_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN
          IF NEW.json LIKE '%"INC-10"%' THEN RAISE EXCEPTION 'disk trouble'; END IF; RETURN NEW; END $$`);
        await other.run('CREATE TRIGGER fail_one BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION fail_one()');
      }
      const results = await Promise.allSettled([8, 9, 10, 11, 12].map((i) => log.append(input(i))));
      assert.deepEqual(
        results.map((r) => r.status),
        ['rejected', 'rejected', 'rejected', 'rejected', 'rejected'],
      );
      assert.deepEqual(await log.verify(), { ok: true, checked: 7 });
      await other.run(engine === 'sqlite' ? 'DROP TRIGGER fail_one' : 'DROP TRIGGER fail_one ON audit_events');
      // A later turn is a new batch and continues the chain.
      assert.equal((await log.append(input(13))).seq, 8);
      assert.deepEqual(await log.verify(), { ok: true, checked: 8 });
    });

    test('flushPending waits for what is queued', async () => {
      const { log } = await fresh(engine);
      const queued = [log.append(input(1)), log.append(input(2))];
      await log.flushPending();
      assert.equal((await log.query({ limit: 10 })).items.length, 2, 'written before flushPending resolved');
      assert.deepEqual(
        (await Promise.all(queued)).map((e) => e.seq),
        [1, 2],
      );
    });

    test('invalid input is refused alone and leaves no record', async () => {
      const { log } = await fresh(engine);
      await assert.rejects(log.append({ ...input(1), type: 'run.exploded' } as unknown as AuditEventInput));
      await assert.rejects(log.append({ ...input(1), actor: { login: 'x' } } as unknown as AuditEventInput));
      assert.equal((await log.query({ limit: 100 })).items.length, 0);
      assert.deepEqual(await log.verify(), { ok: true, checked: 0 });
    });

    test('undefined members and unknown keys do not reach the hash', async () => {
      const { log } = await fresh(engine);
      const e = await log.append({ ...input(1), reason: undefined, extra: 'dropped' } as AuditEventInput);
      assert.equal('reason' in e, false);
      assert.equal('extra' in e, false);
      assert.equal((await log.verify()).ok, true);
    });

    test('time never goes backwards along seq, even when the clock does', async () => {
      const { log } = await fresh(engine);
      const a = await log.append(input(1), new Date(T0 + 60_000));
      const b = await log.append(input(2), new Date(T0));
      assert.equal(b.time, a.time);
      assert.equal((await log.verify()).ok, true);
    });

    test('UPDATE and DELETE of audit rows are refused by the database, and the head cannot be moved back or deleted', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 3);
      const other = await tamper(target);
      await assert.rejects(other.run("UPDATE audit_events SET json = '{}' WHERE seq = 2"), /append-only: UPDATE/);
      await assert.rejects(other.run('DELETE FROM audit_events WHERE seq = 3'), /append-only: DELETE/);
      await assert.rejects(other.run('DELETE FROM audit_events'), /append-only: DELETE/);
      if (engine === 'postgres') await assert.rejects(other.run('TRUNCATE audit_events'), /append-only: TRUNCATE/);
      await assert.rejects(other.run('UPDATE audit_head SET seq = 2'), /only moves forward/);
      await assert.rejects(other.run('DELETE FROM audit_head'), /cannot be deleted/);
      assert.deepEqual(await log.verify(), { ok: true, checked: 3 });
    });

    test('an event edited with the guard dropped is detected at its seq', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 6);
      const other = await tamper(target);
      await other.dropGuard('events-update');
      const r = await other.run(`UPDATE audit_events SET json = replace(json, '"INC-4"', '"INC-9999"') WHERE seq = 4`);
      assert.equal(r.changes, 1);
      const v = await log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 4);
      assert.equal(v.checked, 3);
    });

    test('an indexed column edited alone (hiding an event from filters) is detected at its seq', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 5);
      const other = await tamper(target);
      await other.dropGuard('events-update');
      await other.run("UPDATE audit_events SET login = 'mallory' WHERE seq = 2");
      assert.equal((await log.query({ user: 'alice', limit: 100 })).items.length, 4);
      const v = await log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 2);
      assert.match(v.problem!, /login column/);
    });

    test('a deleted middle or first event is detected at its seq', async () => {
      for (const seq of [3, 1]) {
        const { target, log } = await fresh(engine);
        await appendN(log, 5);
        const other = await tamper(target);
        await other.dropGuard('events-delete');
        await other.run('DELETE FROM audit_events WHERE seq = ?', seq);
        const v = await log.verify();
        assert.equal(v.ok, false);
        assert.equal(v.brokenAt, seq);
      }
    });

    test('deleted newest events are detected through the head, and a later append does not hide it', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 5);
      const other = await tamper(target);
      await other.dropGuard('events-delete');
      await other.run('DELETE FROM audit_events WHERE seq = 5');
      let v = await log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 5);
      assert.match(v.problem!, /newest events were deleted/);

      await other.run('DELETE FROM audit_events WHERE seq >= 4');
      assert.equal((await log.verify()).brokenAt, 4);

      // The next append chains from the head (seq 5), so the hole stays visible.
      const next = await log.append(input(6), new Date(T0 + 6000));
      assert.equal(next.seq, 6);
      v = await log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 4);
    });

    test('hash fields moved or duplicated into a nested object are detected (the fast text check falls back)', async () => {
      for (const forge of [
        // The top-level hash moved into actor: the cut text still hashes right, but the event lost its hash.
        (json: string, hash: string) => json.replace(`,"hash":"${hash}"`, '').replace('"login":"alice"', `"login":"alice","hash":"${hash}"`),
        // A nested copy in front of the real one: cutting the first occurrence leaves the real one in.
        (json: string, hash: string) => json.replace('"login":"alice"', `"login":"alice","hash":"${hash}"`),
      ]) {
        const { target, log } = await fresh(engine);
        const events = await appendN(log, 4);
        const other = await tamper(target);
        await other.dropGuard('events-update');
        const json = (await other.run('SELECT json FROM audit_events WHERE seq = 2')).rows[0]!.json as string;
        const forged = forge(json, events[1]!.hash);
        assert.notEqual(forged, json);
        JSON.parse(forged); // still valid JSON
        await other.run('UPDATE audit_events SET json = ? WHERE seq = 2', forged);
        const v = await log.verify();
        assert.equal(v.ok, false);
        assert.equal(v.brokenAt, 2);
      }
    });

    test('the fast text check accepts exactly the stored text and nothing edited', async () => {
      const { target, log } = await fresh(engine);
      const [e] = await appendN(log, 1);
      const json = (await (await tamper(target)).run('SELECT json FROM audit_events WHERE seq = 1')).rows[0]!.json as string;
      assert.equal(storedTextHashMatches(json, e!), true);
      assert.equal(storedTextHashMatches(json.replace('INC-1', 'INC-2'), e!), false);
      assert.equal(storedTextHashMatches(json.replace(`,"hash":"${e!.hash}"`, ''), e!), false);
      assert.equal(storedTextHashMatches(json, { ...e!, hash: GENESIS_HASH }), false);
    });

    test('an event inserted behind the store’s back is detected, even with a correct hash', async () => {
      const { target, log } = await fresh(engine);
      const events = await appendN(log, 3);
      const last = events.at(-1)!;
      const body = { ...input(4), seq: 4, time: new Date(T0 + 4000).toISOString() };
      const hash = hashEvent(last.hash, body);
      const forged = { ...body, prevHash: last.hash, hash };
      await (
        await tamper(target)
      ).run(
        `INSERT INTO audit_events (seq, time, type, login, namespace, deployment, status, run_id, json)
         VALUES (4, ?, 'run.requested', 'alice', 'payments', 'api', NULL, ?, ?)`,
        body.time,
        body.runId!,
        JSON.stringify(forged),
      );
      const v = await log.verify();
      assert.equal(v.ok, false);
      assert.equal(v.brokenAt, 4);
    });

    test('a consistent rewrite of the tail AND the head is not detectable from the database alone (why exports exist)', async () => {
      const { target, log } = await fresh(engine);
      const events = await appendN(log, 3);
      const exported = events.map((e) => e.hash);
      const other = await tamper(target);
      await other.dropGuard('events-update');
      await other.dropGuard('head-update');
      const body = { ...input(3), reason: 'innocent', seq: 3, time: events[2]!.time };
      const hash = hashEvent(events[1]!.hash, body);
      await other.run('UPDATE audit_events SET json = ? WHERE seq = 3', JSON.stringify({ ...body, prevHash: events[1]!.hash, hash }));
      await other.run('UPDATE audit_head SET hash = ? WHERE id = 1', hash);
      assert.equal((await log.verify()).ok, true);
      // ...but a copy exported earlier disagrees at seq 3.
      assert.notEqual((await collect(log.iterate()))[2]!.hash, exported[2]);
    });

    test('append refuses to continue a log whose head record was removed', async () => {
      const { target, log } = await fresh(engine);
      await appendN(log, 2);
      const other = await tamper(target);
      await other.dropGuard('head-delete');
      await other.run('DELETE FROM audit_head');
      await assert.rejects(log.append(input(3)), /head record is missing/);
      assert.equal((await log.verify()).ok, false);
    });

    test('append on a store opened read-only fails, and nothing is recorded', async () => {
      // Honest unwritability in-process: the database itself refuses the write (SQLite:
      // a connection opened SQLITE_OPEN_READONLY; PostgreSQL: read-only transactions).
      // The real-permissions case is the SQLite open test above.
      const { target, log: rw } = await fresh(engine);
      await appendN(rw, 2);
      const log = new AuditLog(await stores.connect(target, { readonly: true }));
      await assert.rejects(log.append(input(3)), /readonly|read-only/);
      assert.deepEqual(await log.verify(), { ok: true, checked: 2 });
      assert.equal((await log.query({ limit: 10 })).items.length, 2);
    });
  });

  describe(`AuditLog queries (${engine})`, () => {
    // 240 events over 4 logins (two spellings of alice), 3 deployments, 2 namespaces, all types.
    const logins = ['alice', 'Alice', 'bob', 'carol'];
    const deployments = ['api', 'worker', 'cron'];
    const namespaces = ['payments', 'search'];
    const types = ['run.requested', 'run.created', 'run.started', 'run.finished', 'run.denied', 'login'] as const;
    const statuses = ['succeeded', 'failed', 'deadline'] as const;
    let log: AuditLog;
    let all: AuditEvent[];

    before(async () => {
      log = (await fresh(engine)).log;
      const out: Promise<AuditEvent>[] = [];
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
      all = await Promise.all(out);
    });

    async function pages(q: Partial<AuditQuery>, limit: number): Promise<AuditEvent[]> {
      const seen: AuditEvent[] = [];
      let cursor: string | undefined;
      for (let guard = 0; guard < 1000; guard++) {
        const page = await log.query({ ...q, limit, ...(cursor ? { cursor } : {}) });
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
      test(`filter: ${name} — pages have no duplicates or gaps`, async () => {
        const want = all.filter(match).reverse();
        for (const limit of [1, 7, 1000]) {
          const got = await pages(q, limit);
          assert.deepEqual(
            got.map((e) => e.seq),
            want.map((e) => e.seq),
            `limit ${limit}`,
          );
        }
        assert.deepEqual(
          (await collect(log.iterate(q))).map((e) => e.seq),
          want.map((e) => e.seq).reverse(),
        );
      });
    }

    test('a page of exactly the remaining items has no next cursor', async () => {
      const page = await log.query({ limit: 240 });
      assert.equal(page.items.length, 240);
      assert.equal(page.nextCursor, undefined);
    });

    test('garbage cursors are rejected as invalid', async () => {
      const bad = [
        'not a cursor!',
        Buffer.from('hello').toString('base64url'),
        Buffer.from('a:0').toString('base64url'),
        Buffer.from('a:-3').toString('base64url'),
        Buffer.from('a:99999999999999999').toString('base64url'),
        encodeCursor('r', 5), // a runs cursor
      ];
      for (const cursor of bad) await assert.rejects(log.query({ limit: 10, cursor }), /invalid cursor/, cursor);
    });

    test('iterate crosses batch boundaries and does not block appends while a reader is paused', async () => {
      const { log: big } = await fresh(engine);
      await appendN(big, 2345);
      const it = big.iterate()[Symbol.asyncIterator]();
      const first = await it.next();
      assert.equal(first.done, false);
      // A paused export must not hold up an append (that would refuse runs).
      const appended = await big.append(input(9999), new Date(T0 + 9_999_000));
      const rest: AuditEvent[] = [];
      for (let n = await it.next(); !n.done; n = await it.next()) rest.push(n.value);
      assert.equal(rest.length, 2345);
      assert.equal(rest.at(-1)!.seq, appended.seq);
      const t = performance.now();
      assert.deepEqual(await big.verify(), { ok: true, checked: 2346 });
      console.log(`${engine} verify: 2346 events in ${(performance.now() - t).toFixed(0)} ms`);
    });
  });
}

describe('AuditLog at 1M rows (SQLite)', () => {
  test('the common queries use an index (EXPLAIN QUERY PLAN) and stay fast', async () => {
    const target = await stores.target('sqlite');
    // Record the SQL the log runs, to ask SQLite how it runs exactly those statements.
    const seen: { sql: string; parameters: readonly unknown[] }[] = [];
    const conn = await stores.connect(target, { onQuery: (sql, parameters) => seen.push({ sql, parameters }) });
    const db = conn.sqlite!;
    const log = new AuditLog(conn);

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
      seen.length = 0;
      t = performance.now();
      const first = await log.query(q);
      const second = first.nextCursor ? await log.query({ ...q, cursor: first.nextCursor }) : { items: [] };
      const ms = performance.now() - t;
      // Both the first page and the cursor page (which adds "seq < ?").
      const selects = seen.filter((s) => s.sql.startsWith('select seq, json from audit_events'));
      assert.equal(selects.length, first.nextCursor ? 2 : 1, `queries run for ${name}`);
      console.log(`${name}: ${first.items.length}+${second.items.length} rows in ${ms.toFixed(1)} ms`);
      for (const s of selects) {
        const plan = db.prepare(`EXPLAIN QUERY PLAN ${s.sql}`).all(...s.parameters) as { detail: string }[];
        const detail = plan.map((p) => p.detail).join(' | ');
        console.log(`  ${detail}`);
        assert.match(detail, expected, name);
        assert.doesNotMatch(detail, /TEMP B-TREE|SCAN audit_events/, name);
      }
      assert.ok(first.items.length > 0, `${name} found nothing`);
    }
  });
});
