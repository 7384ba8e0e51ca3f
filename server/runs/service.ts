// The run service: request → decide → audit(requested) → clone → create Job →
// track to the end. Also serves run listings, cancellation and output streams.
// One watch per served namespace for oddjob's pods and Jobs feeds every tracker.
import { randomInt } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TERMINAL_STATUSES, type AuditClient, type PendingApproval, type Run, type RunListQuery, type RunRequest } from '../../protocol/api.js';
import type { TaskRunRequest, TaskSummary } from '../../protocol/tasks.js';
import { isRunOwner } from '../../protocol/owner.js';
import type { AuditLog } from '../store/audit.js';
import type { RunStore } from '../store/runs.js';
import type { OutputStore } from '../store/output.js';
import type { Wakeups } from '../store/wakeups.js';
import type { RunLeases } from '../store/leases.js';
import type { RunControls } from '../store/controls.js';
import { runOwnership } from './own.js';
import { ServiceError, badRequest, forbidden, namespaceNotServed, notFound, unauthorized, unavailable } from '../errors.js';
import type { Notifications } from '../notify/service.js';
import { describeUnknown, type Routing } from '../notify/route.js';
import { deleteRunSecret, adoptRunSecret, createRunSecret, runSecretName } from '../k8s/run-secret.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { ResourceWatch } from '../k8s/watch.js';
import { CloneError, chooseContainer, cloneJobFromDeployment, literalForKubelet, type Neighbours } from '../jobs/clone.js';
import { readNeighbours } from '../k8s/neighbours.js';
import { watchPodEvents } from '../k8s/pod-events.js';
import { DeploymentCache } from '../deployments/cache.js';
import { durationSeconds } from '../../protocol/duration.js';
import { metrics, observeActiveRuns } from '../metrics.js';
import { ANNOTATIONS, decideAccess } from '../policy/decide.js';
import { type Refusal, decideContainer, decideSidecars } from '../policy/containers.js';
import type { ReadinessCheck, RequestContext, RunService, TaskService, Viewer, ViewerHandle } from '../services.js';
import { type AccessPolicy, parseAccessPolicy } from '../policy/decide.js';
import { readTask } from '../k8s/tasks.js';
import { TaskCatalog } from '../tasks/catalog.js';
import { ParamError, resolveTaskCommand } from '../tasks/resolve.js';
import { type TaskObject, validateTaskSpec } from '../tasks/spec.js';
import { decideTaskAccess, summarizeTask, taskRunPolicy } from '../tasks/access.js';
import { type ConcurrencyPolicy, parseSchedule } from '../schedules/spec.js';
import { OutputHub } from './hub.js';
import { followThroughStore } from './stream.js';
import { jobAdoptableBy, jobBelongsTo, podBelongsTo } from './ownership.js';
import { type Canceller, RunTracker, deleteRunJob } from './tracker.js';
import { RemoteInput, feedStoredInput } from './control.js';

export interface RunServiceConfig {
  namespaces: readonly string[];
  githubOrg?: string;
  defaultTimeoutSeconds: number;
  maxTimeoutSeconds: number;
  ttlSecondsAfterFinished: number;
  startTimeoutSeconds: number;
  /** 'auto' asks the API server on the first capture. */
  splitLogStreams: 'auto' | 'true' | 'false' | boolean;
}

export interface RunServiceDeps {
  kube: KubeClients;
  config: RunServiceConfig;
  audit: AuditLog;
  runs: RunStore;
  output: OutputStore;
  /** Run ownership across replicas; without it this server owns every run (one replica). */
  leases?: RunLeases;
  /** Wake-ups for following runs another replica tracks; without it such a viewer is told to retry. */
  wakeups?: Wakeups;
  /** stdin, resizes and cancels sent through a replica that does not own the run. */
  controls?: RunControls;
  logger: Logger;
  /** Routing, progress credentials (absent: no notifications, no credentials). */
  notifications?: Notifications;
  /** The URL a run's pod reaches oddjob at (ODDJOB_URL). */
  publicUrl?: () => string;
}

/** Progress lines a run may post per minute. */
const PROGRESS_PER_MINUTE = 30;

/**
 * A run the server starts on its own behalf (a schedule slot): a fixed run id and Job
 * name (the same for every try of the slot), and instead of a person's access, the
 * Deployment's consent as `authorize` sees it now.
 */
export interface ScheduledRunOptions {
  runId: string;
  jobName: string;
  authorize: (deployment: k8s.V1Deployment) => { allow: true } | { allow: false; code: string; reason: string; hint: string };
  /**
   * Lets launches started together share one read of the Deployment and of the
   * namespace's neighbours (the launcher's: a read at most a second old, made for this
   * tick); without it every run reads them itself.
   */
  share?: <T>(key: string, read: () => Promise<T>) => Promise<T>;
  /** Said in the run.requested event (a slot's launch continued after an interruption). */
  note?: string;
}

export type ManagedRunService = RunService &
  TaskService & {
    /**
     * A run the server starts itself (a schedule slot): planned like any run, authorized
     * by `opts.authorize`, never one that needs approval; answers the existing run if
     * `opts.runId` already exists.
     */
    createScheduledRun(ctx: RequestContext, req: RunTarget, opts: ScheduledRunOptions): Promise<Run>;
    /**
     * Every Task the watches hold (the schedules' catalog); undefined until each served
     * namespace has listed, since a partial list would look like deleted Tasks.
     */
    cachedTasks(): TaskObject[] | undefined;
    start(): Promise<void>;
    stop(): Promise<void>;
    readiness: ReadinessCheck[];
    /** For the approval service: the steps of a run, taken apart. */
    planner: RunPlanner;
    /** Wires four-eyes approval in (approvals/service.ts). */
    useApprovals(hooks: {
      needed: (plan: RunPlan) => { approvers: string } | undefined;
      request: (ctx: RequestContext, req: RunTarget, plan: RunPlan) => Promise<PendingApproval>;
    }): void;
  };

export type RunTarget = RunRequest | TaskRunRequest;
export const isTaskTarget = (r: RunTarget): r is TaskRunRequest => 'task' in r;

/** Everything a run will be, decided and authorized, before a Job exists. */
export interface RunPlan {
  namespace: string;
  deploymentName: string;
  deployment: k8s.V1Deployment;
  container: string;
  image: string;
  /** What the program receives. */
  argv: string[];
  /** The container command (a Task's values escaped for the kubelet). */
  jobCommand: string[];
  reason?: string;
  interactive: boolean;
  tty: boolean;
  dropSidecars: boolean;
  activeDeadlineSeconds: number;
  task?: {
    name: string;
    generation: number;
    approval: 'required' | 'none';
    /** The Task's schedule's policy (when it has a valid one): what a run now honours. */
    concurrencyPolicy?: ConcurrencyPolicy;
  };
  /** Who may run this target: the Task's lists, else the Deployment's annotations. */
  runPolicy: AccessPolicy;
}

/** 'run' audits a refusal; 'preview' audits it marked as a preview; 'silent' only throws (re-checks). */
export type PlanMode = 'run' | 'preview' | 'silent';

export interface LaunchOptions {
  id: string;
  /** Created exactly as given (an approved request's manifest). */
  job?: k8s.V1Job;
  approvalId?: string;
  approvedBy?: { login: string; id?: number };
  note?: string;
  /** A schedule slot's fixed Job name, and its tick's shared reads. */
  jobName?: string;
  share?: ScheduledRunOptions['share'];
}

export interface RunPlanner {
  plan(ctx: RequestContext, req: RunTarget, mode: PlanMode): Promise<RunPlan>;
  /** The Job for `plan` under run id `runId` (reads the namespace's Services and budgets). */
  build(plan: RunPlan, user: string, runId: string): Promise<k8s.V1Job>;
  /** Audit, record, create, track. With `job`, exactly that manifest is created. */
  launch(ctx: RequestContext, plan: RunPlan, opts: LaunchOptions): Promise<Run>;
  currentDeployment(namespace: string, name: string): Promise<k8s.V1Deployment | undefined>;
  /** The notification targets `plan` reports to (the Deployment's oddjob.io/notify; unknown names logged). */
  notifyTargets(plan: RunPlan): string[] | undefined;
  /** From the API server, now (not the watch); throws ServiceError (404 when it is gone). */
  readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment>;
  onDeploymentChange(listener: (namespace: string, name: string) => void): () => void;
  /** The Task from the watch (undefined: not known there). */
  cachedTask(namespace: string, name: string): ReturnType<TaskCatalog['get']>;
  mayRunInDeployment(ctx: RequestContext, namespace: string, deployment: k8s.V1Deployment | undefined): boolean;
}

