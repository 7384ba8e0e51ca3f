// The audit log: append-only, hash-chained events, with queries, export and verification,
// on either engine.
//
// What the chain can and cannot prove. Each event carries the hash of the one before it
// (audit/chain.ts), and `audit_head` holds the seq and hash of the last append, written in
// the same transaction. verify() therefore detects an edited event, a deleted or inserted
// event anywhere in the log, and deleted newest events. It cannot detect someone with
// write access to the database who rewrites the events from some point on AND the head:
// the hashes use no secret, so a consistent forgery is always possible. That is why
// exports exist — an NDJSON export kept elsewhere pins the hashes as they were, and a
// later log whose hash at the same seq differs has been rewritten.
//
// Several writers (server replicas on one PostgreSQL, processes on one SQLite file)
// stay on one linear chain: every append transaction first takes the chain's write
// lock (SQLite: BEGIN IMMEDIATE; PostgreSQL: a transaction-scoped advisory lock), then
// reads the head, so no two writers can both extend the same event.
import { type RawBuilder, type Transaction, sql } from 'kysely';
import { AuditEventInput, AuditQuery, type AuditEvent, type AuditVerifyResult } from '../../protocol/api.js';
import { ChainCheck, GENESIS_HASH, canonicalJson, hashEvent } from '../audit/chain.js';
import { metrics } from '../metrics.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { Connection } from './database.js';
import type { AuditEventsTable, Tables } from './schema.js';

/**
 * A person's own events: with `user`, also the GitHub user id of the actor, so a
 * login registered again by another account does not read its predecessor's events.
 */
export interface ActorScope {
  actorId?: number;
}

interface Pending {
  input: AuditEventInput;
  now: Date;
  resolve: (event: AuditEvent) => void;
  reject: (err: unknown) => void;
}

const CURSOR_TAG = 'a';
/** Rows per read while exporting or verifying: bounds memory without a query held open between yields. */
const BATCH = 1000;
/** The advisory lock that serializes appends to the chain across PostgreSQL sessions ("oddjob-audit"). */
const CHAIN_LOCK = 0x6f64_6a61;
/** Events per INSERT statement (9 parameters each; PostgreSQL allows 65535). */
const INSERT_ROWS = 500;

/**
 * Runs inside each append batch's transaction, after its events are written (and the
 * chain's lock is held): what it writes commits with the events or not at all. It
 * throws only when the events must not be stored either. What it returns runs after
 * the commit.
 */
export type AppendHook = (trx: Transaction<Tables>, events: readonly AuditEvent[]) => Promise<(() => void) | void>;

export class AuditLog {
  private pending: Pending[] = [];
  private flushing: Promise<void> | undefined;
  private hook: AppendHook | undefined;

  constructor(private readonly conn: Connection) {}

  /** The notification outbox is written this way (server/notify/service.ts). */
  onAppend(hook: AppendHook): void {
    this.hook = hook;
  }

  /**
   * Records one event and resolves with it as stored, once it is durable; rejects if
   * the input is invalid or the event could not be written — callers rely on that to
   * fail closed. Group commit: the appends made while one commit is in flight are
   * written together in the next transaction, so they share one fsync (SQLite) or one
   * round of WAL flush (PostgreSQL). A failed batch fails every event in it, and none
   * of them is stored. Events are chained in call order.
   */
  append(input: AuditEventInput, now: Date = new Date()): Promise<AuditEvent> {
    let parsed: AuditEventInput;
    try {
      parsed = AuditEventInput.parse(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      this.pending.push({ input: parsed, now, resolve, reject });
      this.flushing ??= this.drain();
    });
  }

  /** The same as append(); kept for callers that name the group commit. */
  appendDurable(input: AuditEventInput, now?: Date): Promise<AuditEvent> {
    return this.append(input, now);
  }

  /** Resolves once every append made so far has been written (or has failed): before the database closes. */
  async flushPending(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    // Let the appends of this event-loop turn join the first batch.
    await new Promise((r) => setImmediate(r));
    try {
      while (this.pending.length) {
        const batch = this.pending;
        this.pending = [];
        const end = metrics.auditAppendSeconds.startTimer();
        try {
          const after: { commit?: (() => void) | void } = {};
          const events = await this.conn.db.transaction().execute(async (trx) => {
            const events = await this.appendBatch(trx, batch);
            if (this.hook) after.commit = await this.hook(trx, events);
            return events;
          });
          batch.forEach((p, i) => p.resolve(events[i]!));
          after.commit?.();
        } catch (err) {
          metrics.auditAppendFailures.inc();
          for (const p of batch) p.reject(err);
        } finally {
          end();
        }
      }
    } finally {
      this.flushing = undefined;
    }
  }

