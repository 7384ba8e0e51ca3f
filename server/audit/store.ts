// The audit log: append-only, hash-chained events in SQLite, with queries, export and verification.
//
// What the chain can and cannot prove. Each event carries the hash of the one before it
// (chain.ts), and `audit_head` holds the seq and hash of the last append, written in the
// same transaction. verify() therefore detects an edited event, a deleted or inserted
// event anywhere in the log, and deleted newest events. It cannot detect someone with
// write access to the file who rewrites the events from some point on AND the head:
// the hashes use no secret, so a consistent forgery is always possible. That is why
// exports exist — an NDJSON export kept elsewhere pins the hashes as they were, and a
// later log whose hash at the same seq differs has been rewritten.
import type { Statement } from 'better-sqlite3';
import { AuditEventInput, AuditQuery, type AuditEvent, type AuditVerifyResult } from '../../protocol/api.js';
import type { AuditService } from '../services.js';
import { GENESIS_HASH, canonicalJson, hashEvent, verifyChain } from './chain.js';
import { type Database, decodeCursor, encodeCursor } from './db.js';
import { metrics } from '../metrics.js';

interface EventRow {
  seq: number;
  time: string;
  type: string;
  login: string;
  namespace: string | null;
  deployment: string | null;
  status: string | null;
  run_id: string | null;
  json: string;
}

interface HeadRow {
  seq: number;
  hash: string;
  time: string;
}

type Filter = { where: string[]; params: Record<string, string | number> };
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

/** One audit commit, counted in the append latency histogram or as a failure. */
function timed<T>(commit: () => T): T {
  const end = metrics.auditAppendSeconds.startTimer();
  try {
    return commit();
  } catch (err) {
    metrics.auditAppendFailures.inc();
    throw err;
  } finally {
    end();
  }
}
/** Rows per read while exporting: bounds memory without a query held open between yields. */
const EXPORT_BATCH = 1000;

export class AuditLog implements AuditService {
  private readonly appendTx: (input: AuditEventInput, now: Date) => AuditEvent;
  private readonly headStmt: Statement<[], HeadRow>;
  private readonly firstAtOrAfter: Statement<[string], number>;
  private readonly cache = new Map<string, Statement<[Record<string, string | number>], EventRow>>();

