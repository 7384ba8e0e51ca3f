// The run service: request → decide → audit(requested) → clone → create Job →
// track to the end. Also serves run listings, cancellation and output streams.
// One watch per served namespace for oddjob's pods and Jobs feeds every tracker.
import { randomInt } from 'node:crypto';
import type * as k8s from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { TERMINAL_STATUSES, type Run, type RunListQuery, type RunRequest } from '../../protocol/api.js';
import type { AuditLog } from '../audit/store.js';
import type { RunStore } from '../audit/runs.js';
import type { OutputStore } from '../audit/output.js';
import { ServiceError, badRequest, forbidden, namespaceNotServed, notFound, unavailable } from '../errors.js';
import type { KubeClients } from '../k8s/client.js';
import { toServiceError } from '../k8s/client.js';
import { ResourceWatch } from '../k8s/watch.js';
import { CloneError, chooseContainer, cloneJobFromDeployment, type Neighbours } from '../jobs/clone.js';
import { readNeighbours } from '../k8s/neighbours.js';
import { durationSeconds } from '../../protocol/duration.js';
import { ANNOTATIONS, decideAccess } from '../policy/decide.js';
import type { ReadinessCheck, RequestContext, RunService, Viewer, ViewerHandle } from '../services.js';
import { OutputHub } from './hub.js';
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
  logger: Logger;
}

