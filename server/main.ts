// `oddjob server`: parse the config once, wire the real pieces together,
// listen, and shut down gracefully (runs keep going; they are Jobs).
import http from 'node:http';
import { hostname } from 'node:os';
import type { AddressInfo } from 'node:net';
import { createAuth } from './auth/setup.js';
import { ConfigError, helpText, loadConfig, type ServerConfig } from './config.js';
import { createDeploymentService } from './deployments/service.js';
import { createApp } from './http/app.js';
import { KubeConfigError, loadKube } from './k8s/client.js';
import { leaseClient, ownNamespace } from './k8s/lease.js';
import { LeaderElector, replicaIdentity } from './leader/leader.js';
import { createLogger } from './logger.js';
import { metrics, observeDatabase } from './metrics.js';
import { createRunService } from './runs/service.js';
import { createSchedules } from './schedules/wire.js';
import { Notifications } from './notify/service.js';
import { serverVersion } from './version.js';
import { createApprovalService } from './approvals/service.js';
import { openStore, schedulePruning } from './store/index.js';
import { verifyInWorker } from './store/verify-worker.js';

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

export async function startServer(config: ServerConfig): Promise<RunningServer> {
  const logger = createLogger(config.logLevel);
  const store = await openStore(config.dbTarget, {
    maxOutputBytesPerRun: config.maxOutput,
    onIdleError: (err) => logger.warn({ err: err.message }, 'lost an idle database connection (it is replaced on next use)'),
  });
  if (config.dbTarget.engine === 'sqlite') observeDatabase(config.dbTarget.path);
  logger.info({ engine: store.engine, db: config.db }, 'store open');
  const { audit, output, runs: runStore } = store;
  // Until we listen, a --port 0 server does not know its own URL.
  let listeningUrl = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${config.port}`;
  const publicUrl = () => config.publicUrl ?? listeningUrl;
  const notifications = new Notifications({
    outbox: store.outbox,
    tokens: store.runTokens,
    config: config.notifications,
    lookupRun: (id, trx) => runStore.get(id, trx),
    publicUrl,
    logger,
    userAgent: `oddjob/${serverVersion}`,
  });
  // Outbox rows are written by the audit append itself, in its transaction.
  audit.onAppend((trx, events) => notifications.onAudit(trx, events));
  if (config.notifications) {
    logger.info(
      { file: config.notificationsFile, targets: [...config.notifications.targets.values()].map((t) => `${t.name} (${t.kind})`) },
      'notification targets loaded',
    );
  }
  const kube = loadKube({ kubeconfig: config.kubeconfig });
  const runs = createRunService({
    kube,
    audit,
    runs: runStore,
    output,
    wakeups: store.wakeups,
    controls: store.controls,
    // SQLite is one server per file: it owns every run, and a restart takes its runs
    // back at once instead of waiting out its predecessor's leases.
    leases: store.engine === 'postgres' ? store.leases : undefined,
    logger,
    notifications,
    publicUrl,
    config: {
      namespaces: config.namespaces,
      githubOrg: config.githubOrg,
      defaultTimeoutSeconds: config.defaultTimeout,
      maxTimeoutSeconds: config.maxTimeout,
      ttlSecondsAfterFinished: config.ttlAfterFinished,
      startTimeoutSeconds: config.startTimeout,
      splitLogStreams: config.splitLogStreams,
    },
  });
  const approvals = createApprovalService({
    kube,
    planner: runs.planner,
    store: store.approvals,
    audit,
    logger,
    config: { ttlSeconds: config.approvalTtl, githubOrg: config.githubOrg, namespaces: config.namespaces },
  });
  runs.useApprovals(approvals);
  const deployments = createDeploymentService({ kube, config, logger });
  const schedules = createSchedules({
    slots: store.schedules,
    kube,
    audit,
    runs,
    runStore,
    logger,
    namespaces: config.namespaces,
    githubOrg: config.githubOrg,
    isLeader: () => leader.isLeader(),
    notifyTargets: async (namespace, name) => {
      const deployment = await runs.planner.currentDeployment(namespace, name);
      return deployment && notifications.routing(deployment.metadata?.annotations).targets;
    },
  });
  const { auth, authRouter } = createAuth({ config, credentialRows: store.credentials, rateCounters: store.rateLimits, audit, logger, publicUrl });

  const { server, dispose, metricsHandler } = createApp({
    publicUrl,
    authRouter,
    trustProxy: config.trustProxy,
    loopbackOnly: config.auth === 'dev',
    serveMetrics: config.metricsPort === undefined,
    apiRateLimit: config.apiRateLimit,
    rateCounters: store.rateLimits,
    logger,
    runs,
    deployments,
    tasks: runs,
    approvals,
    schedules: schedules.service,
    // Queries are index range scans (fast, in-process); verification re-hashes
    // everything, in a worker thread so streams and requests keep flowing.
    audit: { query: (q) => audit.query(q), iterate: (q) => audit.iterate(q), verify: () => verifyInWorker(config.dbTarget) },
    auth,
    notifications: {
      list: (q) => notifications.list(q),
      async redeliver(ctx, id) {
        const before = await notifications.get(id);
        if (!before) return undefined;
        // On record before it is due again: the log says who asked for a second send.
        await audit.appendDurable({
          type: 'notification.redelivered',
          actor: ctx.identity,
          client: ctx.client,
          deliveryId: id,
          runId: before.runId,
          message: `redelivery of ${before.event} to target ${before.target} (webhook id ${before.webhookId}, was ${before.state})`,
        });
        return notifications.redeliver(id);
      },
      async redeliverFailed(ctx, target) {
        await audit.appendDurable({
          type: 'notification.redelivered',
          actor: ctx.identity,
          client: ctx.client,
          message: `redelivery of every failed delivery${target === undefined ? '' : ` to target ${target}`}`,
        });
        return notifications.redeliverFailed(target);
      },
    },
    readiness: [
      ...runs.readiness,
      {
        name: 'audit-store',
        check: () => store.probe(),
      },
    ],
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.port, config.host, () => resolve());
  });
  // /metrics on its own port: an Ingress that routes the main port cannot expose it.
  const metricsServer = config.metricsPort === undefined ? undefined : http.createServer(metricsHandler);
  if (metricsServer) {
    await new Promise<void>((resolve, reject) => {
      metricsServer.once('error', reject);
      metricsServer.listen(config.metricsPort, config.host, () => resolve());
    });
  }
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`;
  listeningUrl = url;
  // Watches start after listening: /readyz answers 503 until they have synced.
  await runs.start();
  // Deliveries left by the last run of this server (or another replica) go out now.
  notifications.start();
  approvals.start();
  // Singleton work runs on the elected replica only. With one store shared by every
  // replica, two replicas pruning would race each other for the same rows.
  const leaseNamespace = config.leaderLeaseNamespace ?? ownNamespace() ?? config.namespaces[0]!;
  const timing = {
    leaseDurationMs: config.leaderLeaseDuration * 1000,
    renewDeadlineMs: config.leaderRenewDeadline * 1000,
    retryPeriodMs: config.leaderRetryPeriod * 1000,
  };
  const leader = new LeaderElector({
    lease: leaseClient(kube, leaseNamespace, config.leaderLease, { timeoutMs: timing.renewDeadlineMs }),
    identity: replicaIdentity(process.env, hostname(), process.pid),
    timing,
    logger,
  });
  leader.whileLeading('output-retention', (signal) => {
    const stopPruning = schedulePruning(output, {
      retentionMs: config.outputRetention * 1000,
      onPass: () => {
        metrics.singletonPasses.inc({ task: 'output_retention' });
        logger.debug('output retention pass (leader only)');
      },
      onPruned: (count) => logger.info({ runs: count, retentionSeconds: config.outputRetention }, 'deleted the stored output of runs past --output-retention'),
      onError: (err) => logger.error({ err }, 'could not prune expired run output (will retry)'),
    });
    signal.addEventListener('abort', stopPruning, { once: true });
  });
  // After the run service: a slot's run is tracked like any other from its first moment.
  // One replica schedules at a time; a new leader continues from the slot store.
  leader.whileLeading('scheduler', (signal) => schedules.lead(signal));
  leader.start();
  return {
    url,
    async close() {
      // First, so a standby takes over the singleton work while this one drains.
      await leader.stop();
      approvals.stop();
      metricsServer?.close();
      await dispose();
      await schedules.stop();
      await runs.stop();
      await notifications.stop();
      await store.close();
    },
  };
}

