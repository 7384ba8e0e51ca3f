// PURE: turns a Deployment's pod template into the Job of one run (PRODUCT.md §2).
// The copy must behave like the service (env, secrets, volumes, identity,
// placement, network identity) but must not serve like it (never a ready
// endpoint, no probes or ports) and must end when the command ends (native
// sidecars).
import type { V1Container, V1Deployment, V1EnvVar, V1Job, V1PodDisruptionBudget, V1Service } from '@kubernetes/client-node';
import type { DeploymentSummary } from '../../protocol/api.js';
import { durationSeconds } from '../../protocol/duration.js';
import { ANNOTATIONS, parseAccessPolicy } from '../policy/decide.js';
import {
  DROPPED_LABELS,
  NETWORK_IDENTITY,
  NEVER_SERVES,
  NetworkIdentityError,
  describeDrops,
  planNetworkIdentity,
  type NetworkIdentityPlan,
} from './network-identity.js';

export class CloneError extends Error {}

export interface CloneRequest {
  runId: string;
  user: string;
  command: string[];
  reason?: string;
  container?: string;
  interactive: boolean;
  tty: boolean;
  noSidecars: boolean;
  activeDeadlineSeconds: number;
  ttlSecondsAfterFinished: number;
  /** The namespace's Services and PodDisruptionBudgets, read just before the clone. */
  neighbours: Neighbours;
  /** A scheduled slot's deterministic name (schedules/names.ts); otherwise `<deployment>-oddjob-<runId>`. */
  jobName?: string;
  /**
   * oddjob's own variables for the command (ODDJOB_RUN_ID, ODDJOB_URL, the run's
   * progress credential): they replace any of the same name the Deployment sets.
   */
  runEnv?: V1EnvVar[];
  /**
   * What the program receives, recorded in the Job's annotation, when it differs from
   * `command` (whose `$` are doubled where the text is literal: see literalForKubelet).
   */
  argv?: string[];
  /** A Task run: recorded on the Job so `kubectl` shows which Task and version it ran. */
  task?: { name: string; generation: number };
}

export interface Neighbours {
  services: V1Service[];
  budgets: V1PodDisruptionBudget[];
}

export const LABELS = {
  managedBy: 'app.kubernetes.io/managed-by',
  runId: 'oddjob.io/run-id',
  deployment: 'oddjob.io/deployment',
} as const;

/**
 * The kubelet expands `$(VAR)` in a container's command from its environment, and `$$`
 * to `$`. Doubling every `$` makes it hand the program the text as written: a person's
 * `echo '$(DB_PASSWORD)'` or a Task parameter value arrives as those characters, so
 * what ran is what was audited. (A function replacement: the string `'$$'` would insert one `$`.)
 */
export function literalForKubelet(arg: string): string {
  return arg.replaceAll('$', () => '$$');
}

export function chooseContainer(deployment: V1Deployment, requested?: string): string {
  const containers = deployment.spec?.template?.spec?.containers ?? [];
  const names = containers.map((c) => c.name);
  const where = `deployment ${deployment.metadata?.namespace ?? ''}/${deployment.metadata?.name ?? ''}`;
  if (names.length === 0) throw new CloneError(`${where} has no containers`);
  const pick = (name: string | undefined, source: string) => {
    if (!name) return undefined;
    if (names.includes(name)) return name;
    throw new CloneError(`${source} names container "${name}", but ${where} has only: ${names.join(', ')}`);
  };
  const annotations = deployment.metadata?.annotations ?? {};
  return (
    pick(requested, '-c') ??
    pick(annotations[ANNOTATIONS.defaultContainer], `annotation ${ANNOTATIONS.defaultContainer}`) ??
    (names.includes(annotations['kubectl.kubernetes.io/default-container'] ?? '') ? annotations['kubectl.kubernetes.io/default-container']! : names[0]!)
  );
}

/** `<deployment>-oddjob-<runId>`, at most 63 characters. */
export function jobName(deployment: string, runId: string): string {
  const suffix = `-oddjob-${runId}`;
  const head = deployment.slice(0, 63 - suffix.length).replace(/[-.]+$/, '');
  return `${head}${suffix}`;
}

