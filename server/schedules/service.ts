// What people ask of schedules through the API: list them, read a Task's slot history,
// suspend and resume. Who may run a Task may see and suspend or resume its schedule —
// the Task's own allowedTeams/allowedUsers when it has them, else its Deployment's, both
// read at each request (tasks/access.ts decides); auditors may read.
// Suspension and resumption are audited with who and why, and so is a refusal. Suspension
// lives in the slot store, so re-applying the Task from git (its spec.schedule.suspend
// unchanged) does not undo it.
import type { ScheduleSummary } from '../../protocol/schedules.js';
import type { AuditEventInput } from '../../protocol/api.js';
import { forbidden, namespaceNotServed, notFound, unavailable } from '../errors.js';
import type { Decision } from '../policy/decide.js';
import type { RequestContext, ScheduleService } from '../services.js';
import { decideScheduleAccess, taskDeploymentName } from '../tasks/access.js';
import { nextSlot } from './cron.js';
import type { TaskRef } from './names.js';
import type { ScheduledTask } from './scheduler.js';
import type { SlotStore } from './store.js';

export interface ScheduleServiceDeps {
  namespaces: readonly string[];
  /** undefined: the Task catalog has not listed every namespace yet. */
  tasks: () => ScheduledTask[] | undefined;
  store: SlotStore;
  /** The Task's spec as the API server has it now; undefined when it is gone. Throws when it cannot be read. */
  readTask: (namespace: string, name: string) => Promise<{ spec?: unknown } | undefined>;
  /** Every Task of a namespace now: one read for a listing. */
  readTasks: (namespace: string) => Promise<Array<{ metadata?: { name?: string }; spec?: unknown }>>;
  /**
   * The Deployment's annotations now; null when it is gone. Throws when it cannot be read.
   * `fresh`: from the API server itself (a change); else the Deployment watch may answer
   * while it is live (a listing: no API call per row, as for runs).
   */
  readDeployment: (namespace: string, name: string, fresh: boolean) => Promise<{ annotations?: Record<string, string> } | null>;
  defaultOrg?: string;
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

  /**
   * The Tasks and Deployments as they are now, each read once per request: a listing
   * reads each namespace's Tasks in one call and Deployments from the watch while it is
   * live; a single Task and its Deployment are read from the API server.
   */
  function reader(listing: boolean) {
    const namespaces = new Map<string, Promise<Map<string, unknown>>>();
    const deployments = new Map<string, Promise<{ annotations?: Record<string, string> } | null>>();
    const once = <T>(m: Map<string, Promise<T>>, key: string, read: () => Promise<T>) => {
      let p = m.get(key);
      if (!p) m.set(key, (p = read()));
      return p;
    };
    return {
      async spec(ns: string, name: string): Promise<unknown> {
        if (!listing) return (await deps.readTask(ns, name))?.spec;
        const specs = await once(namespaces, ns, async () => new Map((await deps.readTasks(ns)).map((o) => [o.metadata?.name ?? '', o.spec ?? {}])));
        return specs.get(name);
      },
      deployment: (ns: string, name: string) => once(deployments, `${ns}/${name}`, () => deps.readDeployment(ns, name, !listing)),
    };
  }
  type Reader = ReturnType<typeof reader>;

  /** The decision for `action` on the Task as it is now; `gone` when the Task no longer exists. */
  async function decide(ctx: RequestContext, t: ScheduledTask, action: 'read' | 'change', now: Reader): Promise<Decision | 'gone'> {
    if (action === 'read' && ctx.auditor === true) return { allow: true, via: 'auditor' };
    const spec = await now.spec(t.namespace, t.name);
    if (spec === undefined) return 'gone';
    const deploymentName = taskDeploymentName(spec);
    const deployment = deploymentName ? await now.deployment(t.namespace, deploymentName) : null;
    return decideScheduleAccess({
      namespace: t.namespace,
      task: t.name,
      action,
      taskSpec: spec,
      deployment,
      identity: ctx.identity,
      auditor: ctx.auditor,
      defaultOrg: deps.defaultOrg,
    });
  }

  /** In a listing, a Task or Deployment that cannot be read now shows nothing (fail closed). */
  const allowed = (ctx: RequestContext, t: ScheduledTask, action: 'read' | 'change', now: Reader) =>
    decide(ctx, t, action, now).then(
      (d) => d !== 'gone' && d.allow,
      () => false,
    );

  const gone = (ref: TaskRef) => notFound(`task ${ref.namespace}/${ref.name} has no schedule, or does not exist`);

  /** The scheduled Task as the catalog has it; 404 when there is none. */
  function cached(ref: TaskRef): ScheduledTask {
    if (!served.has(ref.namespace)) throw namespaceNotServed(ref.namespace, deps.namespaces);
    const t = known().find((x) => x.namespace === ref.namespace && x.name === ref.name);
    if (!t) throw gone(ref);
    return t;
  }

  /** The scheduled Task, if the caller may see it; 404 otherwise (names do not leak). */
  async function find(ctx: RequestContext, ref: TaskRef): Promise<ScheduledTask> {
    const t = cached(ref);
    const d = await decide(ctx, t, 'read', reader(false));
    if (d === 'gone' || !d.allow) throw gone(ref);
    return t;
  }

  async function summary(t: ScheduledTask, mayChange: boolean): Promise<ScheduleSummary> {
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
      params: s?.params,
      mayChange,
    };
  }

  /**
   * The scheduled Task, if the caller may change it now: exactly who may run it. A refusal
   * is a 403 (as `oddjob run task/NAME` answers), audited like a refused run.
   */
  async function changeable(ctx: RequestContext, ref: TaskRef, what: 'suspend' | 'resume', reason?: string): Promise<ScheduledTask> {
    const t = cached(ref);
    const d = await decide(ctx, t, 'change', reader(false));
    if (d === 'gone') throw gone(ref);
    if (d.allow) return t;
    const why = `you may not ${what} the schedule of task ${t.namespace}/${t.name}: ${d.reason}`;
    try {
      await deps.appendAudit({
        type: 'run.denied',
        actor: ctx.identity,
        client: ctx.client,
        namespace: t.namespace,
        deployment: t.deployment,
        task: t.name,
        reason,
        message: why,
      });
    } catch {
      // The refusal stands whether or not it could be recorded.
    }
    throw forbidden(
      why,
      d.code === 'not_opted_in'
        ? "the Task's Deployment must exist and opt in to oddjob"
        : "who may run a Task may suspend and resume its schedule: ask the Task's owners to add you to its allowedUsers or allowedTeams",
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
      const now = reader(true);
      for (const t of known()) {
        if (!served.has(t.namespace) || (namespace && t.namespace !== namespace)) continue;
        if (!(await allowed(ctx, t, 'read', now))) continue;
        out.push(await summary(t, await allowed(ctx, t, 'change', now)));
      }
      return out.sort((a, b) => a.namespace.localeCompare(b.namespace) || a.task.localeCompare(b.task));
    },

    async history(ctx, ref, opts) {
      await find(ctx, ref);
      return deps.store.history(ref, opts);
    },

    async suspend(ctx, ref, reason) {
      const t = await changeable(ctx, ref, 'suspend', reason);
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
      return summary(t, true);
    },

    async resume(ctx, ref) {
      const t = await changeable(ctx, ref, 'resume');
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
      return summary(t, true);
    },
  };
}
