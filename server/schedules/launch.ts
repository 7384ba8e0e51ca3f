// The scheduler's way into the run machinery: a slot becomes a run request under the
// schedule's own identity (schedule:<namespace>/<task>) and goes through
// runs/service.ts createScheduledRun like a person's run — re-read Deployment, consent, audit
// before create — with the slot's fixed run id and Job name.
import { TERMINAL_STATUSES, type Run, type RunRequest } from '../../protocol/api.js';
import { ServiceError } from '../errors.js';
import type { ManagedRunService } from '../runs/service.js';
import type { RequestContext } from '../services.js';
import { decideScheduledRun } from './consent.js';
import { scheduleActor, type TaskRef } from './names.js';
import type { LaunchResult, SlotLaunch, SlotLauncher } from './scheduler.js';

/** A Task read now, its command resolved with the schedule's params; or why it cannot run. */
export type ResolvedSlotTask =
  { ok: true; deployment: string; container?: string; command: string[]; timeoutSeconds?: number; generation?: number } | { ok: false; problem: string };

export interface SlotLauncherDeps {
  runs: Pick<ManagedRunService, 'createScheduledRun' | 'cancelRun'>;
  /** The run store's record (no access check: the scheduler reads its own runs). */
  readRun: (runId: string) => Promise<Run | undefined>;
  /** Whether the audit log has run.requested for this run id. */
  requested: (runId: string) => Promise<boolean>;
  /** Deletes a Job with its pods (a Job already gone is not an error). */
  deleteJob: (namespace: string, name: string, uid: string | undefined) => Promise<void>;
  /** Reads the Task from the API server (not a cache) and resolves its params; undefined: it is gone. */
  resolveTask: (task: TaskRef, params: SlotLaunch['params']) => Promise<ResolvedSlotTask | undefined>;
  githubOrg?: string;
  /** false: every launch reads the Deployment and neighbours itself (the bench's comparison). */
  shareReads?: boolean;
}

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
      let resolved: ResolvedSlotTask | undefined;
      try {
        resolved = await deps.resolveTask(task, slot.params);
      } catch (err) {
        return { ok: false, failed: `could not read task ${task.namespace}/${task.name}: ${(err as Error).message}`, retryable: true };
      }
      if (!resolved) return { ok: false, denied: `task ${task.namespace}/${task.name} no longer exists` };
      if (!resolved.ok) return { ok: false, denied: `task ${task.namespace}/${task.name} is not valid: ${resolved.problem}` };
      // An earlier launch of this attempt (cut short: killed, or failed after the audit)
      // may have recorded run.requested without a run record. Requesting it again would
      // audit one slot twice; the slot fails instead, saying why.
      try {
        if (!(await deps.readRun(slot.runId)) && (await deps.requested(slot.runId))) {
          return {
            ok: false,
            failed: `run ${slot.runId} of this slot was requested (audited) by an earlier launch that stopped before creating its Job; not requested twice`,
            retryable: false,
          };
        }
      } catch (err) {
        return { ok: false, failed: `could not read the run store: ${(err as Error).message}`, retryable: true };
      }
      const where = `${task.namespace}/${resolved.deployment}`;
      const req: RunRequest = {
        namespace: task.namespace,
        deployment: resolved.deployment,
        container: resolved.container,
        command: resolved.command,
        reason: `schedule ${task.namespace}/${task.name}, slot ${slot.nominal.toISOString()}${slot.attempt ? `, retry ${slot.attempt}` : ''}`,
        interactive: false,
        tty: false,
        noSidecars: false,
        timeoutSeconds: resolved.timeoutSeconds,
      };
      try {
        const run = await deps.runs.createScheduledRun(scheduleContext(task), req, {
          runId: slot.runId,
          jobName: slot.jobName,
          share: deps.shareReads === false ? undefined : share,
          authorize: (d) => decideScheduledRun(where, d.metadata?.annotations, deps.githubOrg),
        });
        return { ok: true, runId: run.id };
      } catch (err) {
        if (err instanceof ServiceError) {
          // forbidden: consent withdrawn or the owner's rules refuse it (audited as run.denied);
          // not_found: the Deployment is gone. Neither gets better by trying again.
          if (err.kind === 'forbidden' || err.kind === 'not_found') return { ok: false, denied: err.message };
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
      return deps.readRun(runId);
    },

    async deleteJob(runId) {
      const run = await deps.readRun(runId);
      // Only finished runs: a running one is cancelled (and audited), never deleted here.
      if (!run || !TERMINAL_STATUSES.includes(run.status)) return;
      await deps.deleteJob(run.namespace, run.jobName, run.jobUid);
    },
  };
}