  private async appendBatch(trx: Transaction<Tables>, batch: readonly Pending[]): Promise<AuditEvent[]> {
    if (this.conn.engine === 'postgres') await sql`select pg_advisory_xact_lock(${CHAIN_LOCK})`.execute(trx);
    // Chain from the head, not from the newest row: if the newest rows were deleted,
    // chaining from what is left would let the next append paper over the deletion.
    const head = await trx.selectFrom('audit_head').select(['seq', 'hash', 'time']).where('id', '=', 1).executeTakeFirst();
    if (!head && (await trx.selectFrom('audit_events').select('seq').limit(1).executeTakeFirst())) {
      throw new Error(
        'the audit head record is missing although the log has events: the store has been tampered with; ' +
          'refusing to append — run `oddjob audit verify` and restore from an export',
      );
    }
    const events: AuditEvent[] = [];
    const rows: AuditEventsTable[] = [];
    let last = head;
    for (const { input, now } of batch) {
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS_HASH;
      // Time never goes backwards along seq, even if the clock steps back (or replicas'
      // clocks disagree): queries turn a time range into a seq range on that promise.
      let time = now.toISOString();
      if (last && time < last.time) time = last.time;
      // A JSON round trip drops undefined members, so what is hashed is exactly what
      // is stored and later re-hashed by verify().
      const body = { ...(JSON.parse(JSON.stringify(input)) as AuditEventInput), seq, time };
      const hash = hashEvent(prevHash, body);
      const event: AuditEvent = { ...body, prevHash, hash };
      rows.push({
        seq,
        time,
        type: event.type,
        login: event.actor.login,
        namespace: event.namespace ?? null,
        deployment: event.deployment ?? null,
        status: event.status ?? null,
        run_id: event.runId ?? null,
        json: canonicalJson(event),
      });
      last = { seq, hash, time };
      events.push(event);
    }
    // Few round trips while the chain's lock is held: that time is what other writers wait for.
    for (let i = 0; i < rows.length; i += INSERT_ROWS)
      await trx
        .insertInto('audit_events')
        .values(rows.slice(i, i + INSERT_ROWS))
        .execute();
    await this.moveHead(trx, head, rows, events);
    return events;
  }

  private async moveHead(trx: Transaction<Tables>, head: { seq: number } | undefined, rows: AuditEventsTable[], events: AuditEvent[]): Promise<void> {
    const at = (i: number) => ({ seq: rows[i]!.seq, hash: events[i]!.hash, time: rows[i]!.time });
    if (this.conn.engine === 'postgres') {
      // PostgreSQL's head guard lets the head move forward by a whole batch at once.
      const last = at(rows.length - 1);
      if (head) await trx.updateTable('audit_head').set(last).where('id', '=', 1).execute();
      else
        await trx
          .insertInto('audit_head')
          .values({ id: 1, ...last })
          .execute();
      return;
    }
    // SQLite's guard (from the first schema) moves it one event at a time; in-process, that is cheap.
    for (let i = 0; i < rows.length; i++) {
      if (i === 0 && !head)
        await trx
          .insertInto('audit_head')
          .values({ id: 1, ...at(0) })
          .execute();
      else await trx.updateTable('audit_head').set(at(i)).where('id', '=', 1).execute();
    }
  }

