// The delivery worker: one small loop per target, so a slow, failing or hanging
// target only ever holds its own slots (at most `concurrency` attempts, each cut off
// at `timeout`) and never delays a run, a stream or another target. Rows are leased,
// not locked: a replica that dies mid-attempt leaves a lease that runs out, and
// another replica (or this one, restarted) sends the row again, with the same id.
import { hostname } from 'node:os';
import { randomBytes } from 'node:crypto';
import type { Logger } from 'pino';
import { metrics } from '../metrics.js';
import type { DeliverySettings, NotifyTarget } from './config.js';
import type { OutboxRow, OutboxStore } from './outbox.js';
import { sendDelivery, type SendResult } from './send.js';

export interface WorkerOptions {
  store: OutboxStore;
  targets: ReadonlyMap<string, NotifyTarget>;
  settings: DeliverySettings;
  publicUrl: () => string;
  logger: Logger;
  userAgent: string;
  /** How often an idle target looks for rows other replicas enqueued. */
  idlePollMs?: number;
  random?: () => number;
}

/**
 * The delay before attempt n+1 (n ≥ 1 attempts made): exponential from `base`, capped,
 * with "equal jitter" (half fixed, half random) so a receiver that comes back is not
 * hit by every sender at once, and no retry is ever immediate.
 */
