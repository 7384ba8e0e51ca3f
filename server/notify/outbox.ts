// The notification outbox: one row per (event, target), written in the same
// transaction as the audit event that causes it (AuditLog's onAppend hook), so an
// event on record is an event that will be delivered, and a failed append notifies
// nobody. Delivery workers claim rows with a lease, so with several replicas one of
// them sends each row; a row whose worker died is claimed again when its lease runs out.
//
// Everything the workers, the API and the CLI use is async: the SQLite statements run
// synchronously today, and the store's move to kysely (SQLite + PostgreSQL) changes
// only this file. On PostgreSQL the claim is the same statement with the inner SELECT
// taking `FOR UPDATE SKIP LOCKED`, so concurrent replicas skip each other's rows
// instead of waiting. enqueueInTransaction is the one synchronous call: it runs inside
// the audit append's transaction (with kysely, it takes that transaction's handle).
import { randomBytes } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Database } from '../audit/db.js';
import { decodeCursor, encodeCursor } from '../audit/db.js';
import type { NotifyEvent, NotifyEventType } from './events.js';

export type DeliveryState = 'pending' | 'delivered' | 'failed';

export interface OutboxRow {
  id: number;
  /** The Standard Webhooks message id: the same on every attempt, so receivers can deduplicate. */
  webhookId: string;
  target: string;
  eventType: NotifyEventType;
  runId?: string;
  auditSeq: number;
  event: NotifyEvent;
  createdAt: number;
  state: DeliveryState;
  attempts: number;
  nextAt: number;
  lastStatus?: number;
  lastError?: string;
  deliveredAt?: number;
}

export interface NewDelivery {
  target: string;
  event: NotifyEvent;
  now: number;
}

export interface DeliveryQuery {
  state?: DeliveryState;
  runId?: string;
  target?: string;
  limit: number;
  cursor?: string;
}

export interface OutboxStore {
  /** Inside the audit append's transaction; throws to fail the append. */
  enqueueInTransaction(rows: readonly NewDelivery[]): void;
  /**
   * Leases up to `limit` due rows of one target to `owner` until `leaseUntil`. Rows of
   * one run are handed out in order, one at a time, so a run's finish never overtakes
   * its start (Slack updates the start message in place).
   */
  claim(target: string, owner: string, limit: number, now: number, leaseUntil: number): Promise<OutboxRow[]>;
  /** Records an attempt's outcome; false if the lease was lost (another worker owns the row now). */
  settle(id: number, owner: string, outcome: { state: DeliveryState; status?: number; error?: string; nextAt?: number; now: number }): Promise<boolean>;
  /** When the next row of `target` falls due (ms), if any is pending. */
  nextDue(target: string): Promise<number | undefined>;
  list(q: DeliveryQuery): Promise<{ items: OutboxRow[]; nextCursor?: string }>;
  get(id: number): Promise<OutboxRow | undefined>;
  /** Due again now, same webhook id; undefined if there is no such row. */
  redeliver(id: number, now: number): Promise<OutboxRow | undefined>;
  /**
   * Deletes settled deliveries (delivered or given up) created before `before`, and the
   * Slack message ids and run credentials nothing refers to any more. Pending ones stay,
   * whatever their age: they are still owed. Returns the deliveries deleted.
   */
  prune(before: number): Promise<number>;
  slackMessage(runId: string, target: string): Promise<{ channel: string; ts: string } | undefined>;
  saveSlackMessage(runId: string, target: string, channel: string, ts: string): Promise<void>;
}

interface Row {
  id: number;
  webhook_id: string;
  target: string;
  event_type: string;
  run_id: string | null;
  audit_seq: number;
  event: string;
  created_at: number;
  state: DeliveryState;
  attempts: number;
  next_at: number;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

const CURSOR_TAG = 'n';
const COLUMNS = 'id, webhook_id, target, event_type, run_id, audit_seq, event, created_at, state, attempts, next_at, last_status, last_error, delivered_at';

/** Standard Webhooks message ids are opaque; this one is sortable by creation and random after that. */
export function newWebhookId(now: number): string {
  return `msg_${now.toString(36).padStart(9, '0')}${randomBytes(10).toString('hex')}`;
}

export class SqliteOutbox implements OutboxStore {
  private readonly insert: Statement<[Record<string, unknown>]>;
  private readonly claimStmt: Statement<[Record<string, unknown>], Row>;
  private readonly settleStmt: Statement<[Record<string, unknown>]>;
  private readonly dueStmt: Statement<[string], number | null>;
  private readonly getStmt: Statement<[number], Row>;
  private readonly redeliverStmt: Statement<[Record<string, unknown>], Row>;
  private readonly slackGet: Statement<[string, string], { channel: string; ts: string }>;
  private readonly slackPut: Statement<[Record<string, unknown>]>;
  private readonly cache = new Map<string, Statement<[Record<string, unknown>], Row>>();

