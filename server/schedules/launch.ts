// The scheduler's way into the run machinery: a slot becomes a Task run request under
// the schedule's own identity (schedule:<namespace>/<task>) with the schedule's params,
// and goes through runs/service.ts createScheduledRun like a person's run of the Task —
// the Task and the Deployment re-read from the API server, the Deployment's consent
// re-checked, audit before create — with the slot's fixed run id and Job name.
import { TERMINAL_STATUSES, type Run } from '../../protocol/api.js';
import type { TaskRunRequest } from '../../protocol/tasks.js';
import { ServiceError } from '../errors.js';
import type { ManagedRunService } from '../runs/service.js';
import type { RequestContext } from '../services.js';
import { decideScheduledRun } from './consent.js';
import { scheduleActor, type TaskRef } from './names.js';
import type { LaunchResult, SlotLaunch, SlotLauncher } from './scheduler.js';

export interface SlotLauncherDeps {
  runs: Pick<ManagedRunService, 'createScheduledRun' | 'cancelRun'>;
  /** The run store's record (no access check: the scheduler reads its own runs). */
  readRun: (runId: string) => Promise<Run | undefined>;
  /** What the audit log has of this run id (asked only when it has no run record). */
  requested: (runId: string) => Promise<EarlierLaunch>;
  /** Deletes a Job with its pods (a Job already gone is not an error). */
  deleteJob: (namespace: string, name: string, uid: string | undefined) => Promise<void>;
  githubOrg?: string;
  /** false: every launch reads the Deployment and neighbours itself (the bench's comparison). */
  shareReads?: boolean;
}

/** An earlier launch of a run id without a run record: none, cut short after its audit, or ended (its Job could not be built). */
export type EarlierLaunch = 'none' | 'interrupted' | { failed: string };

export function scheduleContext(task: TaskRef): RequestContext {
  return { identity: { login: scheduleActor(task), teams: [] }, client: { kind: 'server', agent: 'oddjob-scheduler' } };
}

/**
 * How long a read of a Deployment or a namespace's neighbours is shared by launches: the
 * slots due in one tick (every Task on one Deployment at 02:30, say) read it once, not
 * once each, and each launch still sees the Deployment as it was within this long.
 */
const SHARE_MS = 1000;

export function createSlotLauncher(deps: SlotLauncherDeps): SlotLauncher {
  const shared = new Map<string, { at: number; value: Promise<unknown> }>();
  function share<T>(key: string, read: () => Promise<T>): Promise<T> {
    const now = Date.now();
    const hit = shared.get(key);
    if (hit && now - hit.at < SHARE_MS) return hit.value as Promise<T>;
    for (const [k, v] of shared) if (now - v.at >= SHARE_MS) shared.delete(k);
    const value = read();
    shared.set(key, { at: now, value });
    // A failed read is not shared: the next launch tries for itself.
    value.catch(() => {
      if (shared.get(key)?.value === value) shared.delete(key);
    });
    return value;
  }
  return {
    async launch(slot: SlotLaunch): Promise<LaunchResult> {
      const { task } = slot;
      // An earlier launch of this attempt may have been cut short (its leader killed)
      // after its audit and before its run record — so before anything was created: a Job
      // is only created after the record. That launch is continued under the same run id
      // and Job name, audited again as continuing it, so the slot still runs, once.
      let note: string | undefined;
      try {
        const earlier = (await deps.readRun(slot.runId)) ? 'none' : await deps.requested(slot.runId);
        if (typeof earlier === 'object') return { ok: false, failed: `an earlier launch of this slot failed: ${earlier.failed}`, retryable: false };
        if (earlier === 'interrupted') {
          note = `continues the launch of this slot that stopped after its audit, before creating anything (the earlier run.requested of ${slot.runId})`;
        }
      } catch (err) {
        return { ok: false, failed: `could not read the run store: ${(err as Error).message}`, retryable: true };
      }
      const req: TaskRunRequest = {
        namespace: task.namespace,
        task: task.name,
        params: slot.params,
        reason: `schedule ${task.namespace}/${task.name}, slot ${slot.nominal.toISOString()}${slot.attempt ? `, retry ${slot.attempt}` : ''}`,
      };
      try {
        const run = await deps.runs.createScheduledRun(scheduleContext(task), req, {
          runId: slot.runId,
          jobName: slot.jobName,
          ...(note ? { note } : {}),
          share: deps.shareReads === false ? undefined : share,
          authorize: (d) => decideScheduledRun(`${task.namespace}/${d.metadata?.name ?? ''}`, d.metadata?.annotations, deps.githubOrg),
        });
        return { ok: true, runId: run.id };
      } catch (err) {
        // The launch got as far as recording the run (the API server then refused its
        // Job, say): the slot has a run, and it failed. It is followed like any run of
        // the slot — its run.failed is the notification, `retries` apply — rather than
        // reported a second time as a slot that started no run (schedule.failed).
        const recorded = await deps.readRun(slot.runId).catch(() => undefined);
        if (recorded) return { ok: true, runId: recorded.id };
        if (err instanceof ServiceError) {
          // forbidden: consent withdrawn, or the Task needs approval (audited as run.denied);
          // not_found: the Task or the Deployment is gone; task_invalid: the Task no longer
          // validates. None gets better by trying again.
          if (err.kind === 'forbidden' || err.kind === 'not_found' || err.code === 'task_invalid') return { ok: false, denied: err.message };
          return { ok: false, failed: err.message, retryable: err.kind === 'unavailable' };
        }
        return { ok: false, failed: (err as Error).message, retryable: true };
      }
    },

    async cancel(runId, task) {
      try {
        await deps.runs.cancelRun(scheduleContext(task), runId);
      } catch (err) {
        // Already ended: nothing to replace.
        if (!(err instanceof ServiceError && err.kind === 'conflict')) throw err;
      }
    },

    async run(runId) {
      const run = await deps.readRun(runId);
      return run && { ...run, created: run.jobUid !== undefined };
    },

    async deleteJob(runId) {
      const run = await deps.readRun(runId);
      // Only finished runs: a running one is cancelled (and audited), never deleted here.
      if (!run || !TERMINAL_STATUSES.includes(run.status)) return;
      await deps.deleteJob(run.namespace, run.jobName, run.jobUid);
    },
  };
}