  constructor(private readonly db: Database) {
    this.headStmt = db.prepare('SELECT seq, hash, time FROM audit_head WHERE id = 1');
    // The time index is ordered (time, seq), so this is one index probe.
    this.firstAtOrAfter = db.prepare<[string], number>('SELECT seq FROM audit_events WHERE time >= ? ORDER BY time, seq LIMIT 1').pluck();
    const anyEvent = db.prepare<[], number>('SELECT seq FROM audit_events LIMIT 1').pluck();
    const insert = db.prepare<[EventRow]>(
      `INSERT INTO audit_events (seq, time, type, login, namespace, deployment, status, run_id, json)
       VALUES (@seq, @time, @type, @login, @namespace, @deployment, @status, @run_id, @json)`,
    );
    const insertHead = db.prepare<[HeadRow]>('INSERT INTO audit_head (id, seq, hash, time) VALUES (1, @seq, @hash, @time)');
    const updateHead = db.prepare<[HeadRow]>('UPDATE audit_head SET seq = @seq, hash = @hash, time = @time WHERE id = 1');

    const tx = db.transaction((input: AuditEventInput, now: Date): AuditEvent => {
      // Chain from the head, not from the newest row: if the newest rows were deleted,
      // chaining from what is left would let the next append paper over the deletion.
      const head = this.headStmt.get();
      if (!head && anyEvent.get() !== undefined) {
        throw new Error(
          'the audit head record is missing although the log has events: the store has been tampered with; ' +
            'refusing to append — run `oddjob audit verify` and restore from an export',
        );
      }
      const seq = (head?.seq ?? 0) + 1;
      const prevHash = head?.hash ?? GENESIS_HASH;
      // Time never goes backwards along seq, even if the clock steps back: queries turn
      // a time range into a seq range on that promise, and a log read in seq order
      // should read in time order.
      let time = now.toISOString();
      if (head && time < head.time) time = head.time;
      // A JSON round trip drops undefined members, so what is hashed is exactly what
      // is stored and later re-hashed by verify().
      const body = { ...(JSON.parse(JSON.stringify(input)) as AuditEventInput), seq, time };
      const hash = hashEvent(prevHash, body);
      const event: AuditEvent = { ...body, prevHash, hash };
      insert.run({
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
      (head ? updateHead : insertHead).run({ seq, hash, time });
      return event;
    });
    // IMMEDIATE: take the write lock before reading the head, so two writers cannot
    // both read head N and both try to append N+1.
    this.appendTx = (input, now) => timed(() => tx.immediate(input, now));
    const many = db.transaction((batch: readonly Pending[]) => batch.map((p) => tx(p.input, p.now)));
    this.appendManyTx = (batch) => timed(() => many.immediate(batch));
  }

  private readonly appendManyTx: (batch: readonly Pending[]) => AuditEvent[];
  private pending: Pending[] = [];

  /**
   * append() for callers that can wait, with group commit: the appends made in one turn
   * of the event loop are written in one transaction, so they share one fsync instead of
   * blocking the loop for one each (at 100 concurrent runs that was most of the server's
   * time). Resolves once the event is durable, as append() returns; rejects when it is
   * not — a failed batch fails every event in it, and none of them is stored.
   */
  appendDurable(input: AuditEventInput, now: Date = new Date()): Promise<AuditEvent> {
    let parsed: AuditEventInput;
    try {
      parsed = AuditEventInput.parse(input);
    } catch (err) {
      return Promise.reject(err);
    }
    return new Promise<AuditEvent>((resolve, reject) => {
      this.pending.push({ input: parsed, now, resolve, reject });
      if (this.pending.length === 1) setImmediate(() => this.flush());
    });
  }

  private flush(): void {
    const batch = this.pending;
    this.pending = [];
    let events: AuditEvent[];
    try {
      events = this.appendManyTx(batch);
    } catch (err) {
      for (const p of batch) p.reject(err);
      return;
    }
    batch.forEach((p, i) => p.resolve(events[i]!));
  }

  /**
   * Records one event and returns it as stored. Throws if the input is invalid or the
   * event could not be durably written — callers rely on that to fail closed.
   */
  append(input: AuditEventInput, now: Date = new Date()): AuditEvent {
    const parsed = AuditEventInput.parse(input);
    // Events are chained in call order: appendDurable calls made before this one go first.
    this.flushPending();
    return this.appendTx(parsed, now);
  }

  /** Writes the appendDurable calls still waiting for their turn now (before the database closes). */
  flushPending(): void {
    if (this.pending.length) this.flush();
  }

  /**
   * Newest first, one page. `since` is inclusive and `until` exclusive, so consecutive
   * windows neither overlap nor leave gaps. `user` matches the login case-insensitively.
   * Throws InvalidCursorError for a cursor this log did not issue.
   */
  query({ actorId, ...q }: AuditQuery & ActorScope): { items: AuditEvent[]; nextCursor?: string } {
    const parsed = AuditQuery.parse(q);
    const before = parsed.cursor === undefined ? undefined : decodeCursor(CURSOR_TAG, parsed.cursor);
    const filter = this.filter(parsed, actorId);
    if (!filter) return { items: [] };
    if (before !== undefined) {
      filter.where.push('seq < @before');
      filter.params.before = before;
    }
    const rows = this.select(filter, 'DESC').all({ ...filter.params, limit: parsed.limit + 1 });
    const items = rows.slice(0, parsed.limit).map(toEvent);
    // The cursor comes from the row key, not the JSON, so paging cannot be steered by content.
    const last = rows[parsed.limit - 1];
    return rows.length > parsed.limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.seq) } : { items };
  }

  /**
   * Every matching event, oldest first (for NDJSON export). Reads in batches by seq
   * rather than through one open statement: better-sqlite3 refuses every write on a
   * connection while one of its statements is mid-iteration, so a slow export reader
   * would otherwise make append() throw — and refuse runs — until it finished.
   * `limit` and `cursor` are ignored. Events appended during the export are included.
   */
  *iterate({ actorId, ...q }: Partial<AuditQuery> & ActorScope = {}): Generator<AuditEvent> {
    const filter = this.filter(AuditQuery.partial().parse(q), actorId);
    if (!filter) return;
    filter.where.push('seq > @after');
    const stmt = this.select(filter, 'ASC');
    let after = 0;
    for (;;) {
      const rows = stmt.all({ ...filter.params, after, limit: EXPORT_BATCH });
      for (const row of rows) yield toEvent(row);
      const last = rows.at(-1);
      if (!last || rows.length < EXPORT_BATCH) return;
      after = last.seq;
    }
  }

  /**
   * Recomputes the whole chain (streaming, in one read snapshot), checks that the
   * indexed columns agree with each event, and compares the end with the head record.
   */
  verify(): AuditVerifyResult {
    // One read transaction: the head and the rows must come from the same snapshot even
    // if another process appends meanwhile.
    return this.db.transaction(() => this.verifySnapshot())();
  }

