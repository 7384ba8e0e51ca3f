// Notifications, wired: the audit hook that turns events into outbox rows (in the
// append's transaction), the delivery worker, the delivery log and redelivery, and
// run progress posted with a run's own credential.
import type { Logger } from 'pino';
import type { AuditEvent, Delivery, DeliveryListQuery, Run } from '../../protocol/api.js';
import type { StoreTransaction } from '../store/notify.js';
import { setOutboxSource } from '../metrics.js';
import { DeliveryWorker } from './deliver.js';
import { NO_NOTIFICATIONS, type NotifyConfig } from './config.js';
import { notifyEventFromAudit, isRunEnd, eventTypeOf } from './events.js';
import type { NewDelivery, OutboxRow, OutboxStore } from './outbox.js';
import { NOTIFY_ANNOTATION, routeNotifications, targetWants, type Routing } from './route.js';
import type { RunTokenStore } from './run-tokens.js';

export interface NotificationsDeps {
  /** Outbox rows commit with the audit event (onAudit gets the append's transaction). */
  outbox: OutboxStore;
  tokens: RunTokenStore;
  config?: NotifyConfig;
  /** The run as stored (routing, argv, owner) for an event about it, read in the append's transaction. */
  lookupRun: (id: string, trx: StoreTransaction) => Promise<Run | undefined>;
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

  constructor(private readonly deps: NotificationsDeps) {
    this.config = deps.config ?? NO_NOTIFICATIONS;
    this.outbox = deps.outbox;
    this.tokens = deps.tokens;
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
   * The audit hook: runs inside the append's transaction, for each batch of events.
   * Routing mistakes are logged, not thrown (the events must be recorded regardless); a
   * failed insert throws, and then the events are not recorded either, so nothing is
   * ever on record but unsent. Returns what to do after the commit: wake the workers.
   */
  async onAudit(trx: StoreTransaction, events: readonly AuditEvent[]): Promise<(() => void) | void> {
    const rows: NewDelivery[] = [];
    for (const event of events) {
      if (!eventTypeOf(event)) continue;
      const now = Date.now();
      try {
        const run = event.runId ? await this.deps.lookupRun(event.runId, trx) : undefined;
        const n = notifyEventFromAudit(event, run);
        // The event's own routing (approvals and schedules carry the Task's or the
        // Deployment's targets), else the run's, fixed when it was requested.
        const names = event.notify ?? run?.notify ?? [];
        if (n && names.length) {
          for (const name of names) {
            const t = this.config.targets.get(name);
            if (t && targetWants(t, n.type)) rows.push({ target: t.name, event: n, now });
          }
        }
        if (n && isRunEnd(n.type) && event.runId) await this.tokens.revokeInTransaction(trx, event.runId, now);
      } catch (err) {
        // A failed statement aborts a PostgreSQL transaction: the batch fails (and is
        // refused to its callers) rather than committing events whose rows are missing.
        if (isDatabaseError(err)) throw err;
        this.deps.logger.error({ err, seq: event.seq }, 'cannot route the notifications of an audit event');
      }
    }
    if (!rows.length) return;
    await this.outbox.enqueueInTransaction(trx, rows);
    const targets = new Set(rows.map((r) => r.target));
    return () => targets.forEach((t) => this.worker.wake(t));
  }

  private pruneTimer: NodeJS.Timeout | undefined;
  private unsetOutboxSource = () => {};

  start(): void {
    this.worker.start();
    // The delivery log is bounded by age (delivery.keep); hourly, like output retention.
    const prune = () =>
      this.outbox.prune(Date.now() - this.config.delivery.keepSeconds * 1000).then(
        (n) => n && this.deps.logger.info({ deliveries: n, keepSeconds: this.config.delivery.keepSeconds }, 'pruned settled notification deliveries'),
        (err: unknown) => this.deps.logger.error({ err }, 'could not prune the notification delivery log (will retry)'),
      );
    void prune();
    this.unsetOutboxSource = setOutboxSource(() => this.outbox.countOwed());
    this.pruneTimer = setInterval(() => void prune(), 3_600_000);
    this.pruneTimer.unref();
  }

  stop(): Promise<void> {
    clearInterval(this.pruneTimer);
    this.unsetOutboxSource();
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

  /** Every failed delivery (of one target, or all) due again now; how many. */
  async redeliverFailed(target: string | undefined): Promise<number> {
    const n = await this.outbox.redeliverFailed(target, Date.now());
    for (const name of target === undefined ? this.config.targets.keys() : [target]) this.worker.wake(name);
    return n;
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

/** Errors from the database driver, as opposed to routing code: those must fail the append. */
function isDatabaseError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && (/^SQLITE_/.test(code) || /^[0-9A-Z]{5}$/.test(code));
}