export function retryDelayMs(attempts: number, settings: Pick<DeliverySettings, 'retryBaseSeconds' | 'retryCapSeconds'>, random = Math.random): number {
  const ceiling = Math.min(settings.retryCapSeconds * 1000, settings.retryBaseSeconds * 1000 * 2 ** Math.min(Math.max(0, attempts - 1), 40));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

export class DeliveryWorker {
  readonly owner = `${hostname()}-${process.pid}-${randomBytes(4).toString('hex')}`;
  private readonly inFlight = new Map<string, number>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly pumping = new Set<string>();
  private readonly again = new Set<string>();
  private readonly attempts = new Set<Promise<void>>();
  /** Targets that answered 429: nothing is sent to them before this time (ms). */
  private readonly pausedUntil = new Map<string, number>();
  private stopped = true;
  /** Cuts attempts in flight short on stop: shutdown must not wait out a hanging target. */
  private stopping = new AbortController();

  constructor(private readonly o: WorkerOptions) {}

  start(): void {
    this.stopped = false;
    this.stopping = new AbortController();
    for (const name of this.o.targets.keys()) this.wake(name);
  }

  /** Stops claiming; waits (bounded by the attempt timeout) for attempts in flight. */
  async stop(): Promise<void> {
    this.stopped = true;
    this.stopping.abort();
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
    await Promise.allSettled([...this.attempts]);
  }

  /** Something may be due for `target` now (after an enqueue or a redelivery). */
  wake(target: string): void {
    if (this.stopped || !this.o.targets.has(target)) return;
    this.schedule(target, 0);
  }

  private get leaseMs(): number {
    // Well past one attempt's time limit: a live worker always settles before its lease ends.
    return this.o.settings.timeoutSeconds * 2000 + 5000;
  }

  private schedule(target: string, delayMs: number) {
    if (this.stopped) return;
    const existing = this.timers.get(target);
    if (existing) clearTimeout(existing);
    const t = setTimeout(
      () => {
        this.timers.delete(target);
        void this.pump(target);
      },
      Math.max(0, Math.min(delayMs, 2 ** 31 - 1)),
    );
    t.unref();
    this.timers.set(target, t);
  }

  private async pump(name: string): Promise<void> {
    if (this.stopped) return;
    // One claim per target at a time; a wake during a claim runs one more afterwards.
    if (this.pumping.has(name)) {
      this.again.add(name);
      return;
    }
    this.pumping.add(name);
    const idle = this.o.idlePollMs ?? 2000;
    try {
      const target = this.o.targets.get(name)!;
      const paused = (this.pausedUntil.get(name) ?? 0) - Date.now();
      if (paused > 0) {
        this.schedule(name, paused);
        return;
      }
      const free = this.o.settings.concurrency - (this.inFlight.get(name) ?? 0);
      if (free <= 0) return; // an attempt ending pumps again
      const now = Date.now();
      const rows = await this.o.store.claim(name, this.owner, free, now, now + this.leaseMs);
      for (const row of rows) this.startAttempt(target, row);
      if (rows.length === 0 && !this.timers.has(name)) {
        const due = await this.o.store.nextDue(name);
        this.schedule(name, due === undefined ? idle : Math.min(idle, Math.max(50, due - Date.now())));
      }
    } catch (err) {
      this.o.logger.error({ err, target: name }, 'notification outbox: cannot claim deliveries (will retry)');
      this.schedule(name, idle);
    } finally {
      this.pumping.delete(name);
      if (this.again.delete(name)) this.schedule(name, 0);
    }
  }

  private startAttempt(target: NotifyTarget, row: OutboxRow) {
    this.inFlight.set(target.name, (this.inFlight.get(target.name) ?? 0) + 1);
    const p = this.attempt(target, row)
      .catch((err: unknown) => this.o.logger.error({ err, delivery: row.id, target: target.name }, 'notification delivery crashed'))
      .finally(() => {
        this.attempts.delete(p);
        this.inFlight.set(target.name, (this.inFlight.get(target.name) ?? 1) - 1);
        this.schedule(target.name, 0);
      });
    this.attempts.add(p);
  }

  private async attempt(target: NotifyTarget, row: OutboxRow): Promise<void> {
    const { store, settings, logger } = this.o;
    const slackThread = target.kind === 'slack-api' && row.runId ? await store.slackMessage(row.runId, target.name) : undefined;
    const started = Date.now();
    const result: SendResult = await sendDelivery(target, row, {
      publicUrl: this.o.publicUrl(),
      timeoutMs: settings.timeoutSeconds * 1000,
      userAgent: this.o.userAgent,
      now: () => new Date(),
      slackThread,
      signal: this.stopping.signal,
    });
    const now = Date.now();
    const log = { delivery: row.id, webhookId: row.webhookId, target: target.name, event: row.eventType, run: row.runId, attempt: row.attempts + 1 };
    if (result.ok) {
      if (result.slack && row.runId) await store.saveSlackMessage(row.runId, target.name, result.slack.channel, result.slack.ts);
      const settled = await store.settle(row.id, this.owner, { state: 'delivered', status: result.status, now });
      metrics.notifyDeliveries.inc({ target: target.name, outcome: 'delivered' });
      metrics.notifyDeliverySeconds.observe({ target: target.name }, (now - started) / 1000);
      logger.info({ ...log, status: result.status, settled }, 'notification delivered');
      return;
    }
    const attempts = row.attempts + 1;
    if (result.status === 429 && result.retryAfterMs !== undefined) {
      // A rate limit is the target's (Slack: per method and workspace), not this row's:
      // every attempt before Retry-After would only be refused again and prolong it.
      this.pausedUntil.set(target.name, Math.max(this.pausedUntil.get(target.name) ?? 0, now + result.retryAfterMs));
    }
    const expired = now - row.createdAt >= settings.maxAgeSeconds * 1000;
    const giveUp = expired || result.permanent === true;
    const nextAt = now + Math.max(result.retryAfterMs ?? 0, retryDelayMs(attempts, settings, this.o.random));
    await store.settle(row.id, this.owner, {
      state: giveUp ? 'failed' : 'pending',
      status: result.status,
      error: result.permanent ? `${result.error} (not retried: fix the target, then redeliver)` : result.error,
      nextAt: giveUp ? undefined : nextAt,
      now,
    });
    metrics.notifyDeliveries.inc({ target: target.name, outcome: result.permanent ? 'refused' : expired ? 'gave_up' : 'retry' });
    if (result.permanent) {
      logger.error(
        { ...log, error: result.error },
        `notification refused by the target for a reason retrying cannot fix: it is marked failed; fix the target (token, channel, URL), restart, then \`oddjob notifications redeliver --failed --target ${target.name}\``,
      );
    } else if (expired) logger.error({ ...log, error: result.error }, `notification given up after ${attempts} attempts (older than the delivery maxAge)`);
    else logger.warn({ ...log, error: result.error, retryInMs: nextAt - now }, 'notification not delivered; will retry');
  }
}