export function cloneJobFromDeployment(deployment: V1Deployment, req: CloneRequest): V1Job {
  if (req.tty && !req.interactive) throw new CloneError('a TTY (-t) needs an interactive run (-i)');
  const name = deployment.metadata?.name;
  const namespace = deployment.metadata?.namespace;
  if (!name || !deployment.spec?.template?.spec) throw new CloneError('the deployment has no pod template');
  const target = chooseContainer(deployment, req.container);
  // Deep copy: the caller's object (often from a cache) must never change.
  const template = structuredClone(deployment.spec.template);
  const spec = template.spec!;

  // The run keeps the pod's labels, so NetworkPolicies treat it as one of the
  // Deployment's pods; what else selects by those labels is fended off here.
  let network: NetworkIdentityPlan;
  try {
    network = planNetworkIdentity({
      namespace: namespace ?? '',
      annotations: deployment.metadata?.annotations,
      templateLabels: template.metadata?.labels ?? {},
      deploymentSelector: deployment.spec.selector,
      ownLabels: { [LABELS.runId]: req.runId, [LABELS.deployment]: name },
      ...req.neighbours,
    });
  } catch (err) {
    if (err instanceof NetworkIdentityError) throw new CloneError(err.message);
    throw err;
  }
  template.metadata = { ...template.metadata, labels: network.labels };
  // Never Ready, so never a ready endpoint of a Service that selects these labels.
  // A Job-owned pod is never adopted by the ReplicaSet (it has a controller, and no
  // pod-template-hash label).
  spec.readinessGates = [...(spec.readinessGates ?? []).filter((g) => g.conditionType !== NEVER_SERVES), { conditionType: NEVER_SERVES }];

  const main = spec.containers.find((c) => c.name === target)!;
  main.command = [...req.command];
  delete main.args;
  delete main.livenessProbe;
  delete main.readinessProbe;
  delete main.startupProbe;
  delete main.ports;
  if (req.interactive) {
    main.stdin = true;
    main.stdinOnce = true;
  } else {
    delete main.stdin;
    delete main.stdinOnce;
  }
  if (req.tty) main.tty = true;
  else delete main.tty;
  if (req.runEnv?.length) {
    const ours = new Set(req.runEnv.map((e) => e.name));
    main.env = [...(main.env ?? []).filter((e) => !ours.has(e.name)), ...req.runEnv];
  }

  // Other regular containers would keep the pod (and the Job) alive forever.
  const others: V1Container[] = spec.containers.filter((c) => c.name !== target);
  spec.containers = [main];
  if (!req.noSidecars && others.length) {
    spec.initContainers = [...(spec.initContainers ?? []), ...others.map((c) => ({ ...c, restartPolicy: 'Always' }))];
  }
  spec.restartPolicy = 'Never';

  const annotations: Record<string, string> = {
    [LABELS.runId]: req.runId,
    'oddjob.io/user': req.user,
    'oddjob.io/command': JSON.stringify(req.argv ?? req.command),
  };
  if (req.task) {
    annotations['oddjob.io/task'] = req.task.name;
    annotations['oddjob.io/task-generation'] = String(req.task.generation);
  }
  if (req.reason) annotations['oddjob.io/reason'] = req.reason;
  annotations[NETWORK_IDENTITY] = network.mode;
  if (network.dropped.length) annotations[DROPPED_LABELS] = describeDrops(network.dropped);

  return {
    apiVersion: 'batch/v1',
    kind: 'Job',
    metadata: {
      // A deterministic name (not generateName): a retried create answers 409
      // instead of starting the command a second time.
      name: req.jobName ?? jobName(name, req.runId),
      namespace,
      labels: { [LABELS.managedBy]: 'oddjob', [LABELS.runId]: req.runId, [LABELS.deployment]: name },
      annotations,
    },
    spec: {
      backoffLimit: 0, // a one-off command runs once
      completions: 1,
      parallelism: 1,
      activeDeadlineSeconds: req.activeDeadlineSeconds,
      ttlSecondsAfterFinished: req.ttlSecondsAfterFinished,
      template,
    },
  };
}

export function summarizeDeployment(deployment: V1Deployment, defaultOrg?: string): DeploymentSummary {
  const policy = parseAccessPolicy(deployment.metadata?.annotations, defaultOrg);
  let maxDurationSeconds: number | undefined;
  const annotated = deployment.metadata?.annotations?.[ANNOTATIONS.maxDuration];
  if (annotated) {
    try {
      maxDurationSeconds = durationSeconds(annotated);
    } catch {
      maxDurationSeconds = undefined;
    }
  }
  let defaultContainer: string;
  try {
    defaultContainer = chooseContainer(deployment);
  } catch {
    defaultContainer = '';
  }
  return {
    namespace: deployment.metadata?.namespace ?? '',
    name: deployment.metadata?.name ?? '',
    containers: (deployment.spec?.template?.spec?.containers ?? []).map((c) => ({ name: c.name, image: c.image ?? '' })),
    defaultContainer,
    allowedTeams: policy.allowedTeams,
    allowedUsers: policy.allowedUsers,
    maxDurationSeconds,
  };
}
