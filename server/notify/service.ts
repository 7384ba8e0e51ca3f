// Notifications, wired: the audit hook that turns events into outbox rows (in the
// append's transaction), the delivery worker, the delivery log and redelivery, and
// run progress posted with a run's own credential.
import type { Logger } from 'pino';
import type { AuditEvent, Delivery, DeliveryListQuery, Run } from '../../protocol/api.js';
import type { Database } from '../audit/db.js';
import { DeliveryWorker } from './deliver.js';
import { NO_NOTIFICATIONS, type NotifyConfig } from './config.js';
import { notifyEventFromAudit, isRunEnd, eventTypeOf } from './events.js';
import { SqliteOutbox, type OutboxRow, type OutboxStore } from './outbox.js';
import { NOTIFY_ANNOTATION, routeNotifications, targetWants, type Routing } from './route.js';
import { SqliteRunTokens, type RunTokenStore } from './run-tokens.js';

export interface NotificationsDeps {
  /** The audit log's connection: outbox rows commit with the audit event. */
  db: Database;
  config?: NotifyConfig;
  /** The run as stored (routing, argv, owner) for an event about it. */
  lookupRun: (id: string) => Run | undefined;
  publicUrl: () => string;
  logger: Logger;
  userAgent: string;
  idlePollMs?: number;
}

export class Notifications {
  readonly outbox: OutboxStore;
  readonly tokens: RunTokenStore;
  readonly config: NotifyConfig;
  private readonly worker: DeliveryWorker;
  private readonly sqliteTokens: SqliteRunTokens;
  private readonly sqliteOutbox: SqliteOutbox;

  constructor(private readonly deps: NotificationsDeps) {
    this.config = deps.config ?? NO_NOTIFICATIONS;
    this.sqliteOutbox = new SqliteOutbox(deps.db);
    this.outbox = this.sqliteOutbox;
    this.sqliteTokens = new SqliteRunTokens(deps.db);
    this.tokens = this.sqliteTokens;
    this.worker = new DeliveryWorker({
      store: this.outbox,
      targets: this.config.targets,
      settings: this.config.delivery,
      publicUrl: deps.publicUrl,
      logger: deps.logger,
      userAgent: deps.userAgent,
      idlePollMs: deps.idlePollMs,
    });
  }

  /** Notifications are configured (--notifications): runs get a progress credential. */
  get enabled(): boolean {
    return this.deps.config !== undefined;
  }

  /** Where a Deployment's runs report, from its oddjob.io/notify annotation. */
  routing(annotations: Record<string, string> | undefined): Routing {
    return routeNotifications(annotations?.[NOTIFY_ANNOTATION], this.config.targets);
  }

  /**
   * The audit hook: runs inside the append's transaction. Routing mistakes are logged,
   * not thrown (the event must be recorded regardless); a failed insert throws, and
   * then the event is not recorded either, so nothing is ever on record but unsent.
   */
  onAudit(event: AuditEvent): void {
    if (!eventTypeOf(event)) return;
    const now = Date.now();
    let rows: { target: string; event: NonNullable<ReturnType<typeof notifyEventFromAudit>>; now: number }[] = [];
    try {
      const run = event.runId ? this.deps.lookupRun(event.runId) : undefined;
      const n = notifyEventFromAudit(event, run);
      // The event's own routing (approvals and schedules carry the Task's or the
      // Deployment's targets), else the run's, fixed when it was requested.
      const names = event.notify ?? run?.notify ?? [];
      if (n && names.length) {
        rows = names
          .map((name) => this.config.targets.get(name))
          .filter((t) => t !== undefined && targetWants(t, n.type))
          .map((t) => ({ target: t!.name, event: n, now }));
      }
      if (n && isRunEnd(n.type) && event.runId) this.sqliteTokens.revokeInTransaction(event.runId, now);
    } catch (err) {
      this.deps.logger.error({ err, seq: event.seq }, 'cannot route the notifications of an audit event');
      return;
    }
    if (!rows.length) return;
    this.sqliteOutbox.enqueueInTransaction(rows);
    // After the commit (the transaction is synchronous): let the targets' workers look.
    setImmediate(() => rows.forEach((r) => this.worker.wake(r.target)));
  }

  private pruneTimer: NodeJS.Timeout | undefined;

  start(): void {
    this.worker.start();
    // The delivery log is bounded by age (delivery.keep); hourly, like output retention.
    const prune = () =>
      this.outbox.prune(Date.now() - this.config.delivery.keepSeconds * 1000).then(
        (n) => n && this.deps.logger.info({ deliveries: n, keepSeconds: this.config.delivery.keepSeconds }, 'pruned settled notification deliveries'),
        (err: unknown) => this.deps.logger.error({ err }, 'could not prune the notification delivery log (will retry)'),
      );
    void prune();
    this.pruneTimer = setInterval(() => void prune(), 3_600_000);
    this.pruneTimer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    return this.worker.stop();
  }

  async list(q: DeliveryListQuery): Promise<{ items: Delivery[]; nextCursor?: string }> {
    const page = await this.outbox.list(q);
    return { items: page.items.map(toDelivery), nextCursor: page.nextCursor };
  }

  /** Due again now with the same webhook id; undefined if there is no such delivery or it is in flight. */
  async redeliver(id: number): Promise<Delivery | undefined> {
    const row = await this.outbox.redeliver(id, Date.now());
    if (!row) return undefined;
    this.worker.wake(row.target);
    return toDelivery(row);
  }

  async get(id: number): Promise<Delivery | undefined> {
    const row = await this.outbox.get(id);
    return row && toDelivery(row);
  }
}

export function toDelivery(r: OutboxRow): Delivery {
  return {
    id: r.id,
    webhookId: r.webhookId,
    target: r.target,
    event: r.eventType,
    ...(r.runId ? { runId: r.runId } : {}),
    auditSeq: r.auditSeq,
    state: r.state,
    attempts: r.attempts,
    createdAt: new Date(r.createdAt).toISOString(),
    ...(r.state === 'pending' ? { nextAttemptAt: new Date(r.nextAt).toISOString() } : {}),
    ...(r.lastStatus !== undefined ? { lastStatus: r.lastStatus } : {}),
    ...(r.lastError !== undefined ? { lastError: r.lastError } : {}),
    ...(r.deliveredAt !== undefined ? { deliveredAt: new Date(r.deliveredAt).toISOString() } : {}),
  };
}
