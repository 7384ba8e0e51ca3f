// The scheduler: on the replica that leads (one at a time), a tick loop that turns due
// slots into records and runs. Every decision is the pure core's (plan.ts, slot.ts);
// every slot is a row in the store before anything runs; the launch itself goes
// through the same path as a person's run (runs/service.ts: re-read the Deployment,
// check consent, audit before create, deterministic Job name).
//
// A new leader (or a restarted server) picks up where the last one stopped: the
// per-Task cursor says what was decided, open slots say what is still going, and a
// slot that was decided but never launched is launched now. Every launch of a slot's
// attempt is claimed in the store first (one winner, whichever scheduler decided it),
// so overlapping ticks or a leader change mid-tick never audit a slot twice; a claim
// whose holder died mid-launch is taken over once it is stale (made before this leader
// began leading, or two minutes old), and the launcher then continues that launch
// rather than requesting a second run.
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { TERMINAL_STATUSES, type RunStatus } from '../../protocol/api.js';
import { metrics } from '../metrics.js';
import { nextSlot } from './cron.js';
import { slotJobName, slotRunId, type TaskRef } from './names.js';
import { decideConcurrency, planDue } from './plan.js';
import { slotOutcome } from './slot.js';
import type { Schedule, ScheduleResult } from './spec.js';
import type { NewSlot, ScheduleSlot, SlotStore } from './store.js';

/** A Task with a `spec.schedule`, as the Task catalog sees it now. */
export interface ScheduledTask extends TaskRef {
  deployment: string;
  schedule: ScheduleResult;
}

export interface SlotLaunch {
  task: TaskRef;
  nominal: Date;
  attempt: number;
  runId: string;
  jobName: string;
  params: Schedule['params'];
}

export type LaunchResult = { ok: true; runId: string } | { ok: false; denied: string } | { ok: false; failed: string; retryable: boolean };

/** What the scheduler needs from the run machinery. */
export interface SlotLauncher {
  /**
   * Reads the Task and its Deployment as they are now, checks that the Deployment still
   * consents, audits, creates the Job with `jobName`. A denial is audited by the launcher.
   * If a run with `runId` already exists (a launch cut short by a restart, or one whose
   * Job the API server refused after the run was recorded), answers ok: the slot's run is
   * followed, and its own events (run.failed) report how it ended.
   */
  launch(req: SlotLaunch): Promise<LaunchResult>;
  /** Cancels a run of an earlier slot (concurrencyPolicy Replace), audited as the schedule. */
  cancel(runId: string, task: TaskRef, why: string): Promise<void>;
  /** The run's state as the run store has it; `created`: its Job was created. */
  run(runId: string): Promise<{ status: RunStatus; startedAt?: string; finishedAt?: string; message?: string; created?: boolean } | undefined>;
  /** Deletes the Job (and pod) of a finished run; its record and output stay. */
  deleteJob(runId: string): Promise<void>;
}

/** What is written to the Task's status subresource after a change. */
export interface TaskScheduleStatus {
  lastScheduleTime?: string;
  nextScheduleTime?: string;
  lastSuccessfulTime?: string;
  missedSlots: number;
  /** The newest slot's outcome, for the Scheduled condition. */
  lastSlot?: Pick<ScheduleSlot, 'nominal' | 'state' | 'message'>;
  suspended: boolean;
  /** Why the schedule fires nothing (it does not validate, or the Task needs approval). */
  invalid?: string;
}

export interface SchedulerDeps {
  /** The scheduled Tasks now; undefined while the catalog has not listed them all (the tick waits). */
  tasks: () => ScheduledTask[] | undefined;
  store: SlotStore;
  launcher: SlotLauncher;
  logger: Logger;
  /** The fake clock of tests; Date otherwise. */
  clock?: () => Date;
  /** Schedules only while this says so (the Lease holder). */
  isLeader?: () => boolean;
  /** Audits what is not a run (missed slots); must not throw. */
  recordMissed?: (task: TaskRef, slots: Date[], more: boolean) => Promise<void>;
  /** Audits a slot that started no run: refused (consent withdrawn) or failed to launch; must not throw. */
  recordRefused?: (task: TaskRef & { deployment?: string }, nominal: Date, outcome: 'denied' | 'failed', why: string) => Promise<void>;
  writeStatus?: (task: TaskRef, status: TaskScheduleStatus) => Promise<void>;
  tickMs?: number;
  /** Who claims slots (this replica); unique per scheduler by default. */
  replica?: string;
}

