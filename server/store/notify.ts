// Notification rows on either engine: the outbox (one row per event and target,
// written in the audit append's transaction), the Slack message of each run, and run
// progress credentials (only their SHA-256).
//
// Claims are the one statement replicas race on. PostgreSQL: the inner SELECT takes
// FOR UPDATE SKIP LOCKED, so concurrent workers skip each other's rows instead of
// waiting, and a row is leased by one of them only. SQLite: the UPDATE takes the
// file's write lock, so two processes cannot both lease a row.
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Transaction, sql } from 'kysely';
import type { NotifyEvent, NotifyEventType } from '../notify/events.js';
import { type DeliveryQuery, type DeliveryState, type NewDelivery, type OutboxRow, type OutboxStore, newWebhookId } from '../notify/outbox.js';
import { RUN_TOKEN_PREFIX, type RunTokenStore } from '../notify/run-tokens.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { Connection } from './database.js';
import type { NotifyOutboxTable, Tables } from './schema.js';

/** The audit append's transaction, handed to its hook. */
export type StoreTransaction = Transaction<Tables>;

type Row = Omit<NotifyOutboxTable, 'id' | 'lease_owner' | 'lease_until'> & { id: number };

const CURSOR_TAG = 'n';
const COLUMNS = [
  'id',
  'webhook_id',
  'target',
  'event_type',
  'run_id',
  'audit_seq',
  'event',
  'created_at',
  'state',
  'attempts',
  'next_at',
  'last_status',
  'last_error',
  'delivered_at',
] as const;
const COLUMN_LIST = sql.raw(COLUMNS.join(', '));

export class OutboxRows implements OutboxStore {
  constructor(private readonly conn: Connection) {}

  async enqueueInTransaction(trx: StoreTransaction, rows: readonly NewDelivery[]): Promise<void> {
    if (!rows.length) return;
    await trx
      .insertInto('notify_outbox')
      .values(
        rows.map((r) => ({
          webhook_id: newWebhookId(r.now),
          target: r.target,
          event_type: r.event.type,
          run_id: r.event.run?.id ?? null,
          audit_seq: r.event.auditSeq,
          event: JSON.stringify(r.event),
          created_at: r.now,
          state: 'pending' as const,
          attempts: 0,
          next_at: r.now,
        })),
      )
      // Once per (target, event): an append retried after an ambiguous commit adds nothing.
      .onConflict((oc) => oc.columns(['target', 'audit_seq']).doNothing())
      .execute();
  }

  async claim(target: string, owner: string, limit: number, now: number, leaseUntil: number): Promise<OutboxRow[]> {
    const skipLocked = sql.raw(this.conn.engine === 'postgres' ? 'FOR UPDATE SKIP LOCKED' : '');
    // Rows of one run go out in order, one at a time: a run's finish never overtakes its
    // start (Slack updates the start message in place).
    const { rows } = await sql<Row>`
      UPDATE notify_outbox SET lease_owner = ${owner}, lease_until = ${leaseUntil}
      WHERE id IN (
        SELECT o.id FROM notify_outbox o
        WHERE o.target = ${target} AND o.state = 'pending' AND o.next_at <= ${now}
          AND (o.lease_until IS NULL OR o.lease_until < ${now})
          AND NOT EXISTS (
            SELECT 1 FROM notify_outbox p
            WHERE o.run_id IS NOT NULL AND p.run_id = o.run_id AND p.target = o.target AND p.state = 'pending' AND p.id < o.id)
        ORDER BY o.id LIMIT ${limit} ${skipLocked})
        AND state = 'pending' AND (lease_until IS NULL OR lease_until < ${now})
      RETURNING ${COLUMN_LIST}`.execute(this.conn.db);
    return rows.sort((a, b) => a.id - b.id).map(toRow);
  }

