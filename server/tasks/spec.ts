// PURE: the Task resource (oddjob.io/v1alpha1, PRODUCT.md §9) — its spec as one zod
// schema, and the checks the CRD's OpenAPI/CEL rules cannot express (patterns that
// compile, defaults that satisfy their own constraints, references to declared
// parameters). A Task that fails them is reported in its status and never runs.
import { z } from 'zod';
import { LIMITS, k8sLabelName, k8sName } from '../../protocol/api.js';
import { parseDuration } from '../../protocol/duration.js';
import { TaskParam } from '../../protocol/tasks.js';
import { parseAccessPolicy } from '../policy/decide.js';

export const TASK_GROUP = 'oddjob.io';
export const TASK_VERSION = 'v1alpha1';
export const TASK_PLURAL = 'tasks';
export const TASK_KIND = 'Task';

/** `spec` of a Task as owners write it. Unknown fields are ignored (later versions add some, e.g. schedule). */
export const TaskSpec = z.object({
  deployment: k8sName,
  container: k8sLabelName.optional(),
  description: z.string().max(1000).optional(),
  command: z
    .array(z.string().max(LIMITS.argvItemBytes))
    .min(1)
    .max(LIMITS.argvItems)
    .refine((a) => a[0] !== '', 'the first element (the program) must not be empty'),
  params: z.array(TaskParam).max(50).default([]),
  allowedTeams: z.array(z.string().max(140)).max(100).optional(),
  allowedUsers: z.array(z.string().max(40)).max(100).optional(),
  timeout: z.string().max(32).optional(),
  approval: z.enum(['required', 'none']).default('none'),
});
export type TaskSpec = z.infer<typeof TaskSpec>;

/** The Task resource as read from the API server (only what oddjob uses). */
export interface TaskObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; generation?: number; uid?: string; resourceVersion?: string };
  spec?: unknown;
  status?: { conditions?: TaskCondition[]; observedGeneration?: number };
}

export interface TaskCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

/** One `$(params.NAME)` use in the command: element `index` is `prefix` + the value. */
export interface ParamRef {
  index: number;
  prefix: string;
  name: string;
}

export interface ValidTask {
  spec: TaskSpec;
  refs: ParamRef[];
  timeoutSeconds?: number;
}

export type TaskValidation = { ok: true; task: ValidTask } | { ok: false; problem: string };

const REF = /\$\(params\.([^)]*)\)/g;
const WHOLE_OR_SUFFIX = /^([\s\S]*?)\$\(params\.([A-Za-z_][A-Za-z0-9_]{0,62})\)$/;

/** Everything wrong with a Task's spec, in one line an owner can act on; or the checked Task. */
export function validateTaskSpec(raw: unknown, defaultOrg?: string): TaskValidation {
  const parsed = TaskSpec.safeParse(raw ?? {});
  if (!parsed.success) {
    return { ok: false, problem: parsed.error.issues.map((i) => `spec.${i.path.join('.')}: ${i.message}`).join('; ') };
  }
  const spec = parsed.data;
  const problems: string[] = [];
  const declared = checkParams(spec.params, problems);
  const refs = checkCommand(spec.command, declared, problems);

  let timeoutSeconds: number | undefined;
  if (spec.timeout !== undefined) {
    const d = parseDuration(spec.timeout);
    if (d.ok) timeoutSeconds = d.seconds;
    else problems.push(`spec.timeout: ${d.error}`);
  }

  if (spec.allowedTeams !== undefined || spec.allowedUsers !== undefined) {
    const policy = parseAccessPolicy(taskAccessAnnotations(spec), defaultOrg);
    for (const p of policy.problems)
      problems.push(p.replace('oddjob.io/allowed-teams', 'spec.allowedTeams').replace('oddjob.io/allowed-users', 'spec.allowedUsers'));
  }

  if (problems.length) return { ok: false, problem: problems.join('; ') };
  return { ok: true, task: { spec, refs, timeoutSeconds } };
}