interface Decision {
  task: ScheduledTask;
  schedule: Schedule;
  cursor: Date;
  slots: NewSlot[];
  more: boolean;
}

/** Finished slots past historyLimit whose Jobs are looked at after each slot (older ones were pruned before). */
const PRUNE_WINDOW = 10;

/** Slot launches in flight at once within one tick. */
const LAUNCH_CONCURRENCY = 32;

/** How long a slot whose launch failed for a passing reason waits before the next try. */
const RETRY_LAUNCH_MS = 10_000;

/**
 * A launch claim older than this whose attempt has not started is taken over: its holder
 * stopped mid-launch. Far longer than a launch takes (API reads, an audit commit, a create),
 * so a live holder is done long before.
 */
export const CLAIM_STALE_MS = 120_000;

export class Scheduler {
  private readonly clock: () => Date;
  private readonly isLeader: () => boolean;
  private readonly replica: string;
  private timer?: NodeJS.Timeout;
  private ticking?: Promise<void>;
  private stopped = true;
  /** Per Task: the next slot after its cursor, so a tick with nothing due costs a comparison. */
  private readonly nextDue = new Map<string, { key: string; at: number | undefined }>();
  /** Slots being launched by this process right now, and when a failed launch may be retried. */
  private readonly inFlight = new Set<string>();
  private readonly retryAt = new Map<string, number>();
  private readonly seenStart = new Set<string>();
  private readonly lastSuccess = new Map<string, number>();
  /** The error last written to each invalid schedule's status, so it is written once, not every tick. */
  private readonly reportedInvalid = new Map<string, string>();
  /**
   * When this scheduler began leading (lead()). A launch claim older than that was made
   * by a scheduler that has stopped leading since — the Lease is only granted once the
   * last holder's renew deadline has passed, and its work is stopped by then (or it
   * died) — so it is taken over at once rather than after CLAIM_STALE_MS: a leader
   * killed mid-launch costs its slots a failover, not two minutes.
   */
  private leadingSince?: number;

