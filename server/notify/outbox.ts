// The notification outbox: one row per (event, target), written in the same
// transaction as the audit event that causes it (AuditLog's onAppend hook), so an
// event on record is an event that will be delivered, and a failed append notifies
// nobody. Delivery workers claim rows with a lease, so with several replicas one of
// them sends each row; a row whose worker died is claimed again when its lease runs out.
//
// The rows live in the store (server/store/notify.ts, both engines); this is the
// interface the workers, the API and the CLI use.
import { randomBytes } from 'node:crypto';
import type { StoreTransaction } from '../store/notify.js';
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
  /** Inside the audit append's transaction (its handle); throws to fail the append. */
  enqueueInTransaction(trx: StoreTransaction, rows: readonly NewDelivery[]): Promise<void>;
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
  /** Every failed delivery (of one target, or all) due again now, each with its own webhook id; how many. */
  redeliverFailed(target: string | undefined, now: number): Promise<number>;
  /** Deliveries still owed (pending) or given up (failed), by target: the metric operators alert on. */
  countOwed(): Promise<Array<{ target: string; state: 'pending' | 'failed'; count: number }>>;
  /**
   * Deletes settled deliveries (delivered or given up) created before `before`, and the
   * Slack message ids and run credentials nothing refers to any more. Pending ones stay,
   * whatever their age: they are still owed. Returns the deliveries deleted.
   */
  prune(before: number): Promise<number>;
  slackMessage(runId: string, target: string): Promise<{ channel: string; ts: string } | undefined>;
  saveSlackMessage(runId: string, target: string, channel: string, ts: string): Promise<void>;
}

/** Standard Webhooks message ids are opaque; this one is sortable by creation and random after that. */
export function newWebhookId(now: number): string {
  return `msg_${now.toString(36).padStart(9, '0')}${randomBytes(10).toString('hex')}`;
}
