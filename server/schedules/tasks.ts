// PURE: a Task object (as the Task catalog holds it) → the scheduled Task the scheduler
// and `oddjob schedules` work on. A Task without spec.schedule is not scheduled; one
// whose schedule cannot be honoured is listed with its error and never fires:
//   - the schedule itself does not validate (spec.ts);
//   - the Task says `approval: required`: a slot has nobody to approve it, so the
//     schedule is refused rather than running without the second person (fail closed);
//   - the schedule's params do not satisfy the Task's declarations (checked as a
//     person's values would be, so the error names the parameter).
// A Task that is itself invalid keeps its schedule: its slots are recorded `denied`
// with the Task's problem (runs/service.ts refuses it at each slot), never a silent gap.
import { ParamError, resolveTaskCommand } from '../tasks/resolve.js';
import { validateTaskSpec } from '../tasks/spec.js';
import type { ScheduledTask } from './scheduler.js';
import { parseSchedule, type ScheduleResult } from './spec.js';

export interface TaskLike {
  metadata?: { name?: string; namespace?: string };
  spec?: unknown;
}

export const APPROVAL_REFUSED =
  'spec.schedule: this Task has approval: required (four-eyes), and a scheduled run has nobody to approve it, so the schedule is refused; ' +
  'remove spec.schedule (run it by hand: oddjob run, then oddjob approve) or the approval requirement';

/** One Task → its schedule as the scheduler sees it; undefined when it has none. */
export function scheduledTask(o: TaskLike, defaultOrg?: string): ScheduledTask | undefined {
  const spec = o.spec as { deployment?: unknown; schedule?: unknown; approval?: unknown } | undefined;
  const { name, namespace } = o.metadata ?? {};
  if (!name || !namespace || spec?.schedule === undefined) return undefined;
  const deployment = typeof spec.deployment === 'string' ? spec.deployment : '';
  return { namespace, name, deployment, schedule: checkAgainstTask(parseSchedule(spec.schedule), spec, defaultOrg) };
}

export function scheduledTasks(objects: Iterable<TaskLike>, defaultOrg?: string): ScheduledTask[] {
  const out: ScheduledTask[] = [];
  for (const o of objects) {
    const t = scheduledTask(o, defaultOrg);
    if (t) out.push(t);
  }
  return out;
}

function checkAgainstTask(result: ScheduleResult, spec: { approval?: unknown }, defaultOrg?: string): ScheduleResult {
  if (spec.approval === 'required') return { ok: false, error: APPROVAL_REFUSED };
  if (!result.ok) return result;
  const task = validateTaskSpec(spec, defaultOrg);
  if (!task.ok) return result;
  try {
    resolveTaskCommand(task.task, result.schedule.params);
  } catch (err) {
    if (err instanceof ParamError) return { ok: false, error: `spec.schedule.params: ${err.message}` };
    throw err;
  }
  return result;
}