export async function runServerCli(argv: string[]): Promise<number> {
  const args = argv.slice(3);
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(helpText());
    return 0;
  }
  let running: RunningServer;
  let config: ServerConfig;
  try {
    config = loadConfig(args, process.env);
    running = await startServer(config);
  } catch (err) {
    if (err instanceof ConfigError || err instanceof KubeConfigError) {
      process.stderr.write(`oddjob server: ${err.message}\n  run \`oddjob server --help\` for all options\n`);
      return 2;
    }
    process.stderr.write(`oddjob server: could not start: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(
    `oddjob server listening on ${running.url} (namespaces: ${config.namespaces.join(', ')}; auth: ${config.auth}${config.auth === 'dev' ? ` as ${config.devUser}` : ''})\n`,
  );
  return new Promise<number>((resolve) => {
    const stop = (signal: string) => {
      process.stderr.write(`oddjob server: ${signal}, shutting down (running Jobs keep going)\n`);
      void running.close().then(
        () => {
          // The lease is released and the stores are closed: nothing left is worth waiting
          // for, and the launcher exits now. Timers still pending are counted, so a leak (a
          // timer that outlives its work) shows up instead of as a slow exit (a run's 15 s
          // drain timer once held every stop for 15 s).
          const timers = process.getActiveResourcesInfo().filter((r) => r === 'Timeout' || r === 'Immediate').length;
          process.stderr.write(`oddjob server: stopped; ${timers} timers left pending\n`);
          resolve(0);
        },
        () => resolve(1),
      );
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });
}
