// PURE: Task objects (as the Task catalog holds them) → the scheduled Tasks the
// scheduler and `oddjob schedules` work on. A Task without spec.schedule is not
// scheduled; one with an invalid schedule is listed with its error and never fires.
import { parseSchedule } from './spec.js';
import type { ScheduledTask } from './scheduler.js';

export interface TaskLike {
  metadata?: { name?: string; namespace?: string };
  spec?: unknown;
}

export function scheduledTasks(objects: Iterable<TaskLike>): ScheduledTask[] {
  const out: ScheduledTask[] = [];
  for (const o of objects) {
    const spec = o.spec as { deployment?: unknown; schedule?: unknown } | undefined;
    const { name, namespace } = o.metadata ?? {};
    if (!name || !namespace || spec?.schedule === undefined) continue;
    out.push({ namespace, name, deployment: typeof spec.deployment === 'string' ? spec.deployment : '', schedule: parseSchedule(spec.schedule) });
  }
  return out;
}
