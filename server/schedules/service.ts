// What people ask of schedules through the API: list them, read a Task's slot history,
// suspend and resume. Everyone who may run in a Task's Deployment may see and suspend
// or resume its schedule (auditors may read); suspension and resumption are audited
// with who and why. Suspension lives in the slot store, so re-applying the Task from
// git (its spec.schedule.suspend unchanged) does not undo it.
import type { ScheduleSummary } from '../../protocol/schedules.js';
import type { AuditEventInput } from '../../protocol/api.js';
import { forbidden, namespaceNotServed, notFound, unavailable } from '../errors.js';
import type { RequestContext, ScheduleService } from '../services.js';
import { nextSlot } from './cron.js';
import type { TaskRef } from './names.js';
import type { ScheduledTask } from './scheduler.js';
import type { SlotStore } from './store.js';

export interface ScheduleServiceDeps {
  namespaces: readonly string[];
  /** undefined: the Task catalog has not listed every namespace yet. */
  tasks: () => ScheduledTask[] | undefined;
  store: SlotStore;
  /** May this person run in the Deployment now (the Task's own access list, once Tasks have one)? */
  mayRun: (ctx: RequestContext, namespace: string, deployment: string) => Promise<boolean>;
  appendAudit: (event: AuditEventInput) => Promise<unknown>;
  clock?: () => Date;
}

export function createScheduleService(deps: ScheduleServiceDeps): ScheduleService {
  const served = new Set(deps.namespaces);
  const clock = deps.clock ?? (() => new Date());

  const known = () => {
    const tasks = deps.tasks();
    if (!tasks) throw unavailable('the Tasks are still being read from the cluster', 'try again in a few seconds');
    return tasks;
  };

  const mayRead = async (ctx: RequestContext, t: ScheduledTask) => ctx.auditor === true || deps.mayRun(ctx, t.namespace, t.deployment);

  /** The scheduled Task, if the caller may see it; 404 otherwise (names do not leak). */
  async function find(ctx: RequestContext, ref: TaskRef): Promise<ScheduledTask> {
    if (!served.has(ref.namespace)) throw namespaceNotServed(ref.namespace, deps.namespaces);
    const t = known().find((x) => x.namespace === ref.namespace && x.name === ref.name);
    if (!t || !(await mayRead(ctx, t))) throw notFound(`task ${ref.namespace}/${ref.name} has no schedule, or does not exist`);
    return t;
  }

  async function summary(t: ScheduledTask): Promise<ScheduleSummary> {
    const state = await deps.store.taskState(t);
    const [last] = await deps.store.history(t, { limit: 1 });
    const s = t.schedule.ok ? t.schedule.schedule : undefined;
    const next = s && !s.suspend && !state.suspension ? nextSlot(s, state.cursor && state.cursor > clock() ? state.cursor : clock()) : undefined;
    return {
      namespace: t.namespace,
      task: t.name,
      deployment: t.deployment,
      cron: s?.cron ?? '',
      timeZone: s?.timeZone ?? '',
      concurrencyPolicy: s?.concurrencyPolicy ?? 'Forbid',
      suspendedBySpec: s?.suspend ?? false,
      suspension: state.suspension,
      nextScheduleTime: next?.toISOString(),
      lastSlot: last,
      lastSuccessfulTime: state.lastSuccess,
      missedSlots: state.missedTotal,
      error: t.schedule.ok ? undefined : t.schedule.error,
    };
  }

  async function mayChange(ctx: RequestContext, t: ScheduledTask, what: string) {
    if (await deps.mayRun(ctx, t.namespace, t.deployment)) return;
    throw forbidden(
      `you may see the schedule of task ${t.namespace}/${t.name} but not ${what} it: that takes the right to run in deployment ${t.namespace}/${t.deployment}`,
    );
  }

  async function record(event: AuditEventInput) {
    try {
      await deps.appendAudit(event);
    } catch {
      throw unavailable('the audit log cannot be written, so nothing was changed', 'an operator must fix the audit store; see the server log');
    }
  }

  return {
    async list(ctx, namespace) {
      if (namespace && !served.has(namespace)) return [];
      const out: ScheduleSummary[] = [];
      for (const t of known()) {
        if (!served.has(t.namespace) || (namespace && t.namespace !== namespace)) continue;
        if (await mayRead(ctx, t)) out.push(await summary(t));
      }
      return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.task.localeCompare(b.task));
    },

    async history(ctx, ref, opts) {
      await find(ctx, ref);
      return deps.store.history(ref, opts);
    },

    async suspend(ctx, ref, reason) {
      const t = await find(ctx, ref);
      await mayChange(ctx, t, 'suspend');
      // Audited first: a suspension nobody can account for is worse than none.
      await record({
        type: 'schedule.suspended',
        actor: ctx.identity,
        client: ctx.client,
        namespace: t.namespace,
        deployment: t.deployment,
        task: t.name,
        reason,
      });
      await deps.store.setSuspension(t, { at: clock().toISOString(), by: ctx.identity.login, reason });
      return summary(t);
    },

    async resume(ctx, ref) {
      const t = await find(ctx, ref);
      await mayChange(ctx, t, 'resume');
      const before = (await deps.store.taskState(t)).suspension;
      await record({
        type: 'schedule.resumed',
        actor: ctx.identity,
        client: ctx.client,
        namespace: t.namespace,
        deployment: t.deployment,
        task: t.name,
        message: before ? `suspended by ${before.by} since ${before.at}: ${before.reason}` : 'was not suspended with oddjob suspend',
      });
      await deps.store.setSuspension(t, undefined);
      return summary(t);
    },
  };
}
