// Benchmark: schedules. N every-minute schedules (1, 100, 1,000) — real Task objects,
// read through the run service's Task catalog as the server's scheduler reads them —
// fire at the same minute through the real launch path (run service in this process:
// Task and Deployment read, consent, audit before create, Job created on the real
// cluster). Measured:
//   slot → Job created   from the slot's nominal time to the API server's answer to the
//                        Job create, per slot (p50/p99); includes up to one tick (1 s)
//                        of waiting for the scheduler to look
//   CPU per tick         of this process, for a tick with nothing due (59 of every 60),
//                        the same while the N runs are open (each is followed every tick),
//                        and for the tick that decides and launches all N slots
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { type KubeClients, loadKube } from '../server/k8s/client.js';
import { deleteJob } from '../server/k8s/jobs.js';
import { createLogger } from '../server/logger.js';
import { createRunService } from '../server/runs/service.js';
import { createSlotLauncher } from '../server/schedules/launch.js';
import { Scheduler, type SlotLauncher } from '../server/schedules/scheduler.js';
import { requestedIn, scheduledTasksOf } from '../server/schedules/wire.js';
import { createTestNamespace, optedInDeployment } from '../test/support/cluster.js';
import { applyTaskCrd } from '../test/support/task-crd.js';
import { openStore } from '../server/store/index.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, type Row, ms, quantile, sleep } from './lib.js';

const cpuMs = (since: NodeJS.CpuUsage) => {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1000;
};

export async function schedulesBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const sizes = opts.quick ? [1, 100] : [1, 100, 1000];
  // A namespace of its own: the bench environment's server serves env.ns and would
  // schedule the same Tasks (its slots race this process's for the same Job names).
  const own = await createTestNamespace(env.cluster, 'bench-sched');
  await env.cluster.apps.createNamespacedDeployment({
    namespace: own.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'bench' }, own.name),
  });
  const namespace = own.name;
  const file = join(mkdtempSync(join(tmpdir(), 'oddjob-bench-sched-')), 'audit.db');
  const opened = await openStore({ engine: 'sqlite', path: file }, { maxOutputBytesPerRun: 1 << 20 });
  const runStore = opened.runs;
  const logger = createLogger('error');
  // Where a launch waits: every API call and audit commit of the run path, timed.
  const phases = new Map<string, number[]>();
  const kube = timeCalls(loadKube({ kubeconfig: env.cluster.kubeconfigPath }), phases);
  const runs = createRunService({
    kube,
    audit: timeMethods(opened.audit, ['appendDurable'], 'audit', phases),
    runs: runStore,
    output: opened.output,
    wakeups: opened.wakeups,
    logger,
    config: {
      namespaces: [namespace],
      defaultTimeoutSeconds: 600,
      maxTimeoutSeconds: 3600,
      ttlSecondsAfterFinished: 600,
      startTimeoutSeconds: 300,
      splitLogStreams: 'auto',
    },
  });
  await runs.start();
  await applyTaskCrd(env.cluster);
  const custom = env.cluster.kc.makeApiClient(k8s.CustomObjectsApi);
  const catalog = scheduledTasksOf(() => runs.cachedTasks());
  // As the server does: slot rows on the synchronous=NORMAL connection (store/index.ts).
  const store = timeMethods(opened.schedules, ['claim', 'update', 'open', 'decideMany'], 'slots', phases);
  const rows: Row[] = [];
  const data: Record<string, unknown> = {};
  try {
    for (const n of sizes) {
      const prefix = `s${n}-`;
      await createTasks(custom, namespace, prefix, n);
      const tasks = () => catalog()?.filter((t) => t.name.startsWith(prefix));
      await waitFor(`${n} Tasks in the catalog`, () => (tasks()?.length ?? 0) === n);
      const delays: number[] = [];
      phases.clear();
      const real = createSlotLauncher({
        runs,
        readRun: (id) => runStore.get(id),
        requested: requestedIn(opened.audit),
        deleteJob: (namespace, name, uid) => deleteJob(kube, namespace, name, uid),
      });
      const launcher: SlotLauncher = {
        ...real,
        async launch(req) {
          const r = await real.launch(req);
          if (r.ok) delays.push(Date.now() - req.nominal.getTime());
          else process.stderr.write(`slot not launched: ${JSON.stringify(r)}\n`);
          return r;
        },
      };
      const scheduler = new Scheduler({ tasks, store, launcher, logger, tickMs: 1000 });
      await scheduler.tick(); // first sight of every schedule: they start now
      // Idle ticks: nothing is due until the next minute.
      const idle: number[] = [];
      for (let i = 0; i < 10; i++) {
        const c = process.cpuUsage();
        await scheduler.tick();
        idle.push(cpuMs(c));
      }
      // Wait for the minute, then tick by hand once a second and time the tick that launches.
      const slot = (Math.floor(Date.now() / 60_000) + 1) * 60_000;
      await sleep(slot - Date.now() + 50);
      const c = process.cpuUsage();
      const t0 = performance.now();
      await scheduler.tick();
      const dueCpu = cpuMs(c);
      const dueWall = performance.now() - t0;
      if (delays.length < n) throw new Error(`only ${delays.length} of ${n} slots launched`);
      // Ticks while the N runs are open: each one is followed every tick.
      const busy: number[] = [];
      for (let i = 0; i < 5; i++) {
        await sleep(1000);
        const b = process.cpuUsage();
        await scheduler.tick();
        busy.push(cpuMs(b));
      }
      const p50 = quantile(delays, 0.5);
      const p99 = quantile(delays, 0.99);
      rows.push({ benchmark: 'schedules', metric: `slot → Job created p50, ${n} schedules`, oddjob: ms(p50), note: 'tick at +50 ms' });
      rows.push({ benchmark: 'schedules', metric: `slot → Job created p99, ${n} schedules`, oddjob: ms(p99) });
      rows.push({ benchmark: 'schedules', metric: `CPU per idle tick, ${n} schedules`, oddjob: ms(quantile(idle, 0.5)) });
      rows.push({ benchmark: 'schedules', metric: `CPU per tick with ${n} runs open, ${n} schedules`, oddjob: ms(quantile(busy, 0.5)) });
      rows.push({ benchmark: 'schedules', metric: `CPU of the tick launching ${n} slots`, oddjob: ms(dueCpu), note: `${ms(dueWall)} wall` });
      const waits = [...phases].map(([k, v]) => `${k} ×${v.length} p50 ${ms(quantile(v, 0.5))} p99 ${ms(quantile(v, 0.99))}`);
      process.stderr.write(`${n} schedules, where launches wait:\n  ${waits.join('\n  ')}\n`);
      data[String(n)] = {
        phasesMs: Object.fromEntries(phases),
        delaysMs: delays,
        idleTickCpuMs: idle,
        busyTickCpuMs: busy,
        dueTickCpuMs: dueCpu,
        dueTickWallMs: dueWall,
      };
      process.stderr.write(
        `${n} schedules: p50 ${ms(p50)} p99 ${ms(p99)}, idle tick ${ms(quantile(idle, 0.5))} CPU, tick with runs open ${ms(quantile(busy, 0.5))} CPU, due tick ${ms(dueCpu)} CPU / ${ms(dueWall)} wall\n`,
      );
      await scheduler.stop();
      await custom.deleteCollectionNamespacedCustomObject({ group: 'oddjob.io', version: 'v1alpha1', namespace, plural: 'tasks' });
      await clearJobs(env, namespace, 600_000);
    }
  } finally {
    await runs.stop();
    await opened.close();
    await own.dispose();
  }
  return { name: 'schedules', rows, data };
}