  async settle(id: number, owner: string, o: { state: DeliveryState; status?: number; error?: string; nextAt?: number; now: number }): Promise<boolean> {
    const r = await this.conn.db
      .updateTable('notify_outbox')
      .set({
        state: o.state,
        attempts: sql<number>`attempts + 1`,
        last_status: o.status ?? null,
        last_error: o.error ?? null,
        next_at: o.nextAt ?? sql<number>`next_at`,
        delivered_at: o.state === 'delivered' ? o.now : sql<number | null>`delivered_at`,
        lease_owner: null,
        lease_until: null,
      })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async nextDue(target: string): Promise<number | undefined> {
    const greatest = this.conn.engine === 'postgres' ? 'GREATEST' : 'MAX';
    const { rows } = await sql<{ due: number | null }>`
      SELECT MIN(${sql.raw(greatest)}(next_at, COALESCE(lease_until, 0))) AS due FROM notify_outbox
      WHERE target = ${target} AND state = 'pending'`.execute(this.conn.db);
    const due = rows[0]?.due;
    return due === null || due === undefined ? undefined : Number(due);
  }

  async list(q: DeliveryQuery): Promise<{ items: OutboxRow[]; nextCursor?: string }> {
    let query = this.conn.db.selectFrom('notify_outbox').select(COLUMNS);
    if (q.state !== undefined) query = query.where('state', '=', q.state);
    if (q.runId !== undefined) query = query.where('run_id', '=', q.runId);
    if (q.target !== undefined) query = query.where('target', '=', q.target);
    if (q.cursor) query = query.where('id', '<', decodeCursor(CURSOR_TAG, q.cursor));
    const rows = await query
      .orderBy('id', 'desc')
      .limit(q.limit + 1)
      .execute();
    const items = rows.slice(0, q.limit).map(toRow);
    const last = items.at(-1);
    return rows.length > q.limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.id) } : { items };
  }

  async get(id: number): Promise<OutboxRow | undefined> {
    const row = await this.conn.db.selectFrom('notify_outbox').select(COLUMNS).where('id', '=', id).executeTakeFirst();
    return row && toRow(row);
  }

  async redeliver(id: number, now: number): Promise<OutboxRow | undefined> {
    const row = await this.conn.db
      .updateTable('notify_outbox')
      .set({ state: 'pending', next_at: now, created_at: now, last_error: null })
      .where('id', '=', id)
      .where((eb) => eb.or([eb('lease_until', 'is', null), eb('lease_until', '<', now)]))
      .returning(COLUMNS)
      .executeTakeFirst();
    return row && toRow(row);
  }

  async redeliverFailed(target: string | undefined, now: number): Promise<number> {
    let q = this.conn.db.updateTable('notify_outbox').set({ state: 'pending', next_at: now, created_at: now, last_error: null }).where('state', '=', 'failed');
    if (target !== undefined) q = q.where('target', '=', target);
    const r = await q.executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  async countOwed(): Promise<Array<{ target: string; state: 'pending' | 'failed'; count: number }>> {
    const rows = await this.conn.db
      .selectFrom('notify_outbox')
      .select(['target', 'state', (eb) => eb.fn.countAll<number | string>().as('n')])
      .where('state', 'in', ['pending', 'failed'])
      .groupBy(['target', 'state'])
      .execute();
    return rows.map((r) => ({ target: r.target, state: r.state as 'pending' | 'failed', count: Number(r.n) }));
  }

  async prune(before: number): Promise<number> {
    return this.conn.db.transaction().execute(async (trx) => {
      const r = await trx.deleteFrom('notify_outbox').where('state', '<>', 'pending').where('created_at', '<', before).executeTakeFirst();
      await sql`DELETE FROM notify_slack_messages WHERE run_id NOT IN (SELECT run_id FROM notify_outbox WHERE run_id IS NOT NULL)`.execute(trx);
      await trx
        .deleteFrom('run_tokens')
        .where((eb) => eb.or([eb('expires_at', '<', before), eb('revoked_at', '<', before)]))
        .execute();
      return Number(r.numDeletedRows);
    });
  }

  async slackMessage(runId: string, target: string): Promise<{ channel: string; ts: string } | undefined> {
    return this.conn.db
      .selectFrom('notify_slack_messages')
      .select(['channel', 'ts'])
      .where('run_id', '=', runId)
      .where('target', '=', target)
      .executeTakeFirst();
  }

  async saveSlackMessage(runId: string, target: string, channel: string, ts: string): Promise<void> {
    await this.conn.db
      .insertInto('notify_slack_messages')
      .values({ run_id: runId, target, channel, ts })
      .onConflict((oc) => oc.columns(['run_id', 'target']).doUpdateSet({ channel, ts }))
      .execute();
  }
}

const sha256 = (s: string) => createHash('sha256').update(s).digest();

export class RunTokenRows implements RunTokenStore {
  constructor(private readonly conn: Connection) {}

  async mint(runId: string, expiresAt: number): Promise<string> {
    const token = `${RUN_TOKEN_PREFIX}${randomBytes(32).toString('base64url')}`;
    await this.conn.db
      .insertInto('run_tokens')
      .values({ run_id: runId, hash: sha256(token), expires_at: expiresAt, revoked_at: null })
      .execute();
    return token;
  }

  async verify(runId: string, token: string, now: number): Promise<boolean> {
    if (!token.startsWith(RUN_TOKEN_PREFIX) || token.length > 100) return false;
    const row = await this.conn.db.selectFrom('run_tokens').select(['hash', 'expires_at', 'revoked_at']).where('run_id', '=', runId).executeTakeFirst();
    if (!row || row.revoked_at !== null || row.expires_at <= now) return false;
    return timingSafeEqual(row.hash, sha256(token));
  }

  async revokeInTransaction(trx: StoreTransaction, runId: string, now: number): Promise<void> {
    await trx.updateTable('run_tokens').set({ revoked_at: now }).where('run_id', '=', runId).where('revoked_at', 'is', null).execute();
  }
}

function toRow(r: Row): OutboxRow {
  return {
    id: Number(r.id),
    webhookId: r.webhook_id,
    target: r.target,
    eventType: r.event_type as NotifyEventType,
    ...(r.run_id ? { runId: r.run_id } : {}),
    auditSeq: Number(r.audit_seq),
    event: JSON.parse(r.event) as NotifyEvent,
    createdAt: Number(r.created_at),
    state: r.state,
    attempts: r.attempts,
    nextAt: Number(r.next_at),
    ...(r.last_status !== null ? { lastStatus: r.last_status } : {}),
    ...(r.last_error !== null ? { lastError: r.last_error } : {}),
    ...(r.delivered_at !== null ? { deliveredAt: Number(r.delivered_at) } : {}),
  };
}