  constructor(private readonly db: Database) {
    this.insert = db.prepare(
      `INSERT OR IGNORE INTO notify_outbox (webhook_id, target, event_type, run_id, audit_seq, event, created_at, state, attempts, next_at)
       VALUES (@webhook_id, @target, @event_type, @run_id, @audit_seq, @event, @now, 'pending', 0, @now)`,
    );
    // The one statement replicas race on. SQLite: the UPDATE takes the write lock, so two
    // processes cannot both lease a row. PostgreSQL: the inner SELECT gets FOR UPDATE SKIP LOCKED.
    this.claimStmt = db.prepare(
      `UPDATE notify_outbox SET lease_owner = @owner, lease_until = @until
       WHERE id IN (
         SELECT o.id FROM notify_outbox o
         WHERE o.target = @target AND o.state = 'pending' AND o.next_at <= @now
           AND (o.lease_until IS NULL OR o.lease_until < @now)
           AND NOT EXISTS (
             SELECT 1 FROM notify_outbox p
             WHERE o.run_id IS NOT NULL AND p.run_id = o.run_id AND p.target = o.target AND p.state = 'pending' AND p.id < o.id)
         ORDER BY o.id LIMIT @limit)
       RETURNING ${COLUMNS}`,
    );
    this.settleStmt = db.prepare(
      `UPDATE notify_outbox SET state = @state, attempts = attempts + 1, last_status = @status, last_error = @error,
         next_at = COALESCE(@next_at, next_at), delivered_at = CASE WHEN @state = 'delivered' THEN @now ELSE delivered_at END,
         lease_owner = NULL, lease_until = NULL
       WHERE id = @id AND lease_owner = @owner`,
    );
    this.dueStmt = db
      .prepare<[string], number | null>(`SELECT MIN(MAX(next_at, COALESCE(lease_until, 0))) FROM notify_outbox WHERE target = ? AND state = 'pending'`)
      .pluck();
    this.getStmt = db.prepare(`SELECT ${COLUMNS} FROM notify_outbox WHERE id = ?`);
    this.redeliverStmt = db.prepare(
      `UPDATE notify_outbox SET state = 'pending', next_at = @now, created_at = @now, last_error = NULL
       WHERE id = @id AND (lease_until IS NULL OR lease_until < @now) RETURNING ${COLUMNS}`,
    );
    this.slackGet = db.prepare('SELECT channel, ts FROM notify_slack_messages WHERE run_id = ? AND target = ?');
    this.slackPut = db.prepare('INSERT OR REPLACE INTO notify_slack_messages (run_id, target, channel, ts) VALUES (@run_id, @target, @channel, @ts)');
  }

  enqueueInTransaction(rows: readonly NewDelivery[]): void {
    for (const r of rows) {
      this.insert.run({
        webhook_id: newWebhookId(r.now),
        target: r.target,
        event_type: r.event.type,
        run_id: r.event.run?.id ?? null,
        audit_seq: r.event.auditSeq,
        event: JSON.stringify(r.event),
        now: r.now,
      });
    }
  }

  async claim(target: string, owner: string, limit: number, now: number, leaseUntil: number): Promise<OutboxRow[]> {
    return this.claimStmt.all({ target, owner, limit, now, until: leaseUntil }).map(toRow);
  }

  async settle(id: number, owner: string, o: { state: DeliveryState; status?: number; error?: string; nextAt?: number; now: number }): Promise<boolean> {
    const r = this.settleStmt.run({ id, owner, state: o.state, status: o.status ?? null, error: o.error ?? null, next_at: o.nextAt ?? null, now: o.now });
    return r.changes === 1;
  }

  async nextDue(target: string): Promise<number | undefined> {
    return this.dueStmt.get(target) ?? undefined;
  }

  async list(q: DeliveryQuery): Promise<{ items: OutboxRow[]; nextCursor?: string }> {
    const where: string[] = [];
    const params: Record<string, unknown> = { limit: q.limit + 1 };
    const eq = (column: string, value: unknown) => {
      if (value === undefined) return;
      where.push(`${column} = @${column}`);
      params[column] = value;
    };
    eq('state', q.state);
    eq('run_id', q.runId);
    eq('target', q.target);
    if (q.cursor) {
      where.push('id < @before');
      params.before = decodeCursor(CURSOR_TAG, q.cursor);
    }
    const sql = `SELECT ${COLUMNS} FROM notify_outbox${where.length ? ` WHERE ${where.join(' AND ')}` : ''} ORDER BY id DESC LIMIT @limit`;
    let stmt = this.cache.get(sql);
    if (!stmt) this.cache.set(sql, (stmt = this.db.prepare(sql)));
    const rows = stmt.all(params);
    const items = rows.slice(0, q.limit).map(toRow);
    const last = items.at(-1);
    return rows.length > q.limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.id) } : { items };
  }

  async get(id: number): Promise<OutboxRow | undefined> {
    const row = this.getStmt.get(id);
    return row && toRow(row);
  }

  async redeliver(id: number, now: number): Promise<OutboxRow | undefined> {
    const row = this.redeliverStmt.get({ id, now });
    return row && toRow(row);
  }

  async prune(before: number): Promise<number> {
    return this.db.transaction(() => {
      const n = this.db.prepare(`DELETE FROM notify_outbox WHERE state <> 'pending' AND created_at < ?`).run(before).changes;
      this.db.exec(`DELETE FROM notify_slack_messages WHERE run_id NOT IN (SELECT run_id FROM notify_outbox WHERE run_id IS NOT NULL)`);
      this.db.prepare('DELETE FROM run_tokens WHERE expires_at < ? OR revoked_at < ?').run(before, before);
      return n;
    })();
  }

  async slackMessage(runId: string, target: string) {
    return this.slackGet.get(runId, target);
  }

  async saveSlackMessage(runId: string, target: string, channel: string, ts: string): Promise<void> {
    this.slackPut.run({ run_id: runId, target, channel, ts });
  }
}

function toRow(r: Row): OutboxRow {
  return {
    id: r.id,
    webhookId: r.webhook_id,
    target: r.target,
    eventType: r.event_type as NotifyEventType,
    ...(r.run_id ? { runId: r.run_id } : {}),
    auditSeq: r.audit_seq,
    event: JSON.parse(r.event) as NotifyEvent,
    createdAt: r.created_at,
    state: r.state,
    attempts: r.attempts,
    nextAt: r.next_at,
    ...(r.last_status !== null ? { lastStatus: r.last_status } : {}),
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.delivered_at !== null ? { deliveredAt: r.delivered_at } : {}),
  };
}
