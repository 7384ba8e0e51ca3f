// Runs the leader election (election.ts) against the Lease (k8s/lease.ts) and starts
// and stops the singleton work with it: work registered with whileLeading() runs on
// one replica at a time. Leading ends, and the work's AbortSignal fires, the moment
// the renew deadline passes without a successful renewal — on a timer of its own, so
// an API call that hangs cannot keep a cut-off leader working. On a graceful stop the
// lease is released, so another replica takes over within a retry period instead of
// a lease duration.
import { performance } from 'node:perf_hooks';
import { LeaseConflict, type LeaseClient } from '../k8s/lease.js';
import type { Logger } from '../logger.js';
import { metrics } from '../metrics.js';
import { type Action, type ElectionState, type LeaseTiming, isLeading, nextDelay, plan, releaseWrite, settle } from './election.js';

/**
 * Leader-only work. It starts when this replica starts leading and must stop when
 * `signal` aborts; if stopping takes time, return a promise that settles once it has.
 */
export type LeadingWork = (signal: AbortSignal) => void | Promise<void>;

export interface LeaderOptions {
  lease: LeaseClient;
  identity: string;
  timing: LeaseTiming;
  logger: Logger;
}

export class LeaderElector {
  private state: ElectionState = {};
  private leading = false;
  private readonly work: Array<{ name: string; run: LeadingWork }> = [];
  private current?: { controller: AbortController; done: Promise<unknown> };
  private tickTimer?: NodeJS.Timeout;
  private deadlineTimer?: NodeJS.Timeout;
  private tick?: Promise<void>;
  private stopped = false;
  private failing = false;
  private lastHolder?: string;
  private readonly log: Logger;

  constructor(private readonly opts: LeaderOptions) {
    this.log = opts.logger.child({ lease: opts.lease.description, identity: opts.identity });
  }

  /** Registers work that runs only while this replica leads (call before start). */
  whileLeading(name: string, run: LeadingWork): void {
    this.work.push({ name, run });
  }

  start(): void {
    this.log.info({ timing: this.opts.timing }, 'leader election: joining');
    this.schedule(0);
  }

  /** Whether this replica leads now (and so runs the singleton work). */
  isLeader(): boolean {
    return this.leading && isLeading(this.state, performance.now(), this.opts.timing);
  }