  constructor(private readonly deps: SchedulerDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.isLeader = deps.isLeader ?? (() => true);
    this.replica = deps.replica ?? `${hostname()}/${process.pid}/${randomUUID().slice(0, 8)}`;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    const loop = () => {
      if (this.stopped) return;
      this.ticking = this.tick()
        .catch((err: unknown) => this.deps.logger.error({ err }, 'scheduler tick failed; trying again next tick'))
        .finally(() => {
          if (!this.stopped) this.timer = setTimeout(loop, this.deps.tickMs ?? 1000);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.ticking;
  }

  /**
   * The scheduler as leader-only work (server/leader's whileLeading): schedules from the
   * store's state until `signal` aborts, and resolves once the last tick is done, so the
   * next leader never overlaps this one's launches.
   */
  async lead(signal: AbortSignal): Promise<void> {
    if (signal.aborted) return;
    await this.load();
    this.leadingSince = this.clock().getTime();
    this.start();
    await new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
    await this.stop();
    this.leadingSince = undefined;
  }

  /** Seconds since each scheduled Task's last successful slot (for the gauge). */
  sinceLastSuccess(now = this.clock()): Array<{ task: string; seconds: number }> {
    return [...this.lastSuccess].map(([task, at]) => ({ task, seconds: Math.max(0, (now.getTime() - at) / 1000) }));
  }

  /** Each scheduled Task's next undecided slot (ms), for the "schedule has not fired" alert; empty when not leading. */
  nextSlots(): Array<{ task: string; at: number }> {
    if (!this.isLeader()) return [];
    return [...this.nextDue].flatMap(([task, d]) => (d.at === undefined ? [] : [{ task, at: d.at }]));
  }

  /** One pass: decide what came due, launch it, follow what is running. Exposed for tests and the bench. */
  async tick(): Promise<void> {
    if (!this.isLeader()) return;
    const now = this.clock();
    const tasks = this.deps.tasks();
    // Not yet known is not "deleted": deciding now would deny every open slot.
    if (!tasks) return;
    const byKey = new Map(tasks.map((t) => [key(t), t]));
    // A Task deleted (or unscheduled) leaves no series behind in the gauges.
    for (const k of this.nextDue.keys()) if (!byKey.has(k)) this.nextDue.delete(k);
    for (const k of this.lastSuccess.keys()) if (!byKey.has(k)) this.lastSuccess.delete(k);
    const decisions: Decision[] = [];
    for (const k of this.reportedInvalid.keys()) if (!byKey.has(k)) this.reportedInvalid.delete(k);
    const invalid: Array<() => Promise<void>> = [];
    for (const task of tasks) {
      if (!task.schedule.ok) {
        const error = task.schedule.error;
        if (this.reportedInvalid.get(key(task)) !== error) invalid.push(() => this.invalidStatus(task, error));
        continue;
      }
      this.reportedInvalid.delete(key(task));
      const d = await this.decide(task, task.schedule.schedule, now);
      if (d) decisions.push(d);
    }
    // One transaction (one fsync) for every Task due in this tick, not one each.
    const inserted = decisions.length ? await this.deps.store.decideMany(decisions, now) : [];
    const launches: Array<() => Promise<void>> = [];
    for (const [i, d] of decisions.entries()) await this.decided(d, inserted[i]!, now, launches);
    // Slots of different Tasks due together start together: one after the other, the
    // thousandth of a busy minute would wait for 999 API round trips and audit commits
    // (which group-commit when they come together).
    await pool(launches, LAUNCH_CONCURRENCY, (err) =>
      this.deps.logger.error({ err }, 'could not start a schedule slot; it stays open and is followed next tick'),
    );
    // Status writes (API calls of their own) wait until every due slot has its Job.
    const statuses = decisions.map((d) => () => this.status(d.task, d.schedule)).concat(invalid);
    await pool(statuses, LAUNCH_CONCURRENCY, (err) => this.deps.logger.warn({ err }, 'could not write a schedule status'));
    await this.follow(byKey, now);
  }

  /** What a Task's due slots become, or undefined when nothing is due (the common tick). */
  private async decide(task: ScheduledTask, schedule: Schedule, now: Date): Promise<Decision | undefined> {
    const k = key(task);
    const cached = this.nextDue.get(k);
    const cacheKey = `${schedule.cron}\u0000${schedule.timeZone}`;
    if (cached && cached.key === cacheKey && (cached.at === undefined || cached.at > now.getTime())) return undefined;

    const state = await this.deps.store.taskState(task);
    if (!state.cursor) {
      // First sight of this schedule: it starts now. Slots before a Task existed
      // (or before this store did) were never owed.
      this.nextDue.set(k, { key: cacheKey, at: nextSlot(schedule, now)?.getTime() });
      return { task, schedule, cursor: now, slots: [], more: false };
    }
    const suspended = schedule.suspend || state.suspension !== undefined;
    const plan = planDue({ schedule, cursor: state.cursor, now, suspended });
    this.nextDue.set(k, { key: cacheKey, at: nextSlot(schedule, plan.cursor)?.getTime() });
    if (!plan.run && plan.missed.length === 0 && plan.skipped.length === 0) return undefined;

    const why = state.suspension ? `suspended by ${state.suspension.by}: ${state.suspension.reason}` : 'suspended: spec.schedule.suspend is true';
    const slots: NewSlot[] = [
      ...plan.missed.map((nominal) => ({
        nominal,
        state: 'missed' as const,
        message: plan.run ? 'not started: a later slot was due when the scheduler looked, and only the latest runs' : 'not started inside startingDeadline',
      })),
      ...plan.skipped.map((nominal) => ({ nominal, state: 'skipped' as const, message: why })),
      ...(plan.run ? [{ nominal: plan.run, state: 'scheduled' as const }] : []),
    ];
    return { task, schedule, cursor: plan.cursor, slots, more: plan.more };
  }

  /** Records what one Task's decision inserted, and queues the launch of its run slot. */
  private async decided(d: Decision, inserted: ScheduleSlot[], now: Date, launches: Array<() => Promise<void>>): Promise<void> {
    const missed = inserted.filter((s) => s.state === 'missed');
    for (const s of inserted) if (s.state !== 'scheduled') metrics.scheduleSlots.inc({ outcome: s.state });
    if (missed.length) {
      this.deps.logger.warn({ task: key(d.task), missed: missed.length, more: d.more }, 'schedule slots missed');
      await this.deps.recordMissed?.(
        d.task,
        missed.map((s) => new Date(s.nominal)),
        d.more,
      );
    }
    const run = inserted.find((s) => s.state === 'scheduled');
    if (run) launches.push(() => this.launch(d.task, d.schedule, run, 0, now));
  }

  /** Follows open slots: runs that ended, retries, and slots decided but not launched (a restart, a new leader). */
  private async follow(tasks: Map<string, ScheduledTask>, now: Date): Promise<void> {
    for (const slot of await this.deps.store.open()) {
      if (this.inFlight.has(slotKey(slot))) continue;
      const task = tasks.get(key({ namespace: slot.namespace, name: slot.task }));
      if (slot.state === 'scheduled') await this.followScheduled(slot, task, now);
      else await this.followStarted(slot, task, now);
    }
  }

  private async followScheduled(slot: ScheduleSlot, task: ScheduledTask | undefined, now: Date): Promise<void> {
    const ref = { namespace: slot.namespace, name: slot.task };
    if ((this.retryAt.get(slotKey(slot)) ?? 0) > now.getTime()) return;
    if (!task?.schedule.ok) {
      // Said where the slot would have reported (the Deployment's targets, while the Task
      // still names one), and audited: a slot never ends without a trace.
      const why = task ? 'the Task is no longer valid' : 'the Task no longer exists or has no schedule';
      await this.finish(ref, slot, 'denied', why);
      return this.deps.recordRefused?.(task ?? ref, new Date(slot.nominal), 'denied', why);
    }
    return this.launch(task, task.schedule.schedule, slot, slot.attempt, now);
  }

  private async followStarted(slot: ScheduleSlot, task: ScheduledTask | undefined, now: Date): Promise<void> {
    const run = slot.runId ? await this.deps.launcher.run(slot.runId) : undefined;
    if (!run) return;
    if (!this.observe(slot, run)) return;
    const schedule = task?.schedule.ok ? task.schedule.schedule : undefined;
    const outcome = slotOutcome(run.status, slot.attempt, schedule?.retries ?? 0, run.created !== false);
    if (outcome === 'retry' && task && schedule) return this.launch(task, schedule, slot, slot.attempt + 1, now);
    const failed = outcome !== 'succeeded';
    const ref = { namespace: slot.namespace, name: slot.task };
    await this.finish(
      ref,
      slot,
      failed ? 'failed' : 'succeeded',
      failed ? `run ${slot.runId} ended ${run.status}${run.message ? `: ${run.message}` : ''}` : undefined,
      run.finishedAt,
    );
    if (schedule && task) {
      await this.pruneJobs(task, schedule);
      await this.status(task, schedule);
    }
  }

  /**
   * historyLimit: keeps the Jobs of the newest `succeeded` succeeded and `failed` failed
   * slots, deletes the older ones' Jobs (their records and output stay in oddjob). Looks
   * at a bounded window, so a Task with a long history costs the same as a new one.
   */
  private async pruneJobs(task: ScheduledTask, schedule: Schedule): Promise<void> {
    const { succeeded, failed } = schedule.historyLimit;
    const recent = await this.deps.store.history(task, { limit: succeeded + failed + PRUNE_WINDOW });
    const kept = { succeeded: 0, failed: 0 };
    for (const slot of recent) {
      if (slot.state !== 'succeeded' && slot.state !== 'failed') continue;
      if (kept[slot.state]++ < (slot.state === 'succeeded' ? succeeded : failed)) continue;
      for (const runId of slot.runIds) {
        try {
          await this.deps.launcher.deleteJob(runId);
        } catch (err) {
          this.deps.logger.warn({ err: (err as Error).message, task: key(task), run: runId }, 'could not delete the Job of an old slot (historyLimit)');
        }
      }
    }
  }

  /** Counts the run's start delay (once) and duration (at its end); true once it has ended. */
  private observe(slot: ScheduleSlot, run: { status: RunStatus; startedAt?: string; finishedAt?: string }): boolean {
    const seen = `${slotKey(slot)}/${slot.attempt}`;
    if (run.startedAt && !this.seenStart.has(seen)) {
      this.seenStart.add(seen);
      // The SLO is about the slot starting on time: retries would only blur it.
      if (slot.attempt === 0) metrics.scheduleStartDelay.observe(Math.max(0, (Date.parse(run.startedAt) - Date.parse(slot.nominal)) / 1000));
    }
    if (!TERMINAL_STATUSES.includes(run.status)) return false;
    this.seenStart.delete(seen);
    if (run.startedAt && run.finishedAt) {
      metrics.scheduleRunDuration.observe({ status: run.status }, (Date.parse(run.finishedAt) - Date.parse(run.startedAt)) / 1000);
    }
    return true;
  }

  private async launch(task: ScheduledTask, schedule: Schedule, slot: ScheduleSlot, attempt: number, now: Date): Promise<void> {
    const id = slotKey(slot);
    const nominal = new Date(slot.nominal);
    this.inFlight.add(id);
    try {
      // No ghosts: a slot not started inside startingDeadline is missed, however it got
      // late (an outage, launches that kept failing, a long tick), never started late.
      if (slot.state === 'scheduled' && schedule.startingDeadline !== undefined && now.getTime() - nominal.getTime() > schedule.startingDeadline * 1000) {
        const late = Math.round((now.getTime() - nominal.getTime()) / 1000);
        await this.finish(task, slot, 'missed', `not started inside startingDeadline (${schedule.startingDeadline}s): ${late}s late`);
        return await this.deps.recordMissed?.(task, [nominal], false);
      }
      if (!(await this.claimLaunch(task, slot, attempt, now))) return;
      if (attempt === 0 || slot.state === 'scheduled') {
        const others = (await this.deps.store.open(task)).filter((s) => s.state === 'started' && s.nominal !== slot.nominal);
        const decision = decideConcurrency(
          schedule.concurrencyPolicy,
          others.flatMap((s) => (s.runId ? [s.runId] : [])),
        );
        if (decision.action === 'skip') return await this.finish(task, slot, 'skipped', decision.reason);
        if (decision.action === 'replace') {
          for (const runId of decision.cancel) {
            await this.deps.launcher.cancel(runId, task, `concurrencyPolicy Replace: the slot of ${slot.nominal} is due`);
          }
        }
      }
      const result = await this.deps.launcher.launch({
        task,
        nominal,
        attempt,
        runId: slotRunId(task, nominal, attempt),
        jobName: slotJobName(task, nominal, attempt),
        params: schedule.params,
      });
      if (result.ok) {
        this.retryAt.delete(id);
        await this.deps.store.update(task, slot.nominal, { state: 'started', attempt, runId: result.runId, startedAt: slot.startedAt ?? now.toISOString() });
        this.deps.logger.info({ task: key(task), slot: slot.nominal, attempt, run: result.runId }, 'schedule slot started');
      } else if ('denied' in result) {
        await this.finish(task, slot, 'denied', result.denied);
        await this.deps.recordRefused?.(task, nominal, 'denied', result.denied);
      } else if (result.retryable && slot.state === 'scheduled') {
        // The API server or the audit store is away for now: the slot stays scheduled
        // and is tried again until it starts or its deadline passes (then: missed).
        this.retryAt.set(id, now.getTime() + RETRY_LAUNCH_MS);
        // The next try (here or on another replica) claims it afresh; if this one got as
        // far as the audit, the launcher answers with that run or refuses, never twice.
        await this.deps.store.release(task, slot.nominal, attempt, this.replica);
        this.deps.logger.warn({ task: key(task), slot: slot.nominal, why: result.failed }, 'could not launch a schedule slot; will retry');
      } else {
        await this.finish(task, slot, 'failed', result.failed);
        await this.deps.recordRefused?.(task, nominal, 'failed', result.failed);
      }
    } finally {
      this.inFlight.delete(id);
    }
  }

  /** Whether this scheduler launches this attempt of the slot (one winner in the store). */
  private async claimLaunch(task: ScheduledTask, slot: ScheduleSlot, attempt: number, now: Date): Promise<boolean> {
    // Leadership can end mid-tick: the slot then stays open for the next leader.
    if (!this.isLeader()) return false;
    const staleBefore = Math.max(now.getTime() - CLAIM_STALE_MS, this.leadingSince ?? -Infinity);
    const claim = await this.deps.store.claim(task, slot.nominal, attempt, this.replica, now, new Date(staleBefore));
    // false: another scheduler (or an overlapping tick) launches this attempt.
    if (claim === 'taken-over') {
      this.deps.logger.warn({ task: key(task), slot: slot.nominal, attempt }, 'took over a stale launch claim (its holder stopped mid-launch)');
    }
    return claim !== false;
  }

  private async finish(
    task: TaskRef,
    slot: ScheduleSlot,
    state: 'succeeded' | 'failed' | 'missed' | 'skipped' | 'denied',
    message?: string,
    finishedAt?: string,
  ) {
    const at = finishedAt ?? this.clock().toISOString();
    await this.deps.store.update(task, slot.nominal, { state, message, finishedAt: at });
    this.retryAt.delete(slotKey(slot));
    metrics.scheduleSlots.inc({ outcome: state });
    if (state === 'succeeded') this.lastSuccess.set(key(task), Date.parse(at));
    this.deps.logger.info({ task: key(task), slot: slot.nominal, state, message }, 'schedule slot ended');
  }

  private async status(task: ScheduledTask, schedule: Schedule): Promise<void> {
    if (!this.deps.writeStatus) return;
    try {
      const state = await this.deps.store.taskState(task);
      const [last] = await this.deps.store.history(task, { limit: 1 });
      const next = state.cursor && nextSlot(schedule, state.cursor);
      await this.deps.writeStatus(task, {
        lastScheduleTime: last?.nominal,
        nextScheduleTime: next?.toISOString(),
        lastSuccessfulTime: state.lastSuccess,
        missedSlots: state.missedTotal,
        lastSlot: last && { nominal: last.nominal, state: last.state, message: last.message },
        suspended: schedule.suspend || state.suspension !== undefined,
      });
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, task: key(task) }, 'could not write the schedule status of a task');
    }
  }

  private async invalidStatus(task: ScheduledTask, error: string): Promise<void> {
    if (!this.deps.writeStatus) return;
    try {
      const state = await this.deps.store.taskState(task);
      const [last] = await this.deps.store.history(task, { limit: 1 });
      await this.deps.writeStatus(task, {
        lastScheduleTime: last?.nominal,
        lastSuccessfulTime: state.lastSuccess,
        missedSlots: state.missedTotal,
        suspended: state.suspension !== undefined,
        invalid: error,
      });
      this.reportedInvalid.set(key(task), error);
    } catch (err) {
      this.deps.logger.warn({ err: (err as Error).message, task: key(task) }, 'could not write the schedule status of a task');
    }
  }

  /** Loads what the gauge reports from the store (after a restart or a leader change). */
  async load(): Promise<void> {
    for (const s of await this.deps.store.listTaskStates()) if (s.lastSuccess) this.lastSuccess.set(`${s.namespace}/${s.task}`, Date.parse(s.lastSuccess));
  }
}

const key = (t: TaskRef) => `${t.namespace}/${t.name}`;
const slotKey = (s: ScheduleSlot) => `${s.namespace}/${s.task}@${s.nominal}`;

/** Runs `jobs` with at most `n` at a time; one job's failure is reported, not the others'. */
async function pool(jobs: Array<() => Promise<void>>, n: number, onError: (err: unknown) => void): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) await jobs[next++]!().catch(onError);
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
}