  /**
   * Newest first, one page. `since` is inclusive and `until` exclusive, so consecutive
   * windows neither overlap nor leave gaps. `user` matches the login case-insensitively.
   * Throws InvalidCursorError for a cursor this log did not issue.
   */
  async query({ actorId, ...q }: AuditQuery & ActorScope): Promise<{ items: AuditEvent[]; nextCursor?: string }> {
    const parsed = AuditQuery.parse(q);
    const before = parsed.cursor === undefined ? undefined : decodeCursor(CURSOR_TAG, parsed.cursor);
    const where = await this.filter(parsed, actorId);
    if (!where) return { items: [] };
    if (before !== undefined) where.push(sql`seq < ${before}`);
    const rows = await this.select(where, 'desc', parsed.limit + 1);
    const items = rows.slice(0, parsed.limit).map(toEvent);
    // The cursor comes from the row key, not the JSON, so paging cannot be steered by content.
    const last = rows[parsed.limit - 1];
    return rows.length > parsed.limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.seq) } : { items };
  }

  /**
   * Every matching event, oldest first (for NDJSON export), read in batches by seq so
   * no query stays open while a slow reader consumes. `limit` and `cursor` are ignored.
   * Events appended during the export are included.
   */
  async *iterate({ actorId, ...q }: Partial<AuditQuery> & ActorScope = {}): AsyncGenerator<AuditEvent> {
    const base = await this.filter(AuditQuery.partial().parse(q), actorId);
    if (!base) return;
    let after = 0;
    for (;;) {
      const rows = await this.select([...base, sql`seq > ${after}`], 'asc', BATCH);
      for (const row of rows) yield toEvent(row);
      const last = rows.at(-1);
      if (!last || rows.length < BATCH) return;
      after = last.seq;
    }
  }

  /**
   * Recomputes the whole chain (page by page, in one read snapshot), checks that the
   * indexed columns agree with each event, and compares the end with the head record.
   */
  async verify(): Promise<AuditVerifyResult> {
    // One transaction: the head and the rows must come from the same snapshot even if
    // another process or replica appends meanwhile.
    return this.conn.db
      .transaction()
      .setIsolationLevel('repeatable read')
      .execute((trx) => verifySnapshot(trx));
  }

  /** WHERE terms for the filters; null when the time range cannot match anything. */
  private async filter(q: Partial<AuditQuery>, actorId?: number): Promise<RawBuilder<unknown>[] | null> {
    const pg = this.conn.engine === 'postgres';
    const where: RawBuilder<unknown>[] = [];
    if (actorId !== undefined) {
      // Only with a user filter (scoped reads), so this checks the rows of one login.
      // Events from before ids were recorded have none and are matched by login alone.
      where.push(
        pg
          ? sql`((json::jsonb #>> '{actor,id}') = ${String(actorId)} or (json::jsonb #> '{actor,id}') is null)`
          : sql`(json_extract(json, '$.actor.id') = ${actorId} or json_extract(json, '$.actor.id') is null)`,
      );
    }
    // SQLite uses one index per query and, without statistics, cannot tell that a
    // namespace or an event type matches far more events than a user, a deployment or a
    // run: "namespace = ? AND login = ?" could walk a whole namespace to find one user's
    // events. A unary "+" keeps those coarse columns out of index choice when a finer
    // filter is present; they still filter every row. PostgreSQL keeps statistics.
    const fine = q.user !== undefined || q.deployment !== undefined || q.runId !== undefined;
    const col = (name: string, coarse = false) => sql.raw(!pg && coarse && fine ? `+${name}` : name);
    if (q.user !== undefined) where.push(pg ? sql`lower(login) = lower(${q.user})` : sql`login = ${q.user}`); // SQLite: COLLATE NOCASE
    if (q.deployment !== undefined) where.push(sql`deployment = ${q.deployment}`);
    if (q.namespace !== undefined) where.push(sql`${col('namespace', true)} = ${q.namespace}`);
    if (q.type !== undefined) where.push(sql`${col('type', true)} = ${q.type}`);
    if (q.status !== undefined) where.push(sql`status = ${q.status}`);
    if (q.runId !== undefined) where.push(sql`run_id = ${q.runId}`);
    // Times become seq bounds (time is non-decreasing in seq, see append), so a user +
    // time-range query is one range scan of the login index. The time terms are the
    // exact filter, also for events appended after the bounds were computed.
    const time = sql.raw(pg ? 'time' : '+time');
    if (q.since !== undefined) {
      const since = isoCeilMs(q.since);
      const lo = await this.firstAtOrAfter(since);
      if (lo === undefined) return null;
      where.push(sql`seq >= ${lo}`, sql`${time} >= ${since}`);
    }
    if (q.until !== undefined) {
      const until = isoCeilMs(q.until);
      const hi = await this.firstAtOrAfter(until);
      if (hi !== undefined) where.push(sql`seq < ${hi}`);
      where.push(sql`${time} < ${until}`);
    }
    return where;
  }

  private async firstAtOrAfter(time: string): Promise<number | undefined> {
    // The time index is ordered (time, seq), so this is one index probe.
    const row = await this.conn.db
      .selectFrom('audit_events')
      .select('seq')
      .where('time', '>=', time)
      .orderBy('time')
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst();
    return row?.seq;
  }

  private async select(where: RawBuilder<unknown>[], order: 'asc' | 'desc', limit: number): Promise<{ seq: number; json: string }[]> {
    const cond = where.length ? sql`where ${sql.join(where, sql` and `)}` : sql``;
    const { rows } = await sql<{ seq: number; json: string }>`select seq, json from audit_events ${cond} order by seq ${sql.raw(order)} limit ${limit}`.execute(
      this.conn.db,
    );
    return rows;
  }
}

