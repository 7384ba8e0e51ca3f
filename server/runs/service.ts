// The run service: request → decide → audit(requested) → clone → create Job →
// track to the end. Also serves run listings, cancellation and output streams.
// One watch per served namespace for oddjob's pods and Jobs feeds every tracker.
import { randomInt } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TERMINAL_STATUSES, type Run, type RunListQuery, type RunRequest } from '../../protocol/api.js';
import { isRunOwner } from '../../protocol/owner.js';
import type { AuditLog } from '../store/audit.js';
import type { RunStore } from '../store/runs.js';
import type { OutputStore } from '../store/output.js';
import type { Wakeups } from '../store/wakeups.js';
import type { RunLeases } from '../store/leases.js';
import { runOwnership } from './own.js';
import { ServiceError, badRequest, forbidden, namespaceNotServed, notFound, unavailable } from '../errors.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { ResourceWatch } from '../k8s/watch.js';
import { CloneError, chooseContainer, cloneJobFromDeployment, type Neighbours } from '../jobs/clone.js';
import { readNeighbours } from '../k8s/neighbours.js';
import { watchPodEvents } from '../k8s/pod-events.js';
import { DeploymentCache } from '../deployments/cache.js';
import { durationSeconds } from '../../protocol/duration.js';
import { metrics, observeActiveRuns } from '../metrics.js';
import { ANNOTATIONS, decideAccess } from '../policy/decide.js';
import { type Refusal, decideContainer, decideSidecars } from '../policy/containers.js';
import type { ReadinessCheck, RequestContext, RunService, Viewer, ViewerHandle } from '../services.js';
import { OutputHub } from './hub.js';
import { followThroughStore } from './stream.js';
import { jobAdoptableBy, jobBelongsTo, podBelongsTo } from './ownership.js';
import { RunTracker } from './tracker.js';

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
  logger: Logger;
}

/**
 * A run the server starts on its own behalf (a schedule slot): a fixed run id and Job
 * name (the same for every try of the slot), and instead of a person's access, the
 * Deployment's consent as `authorize` sees it now.
 */
export interface LaunchOptions {
  runId: string;
  jobName: string;
  authorize: (deployment: k8s.V1Deployment) => { allow: true } | { allow: false; code: string; reason: string; hint: string };
  /**
   * Lets launches started together share one read of the Deployment and of the
   * namespace's neighbours (the launcher's: a read at most a second old, made for this
   * tick); without it every run reads them itself.
   */
  share?: <T>(key: string, read: () => Promise<T>) => Promise<T>;
}

export type ManagedRunService = RunService & {
  /** createRun for a run the server starts itself; answers the existing run if `opts.runId` already exists. */
  createRun(ctx: RequestContext, req: RunRequest, opts?: LaunchOptions): Promise<Run>;
  start(): Promise<void>;
  stop(): Promise<void>;
  readiness: ReadinessCheck[];
};

const ENDINGS = new Set(['run.finished', 'run.cancelled', 'run.lost']);

const RUN_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
export function newRunId(): string {
  let id = '';
  for (let i = 0; i < 12; i++) id += RUN_ID_ALPHABET[randomInt(RUN_ID_ALPHABET.length)];
  return id;
}