/** A string parameter's problems: a pattern that does not compile, a default it refuses. */
function checkStringParam(p: Extract<TaskParam, { type: 'string' }>, where: string, problems: string[]) {
  if (p.pattern === undefined) return;
  let re: RegExp;
  try {
    re = new RegExp(p.pattern, 'u');
  } catch (err) {
    problems.push(`${where}: pattern ${JSON.stringify(p.pattern)} is not a valid regular expression (${(err as Error).message})`);
    return;
  }
  if (p.default !== undefined && !re.test(p.default)) problems.push(`${where}: default ${JSON.stringify(p.default)} does not match its pattern`);
}

function checkIntegerParam(p: Extract<TaskParam, { type: 'integer' }>, where: string, problems: string[]) {
  if (p.min !== undefined && p.max !== undefined && p.min > p.max) problems.push(`${where}: min ${p.min} is above max ${p.max}`);
  if (p.default !== undefined && ((p.min !== undefined && p.default < p.min) || (p.max !== undefined && p.default > p.max))) {
    problems.push(`${where}: default ${p.default} is outside min/max`);
  }
}

/** Problems of the declared parameters; returns their names. */
function checkParams(params: readonly TaskParam[], problems: string[]): Set<string> {
  const seen = new Set<string>();
  for (const p of params) {
    const where = `spec.params[${p.name}]`;
    if (seen.has(p.name)) problems.push(`${where}: declared twice`);
    seen.add(p.name);
    if (p.required && p.default !== undefined) problems.push(`${where}: a required parameter cannot have a default (drop one of them)`);
    if (p.type === 'string') checkStringParam(p, where, problems);
    else if (p.type === 'integer') checkIntegerParam(p, where, problems);
    else if (p.type === 'choice') {
      if (new Set(p.choices).size !== p.choices.length) problems.push(`${where}: choices repeat`);
      if (p.default !== undefined && !p.choices.includes(p.default)) problems.push(`${where}: default ${JSON.stringify(p.default)} is not one of the choices`);
    }
  }
  return seen;
}

/** Where the command uses parameters; a use that is not a whole element or its end is a problem. */
function checkCommand(command: readonly string[], declared: ReadonlySet<string>, problems: string[]): ParamRef[] {
  const refs: ParamRef[] = [];
  command.forEach((element, index) => {
    const uses = [...element.matchAll(REF)];
    if (uses.length === 0) return;
    const m = uses.length === 1 ? WHOLE_OR_SUFFIX.exec(element) : null;
    if (!m) {
      problems.push(
        `spec.command[${index}]: $(params.NAME) may appear once per element, as the whole element or at its end (e.g. --merchant=$(params.merchant))`,
      );
      return;
    }
    const name = m[2]!;
    if (!declared.has(name)) problems.push(`spec.command[${index}]: refers to $(params.${name}), which is not declared in spec.params`);
    else refs.push({ index, prefix: m[1]!, name });
  });
  return refs;
}

/**
 * The Task's own access lists in the Deployment annotations' shape, so one decision
 * (policy/decide.ts) serves both; undefined when the Task names nobody and the
 * Deployment's annotations apply.
 */
export function taskAccessAnnotations(spec: Pick<TaskSpec, 'allowedTeams' | 'allowedUsers'>): Record<string, string> | undefined {
  if (spec.allowedTeams === undefined && spec.allowedUsers === undefined) return undefined;
  return {
    'oddjob.io/allowed-teams': (spec.allowedTeams ?? []).join(','),
    'oddjob.io/allowed-users': (spec.allowedUsers ?? []).join(','),
  };
}

/** The condition a Task's status carries after validation. */
export function readyCondition(v: TaskValidation, generation: number | undefined, previous: TaskCondition | undefined, now: Date): TaskCondition {
  const status = v.ok ? 'True' : 'False';
  const reason = v.ok ? 'Valid' : 'InvalidSpec';
  const message = v.ok ? 'the Task is valid and can run' : v.problem.slice(0, 4000);
  return {
    type: 'Ready',
    status,
    reason,
    message,
    observedGeneration: generation,
    // Only a change of status moves the transition time (the Kubernetes convention).
    lastTransitionTime: previous && previous.status === status ? previous.lastTransitionTime : now.toISOString().replace(/\.\d{3}Z$/, 'Z'),
  };
}