async function verifySnapshot(trx: Transaction<Tables>): Promise<AuditVerifyResult> {
  const head = await trx.selectFrom('audit_head').select(['seq', 'hash', 'time']).where('id', '=', 1).executeTakeFirst();
  const check = new ChainCheck();
  let lastSeq = 0;
  let lastHash = GENESIS_HASH;
  let lastTime = '';
  const broken = (brokenAt: number, problem: string): AuditVerifyResult => ({ ok: false, checked: check.checked, brokenAt, problem });
  for (;;) {
    const rows = await trx.selectFrom('audit_events').selectAll().where('seq', '>', lastSeq).orderBy('seq').limit(BATCH).execute();
    for (const row of rows) {
      if (row.seq !== lastSeq + 1) {
        const missing = row.seq === lastSeq + 2 ? `event ${lastSeq + 1} is` : `events ${lastSeq + 1}..${row.seq - 1} are`;
        return broken(lastSeq + 1, `${missing} missing (deleted)`);
      }
      let event: AuditEvent & Record<string, unknown>;
      try {
        event = JSON.parse(row.json) as AuditEvent & Record<string, unknown>;
      } catch {
        return broken(row.seq, `event ${row.seq} is not valid JSON`);
      }
      const mismatch = columnMismatch(row, event) ?? (event.time < lastTime ? 'its time is earlier than the previous event' : undefined);
      // The chain first, then the columns: an edited event is better described by its
      // broken hash than by its columns.
      const bad = check.next(event, row.json);
      if (bad) return bad;
      if (mismatch) return broken(row.seq, `event ${row.seq}: ${mismatch}`);
      lastSeq = row.seq;
      lastHash = event.hash;
      lastTime = event.time;
    }
    if (rows.length < BATCH) break;
  }
  if (!head) {
    return lastSeq === 0
      ? { ok: true, checked: 0 }
      : broken(lastSeq + 1, 'the head record (last append) is missing, so deletion of the newest events cannot be ruled out');
  }
  if (head.seq > lastSeq) {
    const which = head.seq === lastSeq + 1 ? `event ${head.seq} is` : `events ${lastSeq + 1}..${head.seq} are`;
    return broken(lastSeq + 1, `${which} missing: the newest events were deleted (the head record says ${head.seq} was appended last)`);
  }
  if (head.seq < lastSeq) {
    return broken(head.seq + 1, `events after ${head.seq} were not appended by oddjob (the head record says ${head.seq} is the last)`);
  }
  if (head.hash !== lastHash) {
    return broken(head.seq, `event ${head.seq} is not the one that was appended (its hash differs from the head record)`);
  }
  return { ok: true, checked: check.checked };
}

function toEvent(row: { json: string }): AuditEvent {
  // Not re-validated with zod: rows are written only by append() after validation, and
  // verify() is the integrity check (a hash covers every field).
  return JSON.parse(row.json) as AuditEvent;
}

function columnMismatch(row: AuditEventsTable, e: AuditEvent): string | undefined {
  // Checked field by field without allocating: this runs for every event in verify().
  const bad = (name: string, column: unknown, recorded: unknown) =>
    `the indexed ${name} column (${JSON.stringify(column)}) disagrees with the recorded event (${JSON.stringify(recorded)})`;
  if (row.seq !== e.seq) return bad('seq', row.seq, e.seq);
  if (row.time !== e.time) return bad('time', row.time, e.time);
  if (row.type !== e.type) return bad('type', row.type, e.type);
  if (row.login !== e.actor?.login) return bad('login', row.login, e.actor?.login);
  if (row.namespace !== (e.namespace ?? null)) return bad('namespace', row.namespace, e.namespace ?? null);
  if (row.deployment !== (e.deployment ?? null)) return bad('deployment', row.deployment, e.deployment ?? null);
  if (row.status !== (e.status ?? null)) return bad('status', row.status, e.status ?? null);
  if (row.run_id !== (e.runId ?? null)) return bad('run_id', row.run_id, e.runId ?? null);
  return undefined;
}

/**
 * An ISO timestamp with any offset → UTC "YYYY-MM-DDTHH:mm:ss.sssZ", rounded UP to the
 * millisecond. Stored times have millisecond precision, so for a stored t and any x,
 * t >= x ⇔ t >= ceil(x) and t < x ⇔ t < ceil(x): both bounds stay exact.
 */
function isoCeilMs(iso: string): string {
  const ms = Date.parse(iso);
  if (Number.isNaN(ms)) throw new Error(`not a timestamp: ${iso}`);
  const extra = /T[^.]*\.\d{3}(\d+)/.exec(iso)?.[1];
  return new Date(extra && /[1-9]/.test(extra) ? ms + 1 : ms).toISOString();
}