export function createRunService(deps: RunServiceDeps): ManagedRunService {
  const { kube, config, audit, runs, output, logger } = deps;
  const served = new Set(config.namespaces);
  const trackers = new Map<string, RunTracker>();
  observeActiveRuns(() => trackers.size);
  const hubs = new Map<string, Promise<OutputHub>>();
  const podWatches = new Map<string, ResourceWatch<k8s.V1Pod>>();
  const jobWatches = new Map<string, ResourceWatch<k8s.V1Job>>();
  const deploymentCache = new DeploymentCache({ kube, namespaces: config.namespaces, logger });
  const splitStreams = {
    value: config.splitLogStreams === 'auto' ? undefined : config.splitLogStreams === true || config.splitLogStreams === 'true',
  };

  const hubFor = (id: string): Promise<OutputHub> => {
    let hub = hubs.get(id);
    if (!hub) {
      hubs.set(id, (hub = OutputHub.open(id, output)));
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
      void own.release(id);
    },
    watchPodEvents: (pod: { namespace: string; uid: string }, onEvent: (event: k8s.CoreV1Event) => void) => watchPodEvents(kube, logger, pod, onEvent),
  };

  // Run ownership (store/leases.ts): this replica tracks only the runs it holds a lease
  // on, renews them, and adopts active runs whose owner stopped renewing.
  const own = runOwnership({
    leases: deps.leases,
    logger,
    owned: () => [...trackers.keys()],
    onLost: (id) => {
      // Another replica took the run over (this one stalled past its lease): stop writing.
      trackers.get(id)?.detach();
      trackers.delete(id);
      hubs.delete(id);
    },
    adopt: () => adoptOrphans(),
  });

  /** Tracks the active runs of served namespaces that nobody holds a lease on. */
  async function adoptOrphans(): Promise<void> {
    for (const run of await runs.listActive()) {
      if (!served.has(run.namespace) || trackers.has(run.id)) continue;
      if (!(await own.claim(run.id))) continue;
      if (trackers.has(run.id)) continue;
      logger.info({ run: run.id }, 'tracking an active run nobody owns (restart or adoption)');
      await replayState(await track(run), true);
    }
  }

  async function track(run: Run): Promise<RunTracker> {
    const t = new RunTracker(run, await hubFor(run.id), trackerDeps);
    trackers.set(run.id, t);
    return t;
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
    const pod = verifiedPod(t);
    // Pod first: its exit code and output matter more than the Job's summary.
    if (pod) t.onPod(pod);
    if (job) t.onJob(job);
    // Only at start-up does "not in the synced cache" mean gone: right after a
    // create, the watch simply has not delivered the new Job yet.
    if (reconciling && !job && !pod) t.onMissing();
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
    return isOwner(ctx, run) || ctx.auditor === true || mayRunIn(ctx, run, deployment);
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
    if (isOwner(ctx, run) || ctx.auditor === true) return run;
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

  function timeoutFor(req: RunRequest, deployment: k8s.V1Deployment): number {
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
    const activeDeadlineSeconds = timeoutFor(req, deployment);
    const image = deployment.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image ?? '';
    return { container, dropSidecars: sidecars.drop, activeDeadlineSeconds, image };
  }

  /** Records a refused request (a preview's too, marked as one), then refuses it. */
  async function refuse(ctx: RequestContext, req: RunRequest, refusal: { reason: string; hint: string }, preview: boolean): Promise<never> {
    try {
      await audit.append({
        type: 'run.denied',
        actor: ctx.identity,
        client: ctx.client,
        namespace: req.namespace,
        deployment: req.deployment,
        command: req.command,
        reason: req.reason,
        container: req.container,
        message: refusal.reason,
        ...(preview ? { preview: true } : {}),
      });
    } catch (err) {
      logger.error({ err }, 'could not record a denial in the audit log');
    }
    throw forbidden(refusal.reason, refusal.hint);
  }

  const ACCESS_HINT = 'ask the owners of the deployment to add you to oddjob.io/allowed-users or a team in oddjob.io/allowed-teams';

  function buildJob(
    req: RunRequest,
    deployment: k8s.V1Deployment,
    user: string,
    id: string,
    container: string,
    dropSidecars: boolean,
    activeDeadlineSeconds: number,
    neighbours: Neighbours,
    fixedJobName?: string,
  ) {
    return cloneJobFromDeployment(deployment, {
      jobName: fixedJobName,
      runId: id,
      user,
      command: req.command,
      reason: req.reason,
      container,
      interactive: req.interactive,
      tty: req.tty,
      noSidecars: dropSidecars,
      activeDeadlineSeconds,
      ttlSecondsAfterFinished: config.ttlSecondsAfterFinished,
      neighbours,
    });
  }

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
      await Promise.all([...podWatches.values(), ...jobWatches.values()].map((w) => w.whenSynced()).concat(deploymentCache.whenSynced()));
      // Reconcile: active runs nobody owns (this server's own from before a restart, or
      // a dead replica's), then keep doing so while running.
      await adoptOrphans();
      own.start();
    },

    async stop() {
      own.stop();
      for (const w of [...podWatches.values(), ...jobWatches.values()]) w.stop();
      deploymentCache.stop();
      // Runs still finishing (draining output) must not write after the stores close.
      for (const t of trackers.values()) t.detach();
      // Handed back, so another replica adopts them now instead of after the lease expires.
      await own.releaseAll([...trackers.keys()]);
    },

    async createRun(ctx, req, opts?: LaunchOptions) {
      // The same slot tried again (a restart between create and record): the run it made.
      const existing = opts && (await runs.get(opts.runId));
      if (existing) return existing;
      const { identity, client } = ctx;
      const target = { namespace: req.namespace, deployment: req.deployment, command: req.command, reason: req.reason };
      const share = opts?.share ?? (<T>(_key: string, read: () => Promise<T>) => read());
      const deployment = await share(`deployment/${req.namespace}/${req.deployment}`, () => readDeployment(req.namespace, req.deployment));
      const decision = opts ? opts.authorize(deployment) : decide(req, deployment, identity);
      if (!decision.allow) {
        metrics.runDenials.inc({ reason: decision.code });
        logger.info({ user: identity.login, namespace: req.namespace, deployment: req.deployment, reason: decision.code }, 'run denied');
        return refuse(ctx, req, { reason: decision.reason, hint: 'hint' in decision ? decision.hint : ACCESS_HINT }, false);
      }

      const resolved = resolveRun(req, deployment);
      if (resolved.refusal) return refuse(ctx, req, resolved.refusal, false);
      const { container, dropSidecars, activeDeadlineSeconds, image } = resolved;
      const neighbours = await share(`neighbours/${req.namespace}`, () => readNeighbours(kube, req.namespace));
      const id = opts?.runId ?? newRunId();

      // No record, no run: the request is audited before anything is created.
      try {
        await audit.appendDurable({ type: 'run.requested', actor: identity, client, runId: id, ...target, container, image });
      } catch (err) {
        logger.error({ err }, 'audit log unwritable; refusing the run');
        throw unavailable(
          'the audit log cannot be written, so the run was refused (nothing was created)',
          'an operator must fix the audit store; see the server log',
        );
      }

      let job: k8s.V1Job;
      try {
        job = buildJob(req, deployment, identity.login, id, container, dropSidecars, activeDeadlineSeconds, neighbours, opts?.jobName);
      } catch (err) {
        const message = err instanceof CloneError ? err.message : `could not build the Job: ${(err as Error).message}`;
        await audit
          .append({ type: 'run.finished', actor: identity, client, runId: id, ...target, container, status: 'failed', message })
          .catch((auditErr: unknown) => {
            logger.error({ err: auditErr }, 'could not record a Job that could not be built');
          });
        throw badRequest(message);
      }

      const now = new Date().toISOString();
      await runs.create({
        id,
        namespace: req.namespace,
        deployment: req.deployment,
        container,
        image,
        command: req.command,
        reason: req.reason,
        user: identity.login,
        userId: identity.id,
        interactive: req.interactive,
        tty: req.tty,
        status: 'pending',
        jobName: job.metadata!.name!,
        createdAt: now,
        outputBytes: 0,
        outputTruncated: false,
      });

      let created: k8s.V1Job;
      try {
        created = await kube.batch.createNamespacedJob({ namespace: req.namespace, body: job });
      } catch (err) {
        const failure = toServiceError(err, `job ${req.namespace}/${job.metadata!.name}`);
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
      try {
        await audit.appendDurable({
          type: 'run.created',
          actor: identity,
          client,
          runId: id,
          ...target,
          container,
          image,
          message: `job ${job.metadata!.name}`,
        });
      } catch (err) {
        // The Job exists and run.requested is on record: the run goes on and is tracked
        // (an error here would leave a running Job nobody follows).
        logger.error({ err, runId: id }, 'could not record run.created; the run continues');
      }
      metrics.runsStarted.inc();
      logger.info({ run: id, user: identity.login, namespace: req.namespace, deployment: req.deployment, container, job: job.metadata!.name }, 'run created');
      // A new run is nobody else's: the claim only fails if the store does.
      await own
        .claim(id)
        .catch((err: unknown) => logger.error({ err, runId: id }, 'could not record the ownership of a new run; another replica may adopt it'));
      const t = await track(run);
      await replayState(t);
      return t.run;
    },

    async previewRun(ctx, req) {
      // The same path as createRun up to the create. A preview is a question, not an
      // attempt: nothing is created and only a refusal is recorded (marked as a preview),
      // so probing what one may not do leaves the same trace as trying it.
      const deployment = await readDeployment(req.namespace, req.deployment);
      const decision = decide(req, deployment, ctx.identity);
      if (!decision.allow) return refuse(ctx, req, { reason: decision.reason, hint: ACCESS_HINT }, true);
      const resolved = resolveRun(req, deployment);
      if (resolved.refusal) return refuse(ctx, req, resolved.refusal, true);
      const { container, dropSidecars, activeDeadlineSeconds } = resolved;
      const neighbours = await readNeighbours(kube, req.namespace);
      try {
        return { job: buildJob(req, deployment, ctx.identity.login, newRunId(), container, dropSidecars, activeDeadlineSeconds, neighbours) };
      } catch (err) {
        throw badRequest(err instanceof CloneError ? err.message : `could not build the Job: ${(err as Error).message}`);
      }
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
        if (isOwner(ctx, run) || ctx.auditor === true || mayRunIn(ctx, run, await read(run))) items.push(run);
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
      const t = trackers.get(id);
      if (!t) throw unavailable(`run ${id} is not tracked by this server`, 'try again in a moment');
      await t.cancel({ identity: ctx.identity, client: ctx.client });
      return t.run;
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
      const live = remote || Boolean(tracker && !tracker.done && opts.follow);
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
        stdin: (data) => (mayType && tracker ? tracker.write(data) : true),
        stdinDrained: () => tracker?.stdinDrained() ?? Promise.resolve(),
        resize(size) {
          if (mayType && run.tty) tracker?.resize(size);
        },
        detach() {
          unwatch();
          detach();
        },
      };
    },
  };
  return service;
}