/** Wraps the named async methods of `obj`, recording each call's wall time under `label.method`. */
function timeMethods<T extends object>(obj: T, names: readonly string[], label: string, into: Map<string, number[]>): T {
  return new Proxy(obj, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string' || !names.includes(prop)) return v;
      return async (...args: unknown[]) => {
        const t0 = performance.now();
        try {
          return await (v as (...a: unknown[]) => Promise<unknown>).apply(target, args);
        } finally {
          const k = `${label}.${prop}`;
          if (!into.has(k)) into.set(k, []);
          into.get(k)!.push(performance.now() - t0);
        }
      };
    },
  });
}

/** N every-minute Tasks running `true` in the bench Deployment, created 16 at a time. */
async function createTasks(custom: k8s.CustomObjectsApi, namespace: string, prefix: string, n: number): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const name = `${prefix}${next++}`;
      await custom.createNamespacedCustomObject({
        group: 'oddjob.io',
        version: 'v1alpha1',
        namespace,
        plural: 'tasks',
        body: {
          apiVersion: 'oddjob.io/v1alpha1',
          kind: 'Task',
          metadata: { name },
          spec: { deployment: 'api', command: ['true'], schedule: { cron: '* * * * *', timeZone: 'UTC' } },
        },
      });
    }
  };
  await Promise.all(Array.from({ length: 16 }, worker));
}

async function waitFor(what: string, ok: () => boolean, timeoutMs = 120_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(200);
  }
}

const TIMED_CALLS = {
  apps: ['readNamespacedDeployment'],
  core: ['listNamespacedService'],
  policy: ['listNamespacedPodDisruptionBudget'],
  batch: ['createNamespacedJob'],
  custom: ['getNamespacedCustomObject'],
} as const;

function timeCalls(kube: KubeClients, into: Map<string, number[]>): KubeClients {
  const out = { ...kube };
  for (const [api, names] of Object.entries(TIMED_CALLS) as Array<[keyof typeof TIMED_CALLS, readonly string[]]>) {
    (out as Record<string, unknown>)[api] = timeMethods(kube[api], names, api, into);
  }
  return out;
}