  private verifySnapshot(): AuditVerifyResult {
    const head = this.headStmt.get();
    const rows = this.db
      .prepare<[], EventRow>('SELECT seq, time, type, login, namespace, deployment, status, run_id, json FROM audit_events ORDER BY seq')
      .iterate();
    let lastSeq = 0;
    let lastHash = GENESIS_HASH;
    let lastTime = '';
    let found: { seq: number; problem: string } | undefined;
    // The stored text of the event just yielded, for verifyChain's fast hash check.
    let currentJson: string | undefined;

    function* events(): Generator<AuditEvent & Record<string, unknown>> {
      for (const row of rows) {
        if (row.seq !== lastSeq + 1) {
          const missing = row.seq === lastSeq + 2 ? `event ${lastSeq + 1} is` : `events ${lastSeq + 1}..${row.seq - 1} are`;
          found = { seq: lastSeq + 1, problem: `${missing} missing (deleted)` };
          return;
        }
        let event: AuditEvent & Record<string, unknown>;
        try {
          event = JSON.parse(row.json) as AuditEvent & Record<string, unknown>;
        } catch {
          found = { seq: row.seq, problem: `event ${row.seq} is not valid JSON` };
          return;
        }
        const mismatch = columnMismatch(row, event) ?? (event.time < lastTime ? 'its time is earlier than the previous event' : undefined);
        lastSeq = row.seq;
        lastHash = event.hash;
        lastTime = event.time;
        currentJson = row.json;
        // Yield first and report the mismatch only if verifyChain accepts the event: an
        // edited event is better described by its broken hash than by its columns.
        yield event;
        if (mismatch) {
          found = { seq: row.seq, problem: `event ${row.seq}: ${mismatch}` };
          return;
        }
      }
    }

    let chain: AuditVerifyResult;
    try {
      chain = verifyChain(events(), () => currentJson);
    } finally {
      // verifyChain may stop reading at a break; an unfinished statement would keep the
      // connection busy and make every later append throw.
      rows.return?.();
    }
    if (!chain.ok) return chain;
    if (found) return { ok: false, checked: chain.checked, brokenAt: found.seq, problem: found.problem };
    const broken = (brokenAt: number, problem: string): AuditVerifyResult => ({
      ok: false,
      checked: chain.checked,
      brokenAt,
      problem,
    });
    if (!head) {
      return lastSeq === 0 ? chain : broken(lastSeq + 1, 'the head record (last append) is missing, so deletion of the newest events cannot be ruled out');
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
    return chain;
  }

  /** WHERE terms for the filters; null when the time range cannot match anything. */
  private filter(q: Partial<AuditQuery>, actorId?: number): Filter | null {
    const where: string[] = [];
    const params: Filter['params'] = {};
    if (actorId !== undefined) {
      // Only with a user filter (scoped reads), so this checks the rows of one login.
      // Events from before ids were recorded have none and are matched by login alone.
      where.push(`(json_extract(json, '$.actor.id') = @actorId OR json_extract(json, '$.actor.id') IS NULL)`);
      params.actorId = actorId;
    }
    const eq = (column: string, name: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = @${name}`);
      params[name] = value;
    };
    // SQLite uses one index per query and, without statistics, cannot tell that a
    // namespace or an event type matches far more events than a user, a deployment or a
    // run: "namespace = ? AND login = ?" could walk a whole namespace to find one user's
    // events. A unary "+" keeps those coarse columns out of index choice when a finer
    // filter is present; they still filter every row.
    const coarse = q.user !== undefined || q.deployment !== undefined || q.runId !== undefined ? '+' : '';
    eq('login', 'user', q.user); // the column is COLLATE NOCASE
    eq('deployment', 'deployment', q.deployment);
    eq(`${coarse}namespace`, 'namespace', q.namespace);
    eq(`${coarse}type`, 'type', q.type);
    eq('status', 'status', q.status);
    eq('run_id', 'runId', q.runId);
    // Times become seq bounds (time is non-decreasing in seq, see append), so a user +
    // time-range query is one range scan of the login index. The "+time" terms are the
    // exact filter, also for events appended after the bounds were computed; the "+"
    // keeps the planner from choosing the time index over the more selective ones.
    if (q.since !== undefined) {
      const since = isoCeilMs(q.since);
      const lo = this.firstAtOrAfter.get(since);
      if (lo === undefined) return null;
      where.push('seq >= @lo', '+time >= @since');
      Object.assign(params, { lo, since });
    }
    if (q.until !== undefined) {
      const until = isoCeilMs(q.until);
      const hi = this.firstAtOrAfter.get(until);
      if (hi !== undefined) {
        where.push('seq < @hi');
        params.hi = hi;
      }
      where.push('+time < @until');
      params.until = until;
    }
    return { where, params };
  }

  private select(filter: Filter, order: 'ASC' | 'DESC') {
    const sql =
      `SELECT seq, json FROM audit_events` + (filter.where.length ? ` WHERE ${filter.where.join(' AND ')}` : '') + ` ORDER BY seq ${order} LIMIT @limit`;
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    return stmt;
  }
}

function toEvent(row: Pick<EventRow, 'json'>): AuditEvent {
  // Not re-validated with zod: rows are written only by append() after validation, and
  // verify() is the integrity check (a hash covers every field).
  return JSON.parse(row.json) as AuditEvent;
}

function columnMismatch(row: EventRow, e: AuditEvent): string | undefined {
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