export type ManagedRunService = RunService & {
  start(): Promise<void>;
  stop(): Promise<void>;
  readiness: ReadinessCheck[];
};

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
  const hubs = new Map<string, OutputHub>();
  const podWatches = new Map<string, ResourceWatch<k8s.V1Pod>>();
  const jobWatches = new Map<string, ResourceWatch<k8s.V1Job>>();
  const splitStreams = {
    value: config.splitLogStreams === 'auto' ? undefined : config.splitLogStreams === true || config.splitLogStreams === 'true',
  };

  const hubFor = (id: string) => {
    let hub = hubs.get(id);
    if (!hub) hubs.set(id, (hub = new OutputHub(id, output)));
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
    },
  };

  function track(run: Run): RunTracker {
    const t = new RunTracker(run, hubFor(run.id), trackerDeps);
    trackers.set(run.id, t);
    return t;
  }

  const runIdOf = (obj: k8s.KubernetesObject) => obj.metadata?.labels?.['oddjob.io/run-id'];

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
      t?.onPod(type === 'DELETED' ? undefined : pod);
    });
    jobs.on((type, job) => {
      const id = runIdOf(job);
      const t = id ? trackers.get(id) : undefined;
      t?.onJob(type === 'DELETED' ? undefined : job);
    });
    podWatches.set(namespace, pods);
    jobWatches.set(namespace, jobs);
    pods.start();
    jobs.start();
  }

  /** Feeds a tracker what the watches already know (used after create and on restart). */
  function replayState(t: RunTracker, reconciling = false) {
    const { namespace, jobName, id } = t.run;
    const job = jobWatches.get(namespace)?.get(jobName);
    const pod = podWatches.get(namespace)?.list().find((p) => runIdOf(p) === id);
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

  function mayView(ctx: RequestContext, run: Run): boolean {
    if (run.user.toLowerCase() === ctx.identity.login.toLowerCase()) return true;
    const dep = deploymentCache.get(`${run.namespace}/${run.deployment}`);
    return Boolean(
      dep &&
        decideAccess({ namespace: run.namespace, deployment: run.deployment, annotations: dep.metadata?.annotations, identity: ctx.identity, defaultOrg: config.githubOrg }).allow,
    );
  }
  // Deployments are read fresh for decisions that grant a run; this cache only
  // decides who may *see* existing runs, where watch lag is acceptable.
  const deploymentCache = new Map<string, k8s.V1Deployment>();
  async function refreshDeployment(namespace: string, name: string) {
    try {
      deploymentCache.set(`${namespace}/${name}`, await kube.apps.readNamespacedDeployment({ name, namespace }));
    } catch {
      deploymentCache.delete(`${namespace}/${name}`);
    }
  }

  async function getVisibleRun(ctx: RequestContext, id: string): Promise<Run> {
    const run = runs.get(id);
    if (!run || !served.has(run.namespace)) throw notFound(`run ${id} not found`);
    if (!mayView(ctx, run)) {
      await refreshDeployment(run.namespace, run.deployment);
      if (!mayView(ctx, run)) throw notFound(`run ${id} not found`);
    }
    return run;
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

  /** Container, time limit and image of a permitted request; throws 400 for what cannot run. */
  function resolveRun(req: RunRequest, deployment: k8s.V1Deployment) {
    let container: string;
    try {
      container = chooseContainer(deployment, req.container);
    } catch (err) {
      if (err instanceof CloneError) throw badRequest(err.message);
      throw err;
    }
    if (req.tty && !req.interactive) throw badRequest('a TTY (-t) needs an interactive run (-i)', 'use -it together');
    const activeDeadlineSeconds = timeoutFor(req, deployment);
    const image = deployment.spec?.template?.spec?.containers?.find((c) => c.name === container)?.image ?? '';
    return { container, activeDeadlineSeconds, image };
  }

  function buildJob(req: RunRequest, deployment: k8s.V1Deployment, user: string, id: string, container: string, activeDeadlineSeconds: number, neighbours: Neighbours) {
    return cloneJobFromDeployment(deployment, {
      runId: id,
      user,
      command: req.command,
      reason: req.reason,
      container,
      interactive: req.interactive,
      tty: req.tty,
      noSidecars: req.noSidecars,
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
        },
      },
    ],

    async start() {
      for (const ns of config.namespaces) watchNamespace(ns);
      await Promise.all([...podWatches.values(), ...jobWatches.values()].map((w) => w.whenSynced()));
      // Reconcile: runs that were active when the service stopped.
      for (const run of runs.listActive()) {
        if (!served.has(run.namespace)) continue;
        replayState(track(run), true);
      }
    },

    async stop() {
      for (const w of [...podWatches.values(), ...jobWatches.values()]) w.stop();
      // Runs still finishing (draining output) must not write after the stores close.
      for (const t of trackers.values()) t.detach();
    },

    async createRun(ctx, req) {
      const { identity, client } = ctx;
      const target = { namespace: req.namespace, deployment: req.deployment, command: req.command, reason: req.reason };
      const deployment = await readDeployment(req.namespace, req.deployment);
      const decision = decide(req, deployment, identity);
      if (!decision.allow) {
        try {
          audit.append({ type: 'run.denied', actor: identity, client, ...target, container: req.container, message: decision.reason });
        } catch (err) {
          logger.error({ err }, 'could not record a denial in the audit log');
        }
        throw forbidden(decision.reason, 'ask the owners of the deployment to add you to oddjob.io/allowed-users or a team in oddjob.io/allowed-teams');
      }

      const { container, activeDeadlineSeconds, image } = resolveRun(req, deployment);
      const neighbours = await readNeighbours(kube, req.namespace);
      const id = newRunId();

      // No record, no run: the request is audited before anything is created.
      try {
        await audit.appendDurable({ type: 'run.requested', actor: identity, client, runId: id, ...target, container, image });
      } catch (err) {
        logger.error({ err }, 'audit log unwritable; refusing the run');
        throw unavailable('the audit log cannot be written, so the run was refused (nothing was created)', 'an operator must fix the audit store; see the server log');
      }

      let job: k8s.V1Job;
      try {
        job = buildJob(req, deployment, identity.login, id, container, activeDeadlineSeconds, neighbours);
      } catch (err) {
        const message = err instanceof CloneError ? err.message : `could not build the Job: ${(err as Error).message}`;
        audit.append({ type: 'run.finished', actor: identity, client, runId: id, ...target, container, status: 'failed', message });
        throw badRequest(message);
      }

      const now = new Date().toISOString();
      const run: Run = runs.create({
        id,
        namespace: req.namespace,
        deployment: req.deployment,
        container,
        image,
        command: req.command,
        reason: req.reason,
        user: identity.login,
        interactive: req.interactive,
        tty: req.tty,
        status: 'pending',
        jobName: job.metadata!.name!,
        createdAt: now,
        outputBytes: 0,
        outputTruncated: false,
      });

      try {
        await kube.batch.createNamespacedJob({ namespace: req.namespace, body: job });
      } catch (err) {
        const failure = toServiceError(err, `job ${req.namespace}/${job.metadata!.name}`);
        runs.update(id, { status: 'failed', message: failure.message, finishedAt: new Date().toISOString() });
        try {
          audit.append({ type: 'run.finished', actor: identity, client, runId: id, ...target, container, image, status: 'failed', message: failure.message });
        } catch (auditErr) {
          logger.error({ err: auditErr }, 'could not record a failed create');
        }
        throw failure;
      }
      try {
        await audit.appendDurable({ type: 'run.created', actor: identity, client, runId: id, ...target, container, image, message: `job ${job.metadata!.name}` });
      } catch (err) {
        // The Job exists and run.requested is on record: the run goes on and is tracked
        // (an error here would leave a running Job nobody follows).
        logger.error({ err, runId: id }, 'could not record run.created; the run continues');
      }
      replayState(track(run));
      return runs.get(id) ?? run;
    },

    async previewRun(ctx, req) {
      // The same path as createRun up to the create, minus the audit records:
      // a preview is a question, not an attempt. Nothing is written anywhere.
      const deployment = await readDeployment(req.namespace, req.deployment);
      const decision = decide(req, deployment, ctx.identity);
      if (!decision.allow) {
        throw forbidden(decision.reason, 'ask the owners of the deployment to add you to oddjob.io/allowed-users or a team in oddjob.io/allowed-teams');
      }
      const { container, activeDeadlineSeconds } = resolveRun(req, deployment);
      const neighbours = await readNeighbours(kube, req.namespace);
      try {
        return { job: buildJob(req, deployment, ctx.identity.login, newRunId(), container, activeDeadlineSeconds, neighbours) };
      } catch (err) {
        throw badRequest(err instanceof CloneError ? err.message : `could not build the Job: ${(err as Error).message}`);
      }
    },

    async getRun(ctx, id) {
      return getVisibleRun(ctx, id);
    },

    async listRuns(ctx, q: RunListQuery) {
      if (q.namespace && !served.has(q.namespace)) return { items: [] };
      const page = runs.list({ ...q, user: q.mine ? ctx.identity.login : undefined });
      const items: Run[] = [];
      for (const run of page.items) {
        if (!served.has(run.namespace)) continue;
        if (!mayView(ctx, run)) await refreshDeployment(run.namespace, run.deployment);
        if (mayView(ctx, run)) items.push(run);
      }
      return { items, nextCursor: page.nextCursor };
    },

    async cancelRun(ctx, id) {
      const run = await getVisibleRun(ctx, id);
      if (TERMINAL_STATUSES.includes(run.status)) throw new ServiceError('conflict', `run ${id} already ended (${run.status})`);
      const t = trackers.get(id);
      if (!t) throw unavailable(`run ${id} is not tracked by this server`, 'try again in a moment');
      await t.cancel(ctx.identity);
      return runs.get(id)!;
    },

    async attachViewer(ctx, id, opts, viewer: Viewer): Promise<ViewerHandle> {
      const run = await getVisibleRun(ctx, id);
      const hub = hubFor(id);
      const tracker = trackers.get(id);
      const live = Boolean(tracker && !tracker.done && opts.follow);
      // A viewer that does not follow live is ended once its (paced) replay is out.
      const afterReplay = () => {
        if (live) return;
        const current = runs.get(id) ?? run;
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
      const detach = hub.attach(viewer, opts.from, live, afterReplay);
      if (!live && !tracker) hubs.delete(id);
      const owner = run.user.toLowerCase() === ctx.identity.login.toLowerCase();
      const accepts = { stdin: owner && run.interactive, resize: owner && run.tty };
      return {
        accepts,
        stdin: (data) => (accepts.stdin && tracker ? tracker.write(data) : true),
        stdinDrained: () => tracker?.stdinDrained() ?? Promise.resolve(),
        resize(size) {
          if (accepts.resize) tracker?.resize(size);
        },
        detach,
      };
    },
  };
  return service;
}
