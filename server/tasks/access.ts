// PURE: who may run a Task, and how a Task is shown to people. The Deployment must be
// opted in to oddjob whatever the Task says; the Task's allowedTeams/allowedUsers,
// when it has either, replace the Deployment's lists for this command.
import type { TaskSummary } from '../../protocol/tasks.js';
import { type AccessPolicy, type Decision, decideAccess, parseAccessPolicy } from '../policy/decide.js';
import { type TaskObject, type TaskValidation, taskAccessAnnotations } from './spec.js';

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