  /**
   * Stops taking part: stops the work (waiting up to the renew deadline for it), then
   * releases the lease if this replica still holds it, so a standby takes over at once.
   */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    clearTimeout(this.tickTimer);
    clearTimeout(this.deadlineTimer);
    const held = this.isLeader();
    if (this.leading) this.stopLeading('shutting down');
    // A standby has nothing to hand over: no waiting on an API server that may be away.
    if (!held) return;
    const { renewDeadlineMs, retryPeriodMs } = this.opts.timing;
    if (!(await within(this.current?.done ?? Promise.resolve(), renewDeadlineMs))) {
      this.log.warn('leader-only work did not stop in time; leaving the lease to expire instead of releasing it');
      return;
    }
    // A renewal still in flight would race the release for the same resourceVersion.
    await within(this.tick ?? Promise.resolve(), retryPeriodMs);
    await this.release().catch((err: unknown) => this.log.warn({ err }, 'could not release the lease; another replica takes over when it expires'));
  }

  private async release(): Promise<void> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const read = await this.opts.lease.get();
      if (!read || read.holder !== this.opts.identity) return;
      try {
        await this.opts.lease.update(releaseWrite(this.state, Date.now()), read.resourceVersion);
        this.log.info('released the lease');
        return;
      } catch (err) {
        if (!(err instanceof LeaseConflict)) throw err;
      }
    }
  }

  private schedule(ms: number): void {
    if (this.stopped) return;
    this.tickTimer = setTimeout(() => {
      this.tick = this.attempt().catch((err: unknown) => {
        this.log.error({ err }, 'leader election: unexpected failure (retrying)');
        this.schedule(this.opts.timing.retryPeriodMs);
      });
    }, ms);
    this.tickTimer.unref();
  }

  private async attempt(): Promise<void> {
    const { lease, identity, timing } = this.opts;
    let read: Awaited<ReturnType<LeaseClient['get']>> | 'error';
    try {
      read = await lease.get();
      this.recovered();
    } catch (err) {
      this.failed(err);
      read = 'error';
    }
    if (this.stopped) return;
    const planned = plan(this.state, read, { identity, now: performance.now(), wallNow: Date.now(), timing });
    this.state = planned.state;
    const action: Action = planned.action;
    if (action.kind === 'lost') this.stopLeading(`the lease is now held by ${action.holder || 'nobody'}`);
    if (action.kind === 'standby' && action.holder !== this.lastHolder) this.log.info({ holder: action.holder }, 'standing by: another replica leads');
    if (action.kind === 'standby') this.lastHolder = action.holder;
    if (action.kind === 'create' || action.kind === 'acquire' || action.kind === 'renew') {
      const sentAt = performance.now();
      let result: Parameters<typeof settle>[1];
      try {
        result = { ok: action.kind === 'create' ? await lease.create(action.write) : await lease.update(action.write, action.resourceVersion) };
        this.recovered();
      } catch (err) {
        // A lost race is how optimistic concurrency says "someone else got there first".
        if (err instanceof LeaseConflict) this.log.debug({ err }, `${action.kind}: lost the race`);
        else this.failed(err);
        result = { failed: true };
      }
      if (this.stopped) return;
      this.state = settle(this.state, result, { sentAt, now: performance.now() });
    }
    this.sync();
    this.schedule(nextDelay(action, performance.now(), timing, Math.random()));
  }

  /** Starts or stops leading to match the state, and arms the deadline for the next renewal. */
  private sync(): void {
    if (this.stopped) return;
    const now = performance.now();
    const should = isLeading(this.state, now, this.opts.timing);
    if (should && !this.leading) this.startLeading();
    if (!should && this.leading) this.stopLeading(`no successful renewal in ${this.opts.timing.renewDeadlineMs / 1000}s (the renew deadline)`);
    clearTimeout(this.deadlineTimer);
    if (should && this.state.renewedAt !== undefined) {
      this.deadlineTimer = setTimeout(() => this.sync(), Math.max(0, this.state.renewedAt + this.opts.timing.renewDeadlineMs - now));
      this.deadlineTimer.unref();
    }
  }

  private startLeading(): void {
    this.leading = true;
    this.lastHolder = this.opts.identity;
    metrics.leader.set(1);
    metrics.leaderTransitions.inc({ direction: 'started' });
    this.log.info({ work: this.work.map((w) => w.name) }, 'started leading: singleton work runs on this replica');
    const controller = new AbortController();
    const done = Promise.allSettled(
      this.work.map(async (w) => {
        try {
          await w.run(controller.signal);
        } catch (err) {
          this.log.error({ err, work: w.name }, 'leader-only work failed');
        }
      }),
    );
    this.current = { controller, done };
  }

  private stopLeading(why: string): void {
    this.leading = false;
    metrics.leader.set(0);
    metrics.leaderTransitions.inc({ direction: 'stopped' });
    this.current?.controller.abort(new Error(why));
    (this.stopped ? this.log.info : this.log.warn).call(this.log, { why }, 'stopped leading: singleton work stopped on this replica');
  }

  // While the API server fails, say so once, not every retry period.
  private failed(err: unknown): void {
    if (!this.failing) this.log.warn({ err }, 'leader election: the lease could not be read or written (retrying)');
    else this.log.debug({ err }, 'leader election: still failing');
    this.failing = true;
  }

  private recovered(): void {
    if (this.failing) this.log.info('leader election: the lease is reachable again');
    this.failing = false;
  }
}

/** The identity a replica writes into the lease: the pod name in a cluster, host and pid elsewhere. */
export function replicaIdentity(env: NodeJS.ProcessEnv, hostname: string, pid: number): string {
  return env.POD_NAME || `${hostname}_${pid}`;
}

/** Whether `p` settled within `ms`. */
async function within(p: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<false>((resolve) => {
    timer = setTimeout(() => resolve(false), ms);
  });
  try {
    return await Promise.race([p.then(() => true), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}