/** The concurrencyPolicy of a Task's valid schedule; undefined without one (nothing to honour). */
function schedulePolicyOf(spec: unknown): ConcurrencyPolicy | undefined {
  const raw = (spec as { schedule?: unknown } | undefined)?.schedule;
  if (raw === undefined) return undefined;
  const parsed = parseSchedule(raw);
  return parsed.ok ? parsed.schedule.concurrencyPolicy : undefined;
}

const ENDINGS = new Set(['run.finished', 'run.cancelled', 'run.lost']);

const RUN_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export function newRunId(): string {
  let id = '';
  for (let i = 0; i < 12; i++) id += RUN_ID_ALPHABET[randomInt(RUN_ID_ALPHABET.length)];
  return id;
}

export function createRunService(deps: RunServiceDeps): ManagedRunService {
  const { kube, config, audit, runs, output, logger, notifications } = deps;
  const noRouting: Routing = { targets: [], unknown: [] };
  const routingOf = (deployment: k8s.V1Deployment): Routing => notifications?.routing(deployment.metadata?.annotations) ?? noRouting;
  const progressWindow = new Map<string, number[]>();
  const served = new Set(config.namespaces);
  const trackers = new Map<string, RunTracker>();
  observeActiveRuns(() => trackers.size);
  const hubs = new Map<string, Promise<OutputHub>>();
  const podWatches = new Map<string, ResourceWatch<k8s.V1Pod>>();
  const jobWatches = new Map<string, ResourceWatch<k8s.V1Job>>();
  const deploymentCache = new DeploymentCache({ kube, namespaces: config.namespaces, logger });
  const taskCatalog = new TaskCatalog({ kube, namespaces: config.namespaces, logger, githubOrg: config.githubOrg });
  const splitStreams = {
    value: config.splitLogStreams === 'auto' ? undefined : config.splitLogStreams === true || config.splitLogStreams === 'true',
  };

  const hubFor = (id: string): Promise<OutputHub> => {
    let hub = hubs.get(id);
    if (!hub) {
      // Fenced by this replica's lease on the run (when replicas share it): a replica
      // that stalled past its lease stores nothing after the adopter took over.
      hubs.set(id, (hub = OutputHub.open(id, output, { fence: deps.leases ? { owner: own.id } : undefined })));
      hub.catch(() => hubs.delete(id));
    }
    return hub;
  };

  const trackerDeps = {
    kube,
    audit,
    runs,
    logger,
    startTimeoutSeconds: config.startTimeoutSeconds,
    splitStreams,
    onDone: (id: string) => {
      trackers.delete(id);
      hubs.delete(id);
      stopControl(id);
      void own.release(id);
      void deps.controls
        ?.forget(id)
        .catch((err: unknown) => logger.warn({ err: (err as Error).message, run: id }, 'could not delete the controls of an ended run'));
    },
    cancelRequest: async (id: string) => cancellerFrom(await deps.controls?.cancelRequest(id)),
    onAttached: (id: string) => {
      if (!deps.leases || !deps.controls) return;
      deps.controls
        .holdSession(id, own.id)
        .catch((err: unknown) => logger.warn({ err: (err as Error).message, run: id }, 'could not record which replica holds the stdin of a run'));
    },
    watchPodEvents: (pod: { namespace: string; uid: string }, onEvent: (event: k8s.CoreV1Event) => void) => watchPodEvents(kube, logger, pod, onEvent),
  };

  // Run ownership (store/leases.ts): this replica tracks only the runs it holds a lease
  // on, renews them, and adopts active runs whose owner stopped renewing. The runs it is
  // creating are leased (and renewed) from before their record exists until they are
  // tracked, so no other replica adopts a run whose Job is still being made.
  const creating = new Set<string>();
  const own = runOwnership({
    leases: deps.leases,
    logger,
    owned: () => [...trackers.keys(), ...creating],
    onLost: (id) => {
      // Another replica took the run over (this one stalled past its lease): stop writing.
      trackers.get(id)?.detach(`this server stopped following run ${id} (another took it over); reconnect to resume`);
      trackers.delete(id);
      hubs.delete(id);
      stopControl(id);
    },
    adopt: () => adoptOrphans(),
  });

  /** Tracks the active runs of served namespaces that nobody holds a lease on. */
  async function adoptOrphans(): Promise<void> {
    // Held first, then listed: a run created after the first read is leased before it
    // is listed (launch), so it cannot look unheld; a claim settles the rest.
    const held = await own.held();
    for (const run of await runs.listActive()) {
      if (!served.has(run.namespace) || trackers.has(run.id) || held.has(run.id)) continue;
      if (!(await own.claim(run.id))) continue;
      if (trackers.has(run.id)) continue;
      // The list is older than the claim: its owner may have ended the run and let go of
      // the lease since (it stores the ending before it releases), and a run tracked
      // again would be started and ended twice.
      const current = await runs.get(run.id);
      if (!current || TERMINAL_STATUSES.includes(current.status)) {
        await own.release(run.id);
        continue;
      }
      logger.info({ run: run.id }, 'tracking an active run nobody owns (restart or adoption)');
      const t = await track(current);
      await noteLostSession(t);
      await replayState(t, true);
    }
  }

  /**
   * An interactive run whose stdin another replica's attach held: Kubernetes closed that
   * input for good when the attach ended (stdinOnce), which usually ends the program.
   * Its ending says so, or a person reads a plain "exit 0" after their session broke.
   */
  async function noteLostSession(t: RunTracker): Promise<void> {
    if (!t.run.interactive || !deps.controls) return;
    const holder = await deps.controls.sessionHolder(t.run.id).catch(() => undefined);
    if (holder === undefined || holder === own.id) return;
    logger.warn({ run: t.run.id, holder }, 'adopted an interactive run whose stdin the previous owner held; its input is closed');
    t.noteForEnding(
      `the oddjob replica that held this interactive session (${holder}) stopped, and Kubernetes closed the program's input then; ` +
        'the program ran on without input (or ended because of it) and another replica recorded its ending',
    );
  }

  async function track(run: Run): Promise<RunTracker> {
    const t = new RunTracker(run, await hubFor(run.id), trackerDeps);
    trackers.set(run.id, t);
    controlFromStore(t);
    return t;
  }

  // Control through other replicas (runs/control.ts): their viewers' input, fed to the
  // runs this replica owns, and cancels recorded by them.
  const controlStops = new Map<string, () => void>();
  function stopControl(id: string) {
    controlStops.get(id)?.();
    controlStops.delete(id);
  }
  function controlFromStore(t: RunTracker) {
    const { controls, wakeups, leases } = deps;
    if (!controls || !wakeups || !leases) return;
    const id = t.run.id;
    let checking = false;
    const checkCancel = async () => {
      if (checking || t.done) return;
      checking = true;
      try {
        const by = cancellerFrom(await controls.cancelRequest(id));
        if (by && trackers.get(id) === t) await t.cancel(by);
      } catch (err) {
        logger.warn({ err: (err as Error).message, run: id }, 'could not read whether a run was cancelled');
      } finally {
        checking = false;
      }
    };
    const offCancel = wakeups.onControl(id, () => void checkCancel());
    // A cancel recorded before this replica took the run (or its notification missed).
    void checkCancel();
    const stopInput = t.run.interactive ? feedStoredInput({ runId: id, owner: own.id, controls, wakeups, target: t, logger }) : () => {};
    controlStops.set(id, () => {
      offCancel();
      stopInput();
    });
  }

  const runIdOf = (obj: k8s.KubernetesObject) => obj.metadata?.labels?.['oddjob.io/run-id'];

  // Objects that claim a run but are not its own: logged once each, never acted on.
  const ignored = new Set<string>();
  function ignore(kind: 'pod' | 'Job', obj: k8s.KubernetesObject, run: Run, why: string) {
    const key = obj.metadata?.uid ?? `${obj.metadata?.namespace}/${obj.metadata?.name}`;
    if (ignored.has(key)) return;
    if (ignored.size >= 10_000) ignored.clear();
    ignored.add(key);
    logger.warn(
      { runId: run.id, kind, namespace: obj.metadata?.namespace, name: obj.metadata?.name, uid: obj.metadata?.uid },
      `ignoring ${kind} ${obj.metadata?.namespace}/${obj.metadata?.name} that claims run ${run.id}: ${why}`,
    );
  }

  /** Hands a tracker a pod event only if the pod is the one its Job controls. */
  function deliverPod(t: RunTracker, pod: k8s.V1Pod, deleted: boolean) {
    const verdict = podBelongsTo(t.run, pod);
    if (!verdict.ok) return ignore('pod', pod, t.run, verdict.why);
    t.onPod(deleted ? undefined : pod);
  }

  function deliverJob(t: RunTracker, job: k8s.V1Job, deleted: boolean) {
    const verdict = jobBelongsTo(t.run, job);
    if (!verdict.ok) return ignore('Job', job, t.run, verdict.why);
    t.onJob(deleted ? undefined : job);
  }

  function watchNamespace(namespace: string) {
    const pods = new ResourceWatch<k8s.V1Pod>({
      kc: kube.kc,
      path: `/api/v1/namespaces/${namespace}/pods`,
      labelSelector: 'oddjob.io/run-id',
      list: () => kube.core.listNamespacedPod({ namespace, labelSelector: 'oddjob.io/run-id' }),
      logger,
    });
    const jobs = new ResourceWatch<k8s.V1Job>({
      kc: kube.kc,
      path: `/apis/batch/v1/namespaces/${namespace}/jobs`,
      labelSelector: 'app.kubernetes.io/managed-by=oddjob',
      list: () => kube.batch.listNamespacedJob({ namespace, labelSelector: 'app.kubernetes.io/managed-by=oddjob' }),
      logger,
    });
    pods.on((type, pod) => {
      const id = runIdOf(pod);
      const t = id ? trackers.get(id) : undefined;
      if (t) deliverPod(t, pod, type === 'DELETED');
    });
    jobs.on((type, job) => {
      const id = runIdOf(job);
      const t = id ? trackers.get(id) : undefined;
      if (t) deliverJob(t, job, type === 'DELETED');
    });
    podWatches.set(namespace, pods);
    jobWatches.set(namespace, jobs);
    pods.start();
    jobs.start();
  }

  /** The run's pod in the watch cache, if one passes the ownership checks (others are logged). */
  function verifiedPod(t: RunTracker): k8s.V1Pod | undefined {
    let pod: k8s.V1Pod | undefined;
    for (const p of podWatches.get(t.run.namespace)?.list() ?? []) {
      if (runIdOf(p) !== t.run.id) continue;
      const verdict = podBelongsTo(t.run, p);
      if (!verdict.ok) ignore('pod', p, t.run, verdict.why);
      else pod ??= p;
    }
    return pod;
  }

  /** Feeds a tracker what the watches already know (used after create and on restart). */
  async function replayState(t: RunTracker, reconciling = false): Promise<void> {
    const { namespace, jobName, id } = t.run;
    let job = jobWatches.get(namespace)?.get(jobName);
    if (job && reconciling && !t.run.jobUid) {
      // Recorded before oddjob stored Job uids: adopt the Job under the run's name only
      // if it carries what oddjob put on it for this run, and pin its uid from now on.
      const verdict = jobAdoptableBy(t.run, job);
      if (verdict.ok) t.run = await runs.update(id, { jobUid: job.metadata!.uid! });
      else ignore('Job', job, t.run, verdict.why);
    }
    const verdict = job && jobBelongsTo(t.run, job);
    if (job && verdict && !verdict.ok) {
      ignore('Job', job, t.run, verdict.why);
      job = undefined;
    }
    if (job && reconciling && t.run.status === 'pending') await recordCreatedLate(t.run, job);
    const pod = verifiedPod(t);
    // Pod first: its exit code and output matter more than the Job's summary.
    if (pod) t.onPod(pod);
    if (job) t.onJob(job);
    // Only at start-up does "not in the synced cache" mean gone: right after a
    // create, the watch simply has not delivered the new Job yet.
    if (reconciling && !job && !pod) t.onMissing(!t.run.jobUid);
  }

  /**
   * A run adopted before it started whose Job exists: the server that created the Job
   * may have stopped before auditing run.created. The trail gets it now, saying so, so
   * every Job that ran has its run.created.
   */
  async function recordCreatedLate(run: Run, job: k8s.V1Job): Promise<void> {
    try {
      if ((await audit.query({ runId: run.id, type: 'run.created', limit: 1 })).items.length) return;
      await audit.appendDurable({
        type: 'run.created',
        actor: { login: run.user, ...(run.userId !== undefined ? { id: run.userId } : {}), teams: [] },
        client: { kind: 'server', agent: 'oddjob-adopter' },
        runId: run.id,
        namespace: run.namespace,
        deployment: run.deployment,
        command: run.command,
        reason: run.reason,
        task: run.task,
        taskGeneration: run.taskGeneration,
        container: run.container,
        image: run.image,
        message: `job ${job.metadata?.name} (recorded by the replica that adopted the run: the one that created the Job stopped before recording it)`,
      });
    } catch (err) {
      logger.error({ err, runId: run.id }, 'could not record the run.created an adopted run lacked');
    }
  }

  function requireServed(namespace: string) {
    // 404, not 403; the caller is signed in, so the answer may list what is served.
    if (!served.has(namespace)) throw namespaceNotServed(namespace, config.namespaces);
  }

  async function readDeployment(namespace: string, name: string): Promise<k8s.V1Deployment> {
    requireServed(namespace);
    try {
      return await kube.apps.readNamespacedDeployment({ name, namespace });
    } catch (err) {
      throw toServiceError(err, `deployment ${namespace}/${name}`);
    }
  }

  // By GitHub user id where both sides have one: a recycled login inherits nothing.
  const isOwner = (ctx: RequestContext, run: Run) => isRunOwner(run, ctx.identity);
  /** Whoever approved a run may watch what they let run (not type into it or cancel it). */
  const isApprover = (ctx: RequestContext, run: Run) =>
    run.approvedBy !== undefined && isRunOwner({ user: run.approvedBy.login, userId: run.approvedBy.id }, ctx.identity);

  /** May this person run in the run's Deployment as it is now (undefined: it is gone)? */
  function mayRunIn(ctx: RequestContext, run: Run, deployment: k8s.V1Deployment | undefined): boolean {
    if (!deployment) return false;
    return decideAccess({
      namespace: run.namespace,
      deployment: run.deployment,
      annotations: deployment.metadata?.annotations,
      identity: ctx.identity,
      defaultOrg: config.githubOrg,
    }).allow;
  }

  // Who may do what with an existing run (docs/security.md, "Runs and access"), always
  // from the Deployment as it is now:
  //   see it and its output: its owner, auditors, whoever may run in its Deployment;
  //   cancel it: its owner, whoever may run in its Deployment (auditors only read);
  //   type into it (stdin, resize): its owner, while they may still run in its Deployment.
  function mayView(ctx: RequestContext, run: Run, deployment: k8s.V1Deployment | undefined): boolean {
    return isOwner(ctx, run) || ctx.auditor === true || isApprover(ctx, run) || mayRunIn(ctx, run, deployment);
  }

  /** Reads each Deployment at most once per request: a page of 500 runs costs no more than its distinct Deployments. */
  function deploymentReader() {
    const seen = new Map<string, Promise<k8s.V1Deployment | undefined>>();
    return (run: Run) => {
      const key = `${run.namespace}/${run.deployment}`;
      let d = seen.get(key);
      if (!d) seen.set(key, (d = deploymentCache.current(run.namespace, run.deployment)));
      return d;
    };
  }

  async function getVisibleRun(ctx: RequestContext, id: string): Promise<Run> {
    const run = await runs.get(id);
    if (!run || !served.has(run.namespace)) throw notFound(`run ${id} not found`);
    // Owners and auditors see it without asking the Deployment (which may be gone).
    if (isOwner(ctx, run) || ctx.auditor === true || isApprover(ctx, run)) return run;
    if (!mayRunIn(ctx, run, await deploymentCache.current(run.namespace, run.deployment))) throw notFound(`run ${id} not found`);
    return run;
  }

  // Live viewers, by Deployment: each is re-checked when its Deployment changes.
  const liveViewers = new Map<string, Set<(deployment: k8s.V1Deployment | undefined) => void>>();
  deploymentCache.onChange((namespace, name) => {
    const key = `${namespace}/${name}`;
    const checks = liveViewers.get(key);
    if (!checks?.size) return;
    deploymentCache.current(namespace, name).then(
      (d) => [...checks].forEach((check) => check(d)),
      (err) => {
        // Cannot tell what the Deployment says now: act as if it were gone (owners and auditors keep reading).
        logger.warn({ err: (err as Error).message, deployment: key }, 'cannot re-check live viewers; treating the deployment as gone');
        [...checks].forEach((check) => check(undefined));
      },
    );
  });
  function watchAccess(run: Run, check: (deployment: k8s.V1Deployment | undefined) => void): () => void {
    const key = `${run.namespace}/${run.deployment}`;
    let checks = liveViewers.get(key);
    if (!checks) liveViewers.set(key, (checks = new Set()));
    checks.add(check);
    return () => {
      checks.delete(check);
      if (checks.size === 0 && liveViewers.get(key) === checks) liveViewers.delete(key);
    };
  }

  /** The longest a run in this Deployment may take: the server's bound, or the owner's max-duration below it. */
  function maxSecondsFor(deployment: k8s.V1Deployment): number {
    let max = config.maxTimeoutSeconds;
    const annotated = deployment.metadata?.annotations?.[ANNOTATIONS.maxDuration];
    if (annotated) {
      try {
        max = Math.min(max, durationSeconds(annotated));
      } catch {
        // A malformed owner annotation must not widen the bound: keep the server max.
        logger.warn({ deployment: deployment.metadata?.name, annotated }, 'ignoring malformed oddjob.io/max-duration');
      }
    }
    return max;
  }

  function timeoutFor(req: RunRequest, deployment: k8s.V1Deployment): number {
    const max = maxSecondsFor(deployment);
    const wanted = req.timeoutSeconds ?? Math.min(config.defaultTimeoutSeconds, max);
    if (wanted > max) throw badRequest(`--timeout ${wanted}s is above the limit of ${max}s for this deployment`, `use --timeout ${max}s or less`);
    return wanted;
  }

  function decide(req: RunRequest, deployment: k8s.V1Deployment, identity: RequestContext['identity']) {
    return decideAccess({
      namespace: req.namespace,
      deployment: req.deployment,
      annotations: deployment.metadata?.annotations,
      identity,
      defaultOrg: config.githubOrg,
    });
  }

  /**
   * Container, sidecars, time limit and image of a request the person may make; throws
   * 400 for what cannot run. The owner's rules (allowed containers, sidecars) answer with
   * a refusal to audit instead.
   */
  function resolveRun(
    req: RunRequest,
    deployment: k8s.V1Deployment,
    timeoutSeconds?: number,
  ): { refusal: Refusal } | { refusal?: undefined; container: string; dropSidecars: boolean; activeDeadlineSeconds: number; image: string } {
    let container: string;
    try {
      container = chooseContainer(deployment, req.container);
    } catch (err) {
      if (err instanceof CloneError) throw badRequest(err.message);
      throw err;
    }
    if (req.tty && !req.interactive) throw badRequest('a TTY (-t) needs an interactive run (-i)', 'use -it together');
    const where = `${req.namespace}/${req.deployment}`;
    const annotations = deployment.metadata?.annotations;
    const names = (deployment.spec?.template?.spec?.containers ?? []).map((c) => c.name);
    const target = decideContainer({ where, annotations, containers: names, chosen: container, requested: req.container });
    if (!target.allow) return { refusal: target };
    const sidecars = decideSidecars({ where, annotations, requestedDrop: req.noSidecars, sidecars: names.filter((n) => n !== container) });
    if (!sidecars.allow) return { refusal: sidecars };
    const activeDeadlineSeconds = timeoutSeconds ?? timeoutFor(req, deployment);
    const image = deployment.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image ?? '';
    return { container, dropSidecars: sidecars.drop, activeDeadlineSeconds, image };
  }

  interface Refused {
    namespace: string;
    deployment?: string;
    task?: string;
    command?: string[];
    reason?: string;
    container?: string;
  }

  /** Records a refused request (a preview's too, marked as one), then refuses it. */
  async function refuse(ctx: RequestContext, req: Refused, refusal: { reason: string; hint: string }, mode: PlanMode): Promise<never> {
    if (mode !== 'silent') {
      try {
        await audit.append({
          type: 'run.denied',
          actor: ctx.identity,
          client: ctx.client,
          namespace: req.namespace,
          deployment: req.deployment,
          task: req.task,
          command: req.command,
          reason: req.reason,
          container: req.container,
          message: refusal.reason,
          ...(mode === 'preview' ? { preview: true } : {}),
        });
      } catch (err) {
        logger.error({ err }, 'could not record a denial in the audit log');
      }
    }
    throw forbidden(refusal.reason, refusal.hint);
  }

  const ACCESS_HINT = 'ask the owners of the deployment to add you to oddjob.io/allowed-users or a team in oddjob.io/allowed-teams';
  const TASK_HINT = "ask the Task's owners to add you to its allowedUsers or allowedTeams";

  async function buildJob(
    plan: RunPlan,
    user: string,
    id: string,
    runEnv?: k8s.V1EnvVar[],
    fixed?: Pick<LaunchOptions, 'jobName' | 'share'>,
  ): Promise<k8s.V1Job> {
    const neighbours: Neighbours = await shared(fixed?.share)(`neighbours/${plan.namespace}`, () => readNeighbours(kube, plan.namespace));
    try {
      return cloneJobFromDeployment(plan.deployment, {
        jobName: fixed?.jobName,
        runEnv,
        runId: id,
        user,
        command: plan.jobCommand,
        argv: plan.argv,
        task: plan.task && { name: plan.task.name, generation: plan.task.generation },
        reason: plan.reason,
        container: plan.container,
        interactive: plan.interactive,
        tty: plan.tty,
        noSidecars: plan.dropSidecars,
        activeDeadlineSeconds: plan.activeDeadlineSeconds,
        ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
        neighbours,
      });
    } catch (err) {
      throw badRequest(err instanceof CloneError ? err.message : `could not build the Job: ${(err as Error).message}`);
    }
  }

  /** A read made once per key for a tick's launches (ScheduledRunOptions.share), or now. */
  const shared =
    (share: ScheduledRunOptions['share']) =>
    <T>(key: string, read: () => Promise<T>): Promise<T> =>
      share ? share(key, read) : read();

  /** A free-form run: the Deployment's annotations decide (a schedule's: its consent). */
  async function planDeploymentRun(ctx: RequestContext, req: RunRequest, mode: PlanMode, sched?: ScheduledRunOptions): Promise<RunPlan> {
    const { identity } = ctx;
    const deployment = await shared(sched?.share)(`deployment/${req.namespace}/${req.deployment}`, () => readDeployment(req.namespace, req.deployment));
    const decision = sched ? sched.authorize(deployment) : decide(req, deployment, identity);
    if (!decision.allow) {
      if (mode === 'run') {
        metrics.runDenials.inc({ reason: decision.code });
        logger.info({ user: identity.login, namespace: req.namespace, deployment: req.deployment, reason: decision.code }, 'run denied');
      }
      return refuse(ctx, req, { reason: decision.reason, hint: 'hint' in decision ? decision.hint : ACCESS_HINT }, mode);
    }
    const resolved = resolveRun(req, deployment);
    if (resolved.refusal) return refuse(ctx, req, resolved.refusal, mode);
    return {
      namespace: req.namespace,
      deploymentName: req.deployment,
      deployment,
      container: resolved.container,
      image: resolved.image,
      argv: req.command,
      // A person's argv is theirs alone, all of it literal (a Task's own text is the owner's: see resolveTaskCommand).
      jobCommand: req.command.map(literalForKubelet),
      reason: req.reason,
      interactive: req.interactive,
      tty: req.tty,
      dropSidecars: resolved.dropSidecars,
      activeDeadlineSeconds: resolved.activeDeadlineSeconds,
      runPolicy: parseAccessPolicy(deployment.metadata?.annotations, config.githubOrg),
    };
  }

  /**
   * Cancels a run another replica owns (or nobody does, while it awaits adoption): the
   * request is recorded first, so whichever replica ends the run records the cancel, by
   * this person; then the Job is deleted from here, so the command stops even while its
   * owner is dead. Answers with the run once its ending is stored (or as it is after 20 s).
   */
  async function cancelElsewhere(run: Run, by: Canceller): Promise<Run> {
    const { controls } = deps;
    if (!controls) throw unavailable(`run ${run.id} is not tracked by this server`, 'try again in a moment');
    try {
      await controls.requestCancel(run.id, by);
    } catch (err) {
      logger.error({ err, run: run.id }, 'could not record a cancel request');
      throw unavailable(`run ${run.id} was not cancelled: the cancel could not be recorded in the store`, 'try again once the store is back');
    }
    try {
      await deleteRunJob(kube, run);
    } catch (err) {
      // Recorded: the owner (or the replica that adopts the run) deletes the Job itself.
      logger.warn(
        { err: toServiceError(err, `job ${run.namespace}/${run.jobName}`).message, run: run.id },
        'could not delete the Job of a run being cancelled',
      );
    }
    logger.info({ run: run.id, by: by.identity.login }, 'cancel of a run owned elsewhere recorded; waiting for its ending');
    const deadline = Date.now() + 20_000;
    let current = run;
    while (Date.now() < deadline) {
      current = (await runs.get(run.id)) ?? current;
      if (TERMINAL_STATUSES.includes(current.status)) return current;
      await new Promise<void>((resolve) => {
        const off = deps.wakeups?.on(run.id, done) ?? (() => {});
        const t = setTimeout(done, 250);
        function done() {
          clearTimeout(t);
          off();
          resolve();
        }
      });
    }
    return current;
  }

  /**
   * The run's progress credential, in a Secret of its own: env from a Secret is not in
   * the Job or pod spec, so it is readable only by who may read Secrets in the
   * namespace (who can read the Deployment's own secrets anyway), not by everyone who
   * may list Jobs or pods. createRun makes it owned by the Job, so it goes with it.
   * undefined: notifications are off, or it could not be made (the run goes on without).
   */
  async function issueRunCredential(namespace: string, id: string, activeDeadlineSeconds: number): Promise<k8s.V1EnvVar[] | undefined> {
    if (!notifications?.enabled) return undefined;
    try {
      const expiresAt = Date.now() + (activeDeadlineSeconds + config.startTimeoutSeconds + 300) * 1000;
      const token = await notifications.tokens.mint(id, expiresAt);
      await createRunSecret(kube, namespace, id, token);
    } catch (err) {
      logger.warn({ err: (err as Error).message, runId: id }, 'could not create the run progress credential; the run has none');
      return undefined;
    }
    return runEnvFor(id);
  }

  function runEnvFor(id: string): k8s.V1EnvVar[] | undefined {
    if (!notifications?.enabled) return undefined;
    return [
      { name: 'ODDJOB_RUN_ID', value: id },
      { name: 'ODDJOB_URL', value: deps.publicUrl?.() ?? '' },
      { name: 'ODDJOB_RUN_TOKEN', valueFrom: { secretKeyRef: { name: runSecretName(id), key: 'token' } } },
    ];
  }

  /** Where the run's notifications go, as its audit event and record carry it (unknown names are logged). */
  function routingFor(plan: RunPlan) {
    const routing = routingOf(plan.deployment);
    if (routing.unknown.length) {
      logger.warn({ namespace: plan.namespace, deployment: plan.deploymentName, unknown: routing.unknown }, describeUnknown(routing.unknown));
    }
    return {
      audit: { ...(routing.targets.length ? { notify: routing.targets } : {}), ...(routing.unknown.length ? { notifyUnknown: routing.unknown } : {}) },
      run: routing.targets.length ? { notify: routing.targets } : {},
    };
  }

  /** The run's progress credential for a launch: its env, and its Secret's fate once the Job exists or cannot. */
  async function credentialFor(plan: RunPlan, id: string, prebuilt: boolean) {
    const env = prebuilt ? undefined : await issueRunCredential(plan.namespace, id, plan.activeDeadlineSeconds);
    return {
      env,
      discard: async () => {
        if (env) await deleteRunSecret(kube, plan.namespace, id).catch(() => undefined);
      },
      adopt: async (created: k8s.V1Job) => {
        if (!env || !created.metadata?.uid) return;
        await adoptRunSecret(kube, plan.namespace, id, created.metadata.name!, created.metadata.uid).catch((err: unknown) =>
          logger.warn(
            { err: (err as Error).message, runId: id },
            'could not make the run credential Secret owned by its Job; it outlives the Job (the credential itself dies with the run)',
          ),
        );
      },
    };
  }

  /** A Task run: the Task as the API server has it now (not the watch), its values checked by the server. */
  async function planTaskRun(ctx: RequestContext, req: TaskRunRequest, mode: PlanMode, sched?: ScheduledRunOptions): Promise<RunPlan> {
    requireServed(req.namespace);
    const where = `task ${req.namespace}/${req.task}`;
    const obj = await readTask(kube, req.namespace, req.task);
    if (!obj) throw notFound(`${where} not found`);
    const validation = validateTaskSpec(obj.spec, config.githubOrg);
    if (!validation.ok) {
      throw new ServiceError(
        'conflict',
        `${where} is not valid, so it cannot run: ${validation.problem}`,
        'its owners must fix it (its status says the same)',
        'task_invalid',
      );
    }
    const { spec, timeoutSeconds } = validation.task;
    const generation = obj.metadata?.generation ?? 0;
    const refused: Refused = { namespace: req.namespace, deployment: spec.deployment, task: req.task, reason: req.reason };
    const deployment = await shared(sched?.share)(`deployment/${req.namespace}/${spec.deployment}`, () => readDeployment(req.namespace, spec.deployment));
    if (sched) {
      // No person stands behind a slot: the owners' consent, as the Deployment says now.
      const consent = sched.authorize(deployment);
      if (!consent.allow) {
        if (mode === 'run') metrics.runDenials.inc({ reason: consent.code });
        return refuse(ctx, refused, consent, mode);
      }
    } else {
      const decision = decideTaskAccess({
        namespace: req.namespace,
        task: req.task,
        spec,
        deploymentAnnotations: deployment.metadata?.annotations,
        identity: ctx.identity,
        defaultOrg: config.githubOrg,
      });
      if (!decision.allow) {
        if (mode === 'run') metrics.runDenials.inc({ reason: decision.code });
        return refuse(ctx, refused, { reason: decision.reason, hint: decision.code === 'not_opted_in' ? ACCESS_HINT : TASK_HINT }, mode);
      }
    }
    let resolvedArgv;
    try {
      resolvedArgv = resolveTaskCommand(validation.task, req.params);
    } catch (err) {
      if (err instanceof ParamError)
        throw badRequest(`invalid parameters for ${where}: ${err.message}`, `its parameters: oddjob tasks -n ${req.namespace} -o wide`);
      throw err;
    }
    // The Task's timeout, never above the Deployment's max-duration (or the server's).
    const max = maxSecondsFor(deployment);
    const deadline = Math.min(timeoutSeconds ?? config.defaultTimeoutSeconds, max);
    const runReq: RunRequest = {
      namespace: req.namespace,
      deployment: spec.deployment,
      container: spec.container,
      command: resolvedArgv.jobCommand,
      reason: req.reason,
      interactive: false,
      tty: false,
      noSidecars: false,
    };
    const resolved = resolveRun(runReq, deployment, deadline);
    if (resolved.refusal) return refuse(ctx, { ...refused, container: spec.container }, resolved.refusal, mode);
    return {
      namespace: req.namespace,
      deploymentName: spec.deployment,
      deployment,
      container: resolved.container,
      image: resolved.image,
      argv: resolvedArgv.argv,
      jobCommand: resolvedArgv.jobCommand,
      reason: req.reason,
      interactive: false,
      tty: false,
      dropSidecars: resolved.dropSidecars,
      activeDeadlineSeconds: resolved.activeDeadlineSeconds,
      task: { name: req.task, generation, approval: spec.approval, concurrencyPolicy: schedulePolicyOf(obj.spec) },
      runPolicy: taskRunPolicy(spec, deployment.metadata?.annotations, config.githubOrg),
    };
  }

  function planRun(ctx: RequestContext, req: RunTarget, mode: PlanMode, sched?: ScheduledRunOptions): Promise<RunPlan> {
    return isTaskTarget(req) ? planTaskRun(ctx, req, mode, sched) : planDeploymentRun(ctx, req, mode, sched);
  }

  /**
   * Creates the run holding its lease, from before anything about it is stored until it
   * is tracked: from its first record on a run is active, and another replica adopts an
   * active run nobody holds (while its Job is still being made).
   */
  async function launch(ctx: RequestContext, plan: RunPlan, opts: LaunchOptions): Promise<Run> {
    const { id } = opts;
    creating.add(id);
    try {
      if (!(await own.claim(id))) throw new Error(`run id ${id} is leased already`);
    } catch (err) {
      creating.delete(id);
      logger.error({ err, runId: id }, 'could not lease a new run; refusing it');
      throw unavailable('the run store cannot be written, so the run was refused (nothing was created)', 'try again once the store is back');
    }
    try {
      return await createAndTrack(ctx, plan, opts);
    } finally {
      creating.delete(id);
      // Refused, or failed before it was tracked: nobody needs the lease.
      if (!trackers.has(id)) await own.release(id);
    }
  }

  /** No record, no run: audited before anything is created; `job`, when given, is created exactly. */
  async function createAndTrack(ctx: RequestContext, plan: RunPlan, opts: LaunchOptions): Promise<Run> {
    const { identity, client } = ctx;
    const { id } = opts;
    const target = {
      namespace: plan.namespace,
      deployment: plan.deploymentName,
      command: plan.argv,
      reason: plan.reason,
      task: plan.task?.name,
      taskGeneration: plan.task?.generation,
      requestId: opts.approvalId,
    };
    const { container, image } = plan;
    const routing = routingFor(plan);
    try {
      await audit.appendDurable({
        type: 'run.requested',
        actor: identity,
        client,
        runId: id,
        ...target,
        container,
        image,
        message: opts.note,
        ...routing.audit,
      });
    } catch (err) {
      logger.error({ err }, 'audit log unwritable; refusing the run');
      throw unavailable(
        'the audit log cannot be written, so the run was refused (nothing was created)',
        'an operator must fix the audit store; see the server log',
      );
    }

    // An approved request's manifest was built without a credential (none existed then).
    const credential = await credentialFor(plan, id, Boolean(opts.job));

    let job: k8s.V1Job;
    try {
      job = opts.job ?? (await buildJob(plan, identity.login, id, credential.env, opts));
    } catch (err) {
      const message = (err as Error).message;
      await credential.discard();
      await audit
        .append({ type: 'run.finished', actor: identity, client, runId: id, ...target, container, status: 'failed', message })
        .catch((auditErr: unknown) => {
          logger.error({ err: auditErr }, 'could not record a Job that could not be built');
        });
      throw err;
    }

    const now = new Date().toISOString();
    await runs.create({
      id,
      namespace: plan.namespace,
      deployment: plan.deploymentName,
      container,
      image: job.spec?.template?.spec?.containers?.[0]?.image ?? image,
      command: plan.argv,
      reason: plan.reason,
      user: identity.login,
      userId: identity.id,
      interactive: plan.interactive,
      tty: plan.tty,
      status: 'pending',
      jobName: job.metadata!.name!,
      createdAt: now,
      outputBytes: 0,
      outputTruncated: false,
      task: plan.task?.name,
      taskGeneration: plan.task?.generation,
      approvalId: opts.approvalId,
      approvedBy: opts.approvedBy,
      ...routing.run,
    });

    let created: k8s.V1Job;
    try {
      created = await kube.batch.createNamespacedJob({ namespace: plan.namespace, body: job });
    } catch (err) {
      const failure = toServiceError(err, `job ${plan.namespace}/${job.metadata!.name}`);
      await credential.discard();
      try {
        await runs.update(id, { status: 'failed', message: failure.message, finishedAt: new Date().toISOString() });
        await audit.append({
          type: 'run.finished',
          actor: identity,
          client,
          runId: id,
          ...target,
          container,
          image,
          status: 'failed',
          message: failure.message,
        });
      } catch (auditErr) {
        logger.error({ err: auditErr }, 'could not record a failed create');
      }
      throw failure;
    }
    // The uid is what tells our Job (and the pod it controls) from look-alikes.
    const run = await runs.update(id, { jobUid: created.metadata?.uid });
    await credential.adopt(created);
    try {
      await audit.appendDurable({ type: 'run.created', actor: identity, client, runId: id, ...target, container, image, message: `job ${job.metadata!.name}` });
    } catch (err) {
      // The Job exists and run.requested is on record: the run goes on and is tracked
      // (an error here would leave a running Job nobody follows).
      logger.error({ err, runId: id }, 'could not record run.created; the run continues');
    }
    metrics.runsStarted.inc();
    logger.info(
      { run: id, user: identity.login, namespace: plan.namespace, deployment: plan.deploymentName, task: plan.task?.name, container, job: job.metadata!.name },
      'run created',
    );
    const t = await track(run);
    await replayState(t);
    return t.run;
  }

  /** Tasks in one namespace: from the watch once it has listed, else straight from the API server. */
  async function tasksIn(namespace: string) {
    if (taskCatalog.isSynced(namespace)) return taskCatalog.list(namespace);
    try {
      const list = (await kube.custom.listNamespacedCustomObject({ group: 'oddjob.io', version: 'v1alpha1', namespace, plural: 'tasks' })) as {
        items: TaskObject[];
      };
      return list.items.map((task) => ({ task, validation: taskCatalog.validate(task) }));
    } catch (err) {
      const e = toServiceError(err, `tasks in namespace ${namespace}`);
      if (e.kind === 'not_found')
        throw unavailable('the Task resource (tasks.oddjob.io) is not installed in this cluster', "install the chart's CRDs (charts/oddjob/crds)");
      throw e;
    }
  }

  /**
   * A person's run of a scheduled Task honours its schedule's concurrencyPolicy as a slot
   * would: Forbid refuses while a run of the Task is going, Replace cancels those runs (as
   * this person, audited) first. --force starts it anyway; the audit's message says so.
   */
  async function honourSchedulePolicy(ctx: RequestContext, plan: RunPlan, force: boolean): Promise<string | undefined> {
    const policy = plan.task?.concurrencyPolicy;
    if (!plan.task || !policy || policy === 'Allow') return undefined;
    const where = `task ${plan.namespace}/${plan.task.name}`;
    const going = (await runs.listActive()).filter((r) => r.namespace === plan.namespace && r.task === plan.task!.name);
    if (going.length === 0) return undefined;
    const ids = going.map((r) => r.id).join(', ');
    if (force) return `run now with --force past its schedule's concurrencyPolicy ${policy} (run ${ids} still going)`;
    if (policy === 'Forbid') {
      throw new ServiceError(
        'conflict',
        `${where} has run ${ids} still going and its schedule's concurrencyPolicy is Forbid, so nothing was started`,
        `wait for it to end (oddjob logs -f ${going[0]!.id}), or start one anyway with --force`,
        'concurrency_forbid',
      );
    }
    for (const r of going) {
      try {
        await service.cancelRun(ctx, r.id);
      } catch (err) {
        // Ended meanwhile: nothing left to replace.
        if (!(err instanceof ServiceError && err.kind === 'conflict')) throw err;
      }
    }
    return `replaced run ${ids} (its schedule's concurrencyPolicy is Replace)`;
  }

  /** Set by the approval service: a run that needs approval becomes a request. */
  let requestApproval: ((ctx: RequestContext, req: RunTarget, plan: RunPlan) => Promise<PendingApproval>) | undefined;
  let approvalNeeded: ((plan: RunPlan) => { approvers: string } | undefined) | undefined;

  const service: ManagedRunService = {
    readiness: [
      {
        name: 'kubernetes-watches',
        async check() {
          for (const [ns, w] of podWatches) if (!w.isSynced) throw new Error(`pod watch for namespace ${ns} has not synced`);
          const ns = deploymentCache.unsynced();
          if (ns) throw new Error(`deployment watch for namespace ${ns} has not synced`);
        },
      },
    ],

    async start() {
      for (const ns of config.namespaces) watchNamespace(ns);
      deploymentCache.start();
      // Not awaited, and not a readiness check: a cluster without the Task resource still
      // runs free-form commands (listing Tasks says what is missing).
      taskCatalog.start();
      await Promise.all([...podWatches.values(), ...jobWatches.values()].map((w) => w.whenSynced()).concat(deploymentCache.whenSynced()));
      // Reconcile: active runs nobody owns (this server's own from before a restart, or
      // a dead replica's), then keep doing so while running.
      await adoptOrphans();
      own.start();
    },

    async stop() {
      own.stop();
      for (const id of [...controlStops.keys()]) stopControl(id);
      for (const w of [...podWatches.values(), ...jobWatches.values()]) w.stop();
      deploymentCache.stop();
      taskCatalog.stop();
      // Runs still finishing (draining output) must not write after the stores close.
      for (const t of trackers.values()) t.detach();
      // Handed back, so another replica adopts them now instead of after the lease expires.
      await own.releaseAll([...trackers.keys()]);
    },

    async createRun(ctx, req) {
      const plan = await planRun(ctx, req, 'run');
      if (approvalNeeded?.(plan)) return requestApproval!(ctx, req, plan);
      const note = isTaskTarget(req) ? await honourSchedulePolicy(ctx, plan, req.force === true) : undefined;
      return launch(ctx, plan, { id: newRunId(), note });
    },

    cachedTasks() {
      if (taskCatalog.unsynced() !== undefined) return undefined;
      return config.namespaces.flatMap((ns) => taskCatalog.list(ns).map((e) => e.task));
    },

    async createScheduledRun(ctx, req, opts) {
      // The same slot tried again (a restart between create and record): the run it made.
      const existing = await runs.get(opts.runId);
      if (existing) return existing;
      const plan = await planRun(ctx, req, 'run', opts);
      // A second person's word cannot be had for a slot, so a run that needs one never
      // starts on a schedule (fail closed; the scheduler records the slot denied).
      const approval = approvalNeeded?.(plan);
      if (approval || plan.task?.approval === 'required') {
        const what = plan.task
          ? `task ${plan.namespace}/${plan.task.name} requires approval`
          : `deployment ${plan.namespace}/${plan.deploymentName} requires approval`;
        return refuse(
          ctx,
          { namespace: plan.namespace, deployment: plan.deploymentName, task: plan.task?.name, reason: plan.reason, command: plan.argv },
          {
            reason: `${what} (four-eyes), and a scheduled run has nobody to approve it, so it does not run`,
            hint: 'remove spec.schedule, or run it by hand through an approval request (oddjob run, then oddjob approve)',
          },
          'run',
        );
      }
      return launch(ctx, plan, { id: opts.runId, jobName: opts.jobName, share: opts.share, note: opts.note });
    },

    async previewRun(ctx, req) {
      // The same path as createRun up to the create. A preview is a question, not an
      // attempt: nothing is created and only a refusal is recorded (marked as a preview),
      // so probing what one may not do leaves the same trace as trying it.
      const plan = await planRun(ctx, req, 'preview');
      // The same oddjob variables a run gets (its credential's Secret is made at create time).
      const previewId = newRunId();
      const job = await buildJob(plan, ctx.identity.login, previewId, runEnvFor(previewId));
      const approval = approvalNeeded?.(plan);
      return {
        job: job as unknown as Record<string, unknown>,
        notify: routingOf(plan.deployment),
        // What the program receives, where the Job's command differs from it (escaped `$`).
        ...(plan.argv.some((a, i) => a !== plan.jobCommand[i]) || plan.task ? { argv: plan.argv } : {}),
        ...(approval ? { approval: { required: true as const, approvers: approval.approvers } } : {}),
      };
    },

    async listTasks(ctx, namespace) {
      if (namespace) requireServed(namespace);
      const out: TaskSummary[] = [];
      for (const ns of namespace ? [namespace] : config.namespaces) {
        for (const { task, validation } of await tasksIn(ns)) {
          const summary = summarizeTask(task, validation);
          const deployment = summary.deployment ? await deploymentCache.current(ns, summary.deployment).catch(() => undefined) : undefined;
          if (!deployment) continue;
          const annotations = deployment.metadata?.annotations;
          // A broken Task is shown to those who may run in its Deployment, so they can see why.
          const may = validation.ok
            ? decideTaskAccess({
                namespace: ns,
                task: summary.name,
                spec: validation.task.spec,
                deploymentAnnotations: annotations,
                identity: ctx.identity,
                defaultOrg: config.githubOrg,
              }).allow
            : decideAccess({ namespace: ns, deployment: summary.deployment, annotations, identity: ctx.identity, defaultOrg: config.githubOrg }).allow;
          if (may) out.push(summary);
        }
      }
      return out.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
    },

    planner: {
      plan: planRun,
      build: buildJob,
      launch,
      currentDeployment: (namespace, name) => deploymentCache.current(namespace, name),
      notifyTargets: (plan) => routingFor(plan).run.notify,
      readDeployment,
      onDeploymentChange: (listener) => deploymentCache.onChange(listener),
      cachedTask: (namespace, name) => taskCatalog.get(namespace, name),
      mayRunInDeployment: (ctx, namespace, deployment) =>
        Boolean(deployment) &&
        decideAccess({
          namespace,
          deployment: deployment!.metadata?.name ?? '',
          annotations: deployment!.metadata?.annotations,
          identity: ctx.identity,
          defaultOrg: config.githubOrg,
        }).allow,
    },

    useApprovals(hooks) {
      requestApproval = hooks.request;
      approvalNeeded = hooks.needed;
    },

    async getRun(ctx, id) {
      return getVisibleRun(ctx, id);
    },

    async readOutput(ctx, id) {
      const run = await getVisibleRun(ctx, id);
      if (run.outputExpiredAt) throw notFound(`the output of run ${id} was deleted at ${run.outputExpiredAt} (it is kept for a limited time)`);
      return { run, chunks: output.read(id) };
    },

    async listRuns(ctx, q: RunListQuery) {
      if (q.namespace && !served.has(q.namespace)) return { items: [] };
      const page = await runs.list({ ...q, user: q.mine ? ctx.identity.login : undefined });
      const items: Run[] = [];
      const read = deploymentReader();
      for (const run of page.items) {
        if (!served.has(run.namespace)) continue;
        // The store matches `mine` by login; a recycled login's earlier runs are not mine.
        if (q.mine && !isOwner(ctx, run)) continue;
        if (isOwner(ctx, run) || ctx.auditor === true || isApprover(ctx, run) || mayRunIn(ctx, run, await read(run))) items.push(run);
      }
      return { items, nextCursor: page.nextCursor };
    },

    async cancelRun(ctx, id) {
      const run = await getVisibleRun(ctx, id);
      // Stopping one's own run is always allowed; another person's takes the right to run
      // in its Deployment now. Seeing it (an auditor) is not enough.
      if (!isOwner(ctx, run) && !mayRunIn(ctx, run, await deploymentCache.current(run.namespace, run.deployment))) {
        const reason = `you may see run ${id} but not cancel it: only its owner (${run.user}) and people who may run in ${run.namespace}/${run.deployment} now may cancel it`;
        try {
          await audit.append({
            type: 'run.denied',
            actor: ctx.identity,
            client: ctx.client,
            runId: id,
            namespace: run.namespace,
            deployment: run.deployment,
            owner: run.user,
            message: reason,
          });
        } catch (err) {
          logger.error({ err }, 'could not record a denial in the audit log');
        }
        throw forbidden(reason, `ask ${run.user} or the owners of the deployment`);
      }
      if (TERMINAL_STATUSES.includes(run.status)) throw new ServiceError('conflict', `run ${id} already ended (${run.status})`);
      const by: Canceller = { identity: ctx.identity, client: ctx.client };
      const t = trackers.get(id);
      if (t) {
        await t.cancel(by);
        return t.run;
      }
      return cancelElsewhere(run, by);
    },

    async postProgress(id: string, token: string, message: string, client: AuditClient): Promise<Run> {
      // One answer for every refusal: the credential is wrong, not this run's, or the run is over.
      const refused = () =>
        unauthorized(
          'this run credential is not valid (wrong run, or the run has ended)',
          "inside a run's pod, use ODDJOB_RUN_ID and ODDJOB_RUN_TOKEN as given",
        );
      const run = await runs.get(id);
      if (!run || !served.has(run.namespace) || !notifications || TERMINAL_STATUSES.includes(run.status)) throw refused();
      if (!(await notifications.tokens.verify(id, token, Date.now()))) throw refused();
      const now = Date.now();
      const recent = (progressWindow.get(id) ?? []).filter((t) => now - t < 60_000);
      if (recent.length >= PROGRESS_PER_MINUTE) {
        throw new ServiceError('rate_limited', `run ${id} posted more than ${PROGRESS_PER_MINUTE} progress messages in a minute`, 'post less often');
      }
      recent.push(now);
      progressWindow.set(id, recent);
      if (progressWindow.size > 10_000) progressWindow.delete(progressWindow.keys().next().value!);
      // The pod is posting, so it runs; but the watch may not have told the tracker yet.
      // Wait (briefly) for run.started to be on record, so receivers see start, then progress.
      for (let i = 0; i < 50 && (await runs.get(id))?.status === 'pending'; i++) await new Promise((r) => setTimeout(r, 100));
      try {
        await audit.appendDurable({
          type: 'run.progress',
          actor: { login: run.user, id: run.userId, teams: [] },
          client: { ...client, kind: 'run' },
          runId: id,
          namespace: run.namespace,
          deployment: run.deployment,
          container: run.container,
          message,
        });
      } catch (err) {
        logger.error({ err, runId: id }, 'could not record run progress');
        throw unavailable('the progress message could not be recorded', 'try again');
      }
      return runs.update(id, { progress: { time: new Date(now).toISOString(), message } });
    },

    async attachViewer(ctx, id, opts, viewer: Viewer): Promise<ViewerHandle> {
      const run = await getVisibleRun(ctx, id);
      const owner = isOwner(ctx, run);
      // Input drives a command in the Deployment's runtime: only its owner, and only while they may still run there.
      let mayType = owner && run.interactive && mayRunIn(ctx, run, await deploymentCache.current(run.namespace, run.deployment).catch(() => undefined));
      const tracker = trackers.get(id);
      // Another replica tracks it (or it awaits adoption): follow it through the store.
      const remote = !tracker && opts.follow && !TERMINAL_STATUSES.includes(run.status) && deps.wakeups !== undefined;
      const hub = remote ? undefined : await hubFor(id);
      // Decided after the wait for the hub: a run that ended meanwhile (46 ms runs do) has
      // an ended hub, which takes no live viewer; one taken for live then got its replay
      // and never an end (the web run page waited for ever: web-signin.test, once).
      const live = remote || followsLive(tracker, hub, opts.follow);
      // A viewer that does not follow live is ended once its (paced) replay is out.
      const afterReplay = () => {
        if (live) return;
        void runs.get(id).then(
          (current) => endReplay(current ?? run),
          () => endReplay(run),
        );
      };
      const endReplay = (current: Run) => {
        if (opts.follow && !TERMINAL_STATUSES.includes(current.status)) {
          // Active but not tracked here (another replica, or reconciliation pending): the client retries.
          viewer.status({ kind: 'error', code: 'unavailable', message: `run ${id} is not being followed by this server yet` });
        } else if (TERMINAL_STATUSES.includes(current.status)) {
          viewer.status({
            kind: 'end',
            status: current.status,
            exitCode: current.exitCode,
            message: current.message,
            outputBytes: current.outputBytes,
            outputTruncated: current.outputTruncated,
          });
        }
        viewer.close();
      };
      const detach = hub
        ? hub.attach(viewer, opts.from, live, afterReplay)
        : followThroughStore({
            runId: id,
            output,
            runs,
            wakeups: deps.wakeups!,
            viewer,
            from: opts.from,
            endingRecorded: async () => (await audit.query({ runId: id, limit: 20 })).items.some((e) => ENDINGS.has(e.type)),
          });
      if (!live && !tracker) hubs.delete(id);
      // Input for a run owned elsewhere goes to its owner through the store.
      const remoteInput =
        remote && owner && run.interactive && deps.controls
          ? new RemoteInput({
              runId: id,
              controls: deps.controls,
              wakeups: deps.wakeups!,
              logger,
              onClosed(message) {
                mayType = false;
                viewer.status({ kind: 'error', code: 'input_closed', message });
                viewer.close();
              },
            })
          : undefined;
      let unwatch = () => {};
      if (live) {
        unwatch = watchAccess(run, (deployment) => {
          if (!mayView(ctx, run, deployment)) {
            unwatch();
            detach();
            mayType = false;
            viewer.status({
              kind: 'error',
              code: 'forbidden',
              message: `you may no longer see run ${id}: your access to deployment ${run.namespace}/${run.deployment} was withdrawn`,
            });
            viewer.close();
            return;
          }
          const could = mayType;
          mayType = owner && run.interactive && mayRunIn(ctx, run, deployment);
          if (could && !mayType) {
            viewer.status({ kind: 'progress', message: `input is no longer accepted: you may no longer run in deployment ${run.namespace}/${run.deployment}` });
          }
        });
      }
      return {
        // What this viewer could ever send: anything else is a protocol violation. Input
        // withdrawn later (mayType) is dropped, and the viewer was told so.
        accepts: { stdin: owner && run.interactive, resize: owner && run.tty },
        stdin: (data) => {
          if (!mayType) return true;
          if (tracker) return tracker.write(data);
          return remoteInput ? remoteInput.write(data) : true;
        },
        stdinDrained: () => tracker?.stdinDrained() ?? remoteInput?.drained() ?? Promise.resolve(),
        resize(size) {
          if (!mayType || !run.tty) return;
          if (tracker) tracker.resize(size);
          else remoteInput?.resize(size);
        },
        detach() {
          remoteInput?.close();
          unwatch();
          detach();
        },
      };
    },
  };
  return service;
}

/** A viewer attached now follows the run live through this replica's hub: the hub's run is tracked here and has not ended. */
function followsLive(tracker: RunTracker | undefined, hub: OutputHub | undefined, follow: boolean): boolean {
  return Boolean(tracker && !tracker.done && follow && hub && !hub.hasEnded);
}

/** A canceller as stored by another replica (store/controls.ts); anything else is not one. */
function cancellerFrom(stored: unknown): Canceller | undefined {
  const c = stored as Canceller | undefined;
  if (!c || typeof c !== 'object' || typeof c.identity?.login !== 'string' || !Array.isArray(c.identity.teams) || typeof c.client !== 'object')
    return undefined;
  return c;
}
