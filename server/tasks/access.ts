// PURE: who may run a Task, and how a Task is shown to people. The Deployment must be
// opted in to oddjob whatever the Task says; the Task's allowedTeams/allowedUsers,
// when it has either, replace the Deployment's lists for this command.
import type { TaskSummary } from '../../protocol/tasks.js';
import { type AccessPolicy, type Decision, decideAccess, parseAccessPolicy } from '../policy/decide.js';
import { type TaskObject, type TaskValidation, taskAccessAnnotations, validateTaskSpec } from './spec.js';

export function decideTaskAccess(input: {
  namespace: string;
  task: string;
  spec: { deployment: string; allowedTeams?: string[]; allowedUsers?: string[] };
  deploymentAnnotations: Record<string, string> | undefined;
  identity: { login: string; teams: string[] };
  defaultOrg?: string;
}): Decision {
  const onDeployment = decideAccess({
    namespace: input.namespace,
    deployment: input.spec.deployment,
    annotations: input.deploymentAnnotations,
    identity: input.identity,
    defaultOrg: input.defaultOrg,
  });
  if (!onDeployment.allow && onDeployment.code === 'not_opted_in') {
    return { ...onDeployment, reason: `task ${input.namespace}/${input.task} cannot run: ${onDeployment.reason}` };
  }
  const own = taskAccessAnnotations(input.spec);
  if (!own) return onDeployment;
  return decideAccess({
    namespace: input.namespace,
    deployment: `task ${input.task}`,
    annotations: own,
    identity: input.identity,
    defaultOrg: input.defaultOrg,
  });
}

/** Who may run the Task: its own lists, else the Deployment's. */
export function taskRunPolicy(
  spec: { allowedTeams?: string[]; allowedUsers?: string[] },
  deploymentAnnotations: Record<string, string> | undefined,
  defaultOrg?: string,
): AccessPolicy {
  return parseAccessPolicy(taskAccessAnnotations(spec) ?? deploymentAnnotations, defaultOrg);
}

export function summarizeTask(task: TaskObject, validation: TaskValidation): TaskSummary {
  const raw = (task.spec ?? {}) as Record<string, unknown>;
  const str = (v: unknown) => (typeof v === 'string' ? v : undefined);
  const base = {
    namespace: task.metadata?.namespace ?? '',
    name: task.metadata?.name ?? '',
    generation: task.metadata?.generation ?? 0,
  };
  if (!validation.ok) {
    return {
      ...base,
      deployment: str(raw.deployment) ?? '',
      description: str(raw.description),
      command: Array.isArray(raw.command) ? raw.command.filter((c): c is string => typeof c === 'string') : [],
      params: [],
      approval: raw.approval === 'required' ? 'required' : 'none',
      ready: false,
      problem: validation.problem,
    };
  }
  const { spec, timeoutSeconds } = validation.task;
  return {
    ...base,
    deployment: spec.deployment,
    container: spec.container,
    description: spec.description,
    command: spec.command,
    params: spec.params,
    timeoutSeconds,
    approval: spec.approval,
    ready: true,
  };
}

/**
 * Who may see and change (suspend, resume) a Task's schedule: exactly who may run the
 * Task now. Auditors may also see every schedule, but changing one takes the right to
 * run it. The Task and its Deployment are as the API server has them now: a Deployment
 * that is gone refuses everyone (fail closed).
 *
 * A Task that does not validate cannot run, yet its owners must be able to see why it
 * does not fire and to suspend it: for one, both the Deployment's lists and, when the
 * Task names its own, those too must allow (own lists that cannot be read refuse).
 */
export function decideScheduleAccess(input: {
  namespace: string;
  task: string;
  action: 'read' | 'change';
  /** The Task's spec now (spec.deployment names the Deployment read for `deployment`). */
  taskSpec: unknown;
  /** The Deployment's annotations now; null when it is gone. */
  deployment: { annotations?: Record<string, string> } | null;
  identity: { login: string; teams: string[] };
  auditor?: boolean;
  defaultOrg?: string;
}): Decision {
  if (input.action === 'read' && input.auditor === true) return { allow: true, via: 'auditor' };
  const where = `task ${input.namespace}/${input.task}`;
  const raw = (input.taskSpec ?? {}) as { deployment?: unknown; allowedTeams?: unknown; allowedUsers?: unknown };
  const deploymentName = taskDeploymentName(input.taskSpec);
  if (!deploymentName) return { allow: false, code: 'not_allowed', reason: `${where} names no deployment, so nobody may change its schedule` };
  if (input.deployment === null) {
    return {
      allow: false,
      code: 'not_opted_in',
      reason: `${where} runs in deployment ${input.namespace}/${deploymentName}, which does not exist, so nobody may see or change its schedule`,
    };
  }
  const common = { namespace: input.namespace, identity: input.identity, defaultOrg: input.defaultOrg };
  const validation = validateTaskSpec(input.taskSpec, input.defaultOrg);
  if (validation.ok) {
    return decideTaskAccess({ ...common, task: input.task, spec: validation.task.spec, deploymentAnnotations: input.deployment.annotations });
  }
  const onDeployment = decideAccess({ ...common, deployment: deploymentName, annotations: input.deployment.annotations });
  if (!onDeployment.allow || (raw.allowedTeams === undefined && raw.allowedUsers === undefined)) return onDeployment;
  const strings = (v: unknown) => (v === undefined ? [] : Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : undefined);
  const teams = strings(raw.allowedTeams);
  const users = strings(raw.allowedUsers);
  if (!teams || !users) {
    return {
      allow: false,
      code: 'not_allowed',
      reason: `${where} is not valid and its allowedTeams/allowedUsers cannot be read, so nobody may change its schedule until its owners fix it`,
    };
  }
  return decideAccess({ ...common, deployment: `task ${input.task}`, annotations: taskAccessAnnotations({ allowedTeams: teams, allowedUsers: users }) });
}

/** The Deployment a Task's spec names, valid or not; undefined when it names none. */
export function taskDeploymentName(spec: unknown): string | undefined {
  const d = (spec as { deployment?: unknown } | undefined)?.deployment;
  return typeof d === 'string' && d !== '' ? d : undefined;
}
