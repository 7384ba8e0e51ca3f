// Benchmark 2: launch throughput. N concurrent runs through the API (each
// authorized, audited before create, cloned, created) vs. the same N Job
// manifests created directly with @kubernetes/client-node — the ceiling, since
// oddjob creates every Job through the same API server.
import { performance } from 'node:perf_hooks';
import { cloneJobFromDeployment } from '../server/jobs/clone.js';
import { newRunId } from '../server/runs/service.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, ms, quantile } from './lib.js';

const COMMAND = ['true'];

async function waitForJobs(env: ClusterEnv, namespace: string, n: number, t0: number): Promise<number> {
  for (;;) {
    const jobs = await env.cluster.batch.listNamespacedJob({ namespace });
    if (jobs.items.length >= n) return performance.now() - t0;
    await new Promise((r) => setTimeout(r, 50));
  }
}

export async function launchBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const n = opts.quick ? 20 : 100;

  // oddjob: N concurrent POST /api/runs.
  await clearJobs(env, env.ns);
  const lat: number[] = [];
  let t0 = performance.now();
  const answers = await Promise.all(
    Array.from({ length: n }, async () => {
      const s = performance.now();
      const r = await fetch(`${env.server.url}/api/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-oddjob-client': 'cli/bench' },
        body: JSON.stringify({ namespace: env.ns, deployment: 'api', command: COMMAND }),
      });
      lat.push(performance.now() - s);
      return r.status;
    }),
  );
  const oddjobAnsweredMs = performance.now() - t0;
  const bad = answers.filter((s) => s !== 201);
  if (bad.length) throw new Error(`${bad.length} of ${n} runs were not created: ${[...new Set(bad)].join(', ')}`);
  const oddjobAllJobsMs = await waitForJobs(env, env.ns, n, t0);

  // Ceiling: the same manifests, created directly and concurrently.
  await clearJobs(env, env.baselineNs);
  const deployment = { ...env.deployment, metadata: { ...env.deployment.metadata, namespace: env.baselineNs } };
  const jobs = Array.from({ length: n }, () =>
    cloneJobFromDeployment(deployment, { runId: newRunId(), user: 'bench', command: COMMAND, interactive: false, tty: false, noSidecars: false, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 600 }),
  );
  const direct: number[] = [];
  t0 = performance.now();
  await Promise.all(
    jobs.map(async (body) => {
      const s = performance.now();
      await env.cluster.batch.createNamespacedJob({ namespace: env.baselineNs, body });
      direct.push(performance.now() - s);
    }),
  );
  const directAllJobsMs = performance.now() - t0;

  // What the ceiling becomes with oddjob's one extra API call per run: a fresh GET of
  // the Deployment (annotations decide who may run; they are read fresh, not cached).
  await clearJobs(env, env.baselineNs);
  const jobs2 = Array.from({ length: n }, () =>
    cloneJobFromDeployment(deployment, { runId: newRunId(), user: 'bench', command: COMMAND, interactive: false, tty: false, noSidecars: false, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 600 }),
  );
  t0 = performance.now();
  await Promise.all(
    jobs2.map(async (body) => {
      await env.cluster.apps.readNamespacedDeployment({ namespace: env.baselineNs, name: 'api' });
      await env.cluster.batch.createNamespacedJob({ namespace: env.baselineNs, body });
    }),
  );
  const readCreateMs = performance.now() - t0;

  // Leave nothing running for the next benchmark.
  await Promise.all([clearJobs(env, env.ns), clearJobs(env, env.baselineNs)]);

  const oddjobRate = n / (oddjobAllJobsMs / 1000);
  const directRate = n / (directAllJobsMs / 1000);
  const data = {
    runs: n,
    oddjob: { allAnsweredMs: oddjobAnsweredMs, allJobsExistMs: oddjobAllJobsMs, perSec: oddjobRate, p50Ms: quantile(lat, 0.5), p99Ms: quantile(lat, 0.99) },
    direct: { allJobsExistMs: directAllJobsMs, perSec: directRate, p50Ms: quantile(direct, 0.5), p99Ms: quantile(direct, 0.99) },
    readThenCreate: { allJobsExistMs: readCreateMs, perSec: n / (readCreateMs / 1000) },
  };
  return {
    name: 'launch',
    rows: [
      { benchmark: 'launch', metric: `${n} concurrent runs: runs/s until all Jobs exist`, oddjob: `${oddjobRate.toFixed(1)}/s (${(oddjobAllJobsMs / 1000).toFixed(2)} s)`, baseline: `client-node ${directRate.toFixed(1)}/s (${(directAllJobsMs / 1000).toFixed(2)} s)`, ratio: oddjobRate / directRate, note: 'target ≥ 0.90 of the direct ceiling' },
      { benchmark: 'launch', metric: 'same, vs a GET Deployment + create ceiling', oddjob: `${oddjobRate.toFixed(1)}/s`, baseline: `client-node GET+create ${(n / (readCreateMs / 1000)).toFixed(1)}/s`, ratio: oddjobRate / (n / (readCreateMs / 1000)), note: 'the fresh read of annotations is one more API call per run' },
      { benchmark: 'launch', metric: 'run request latency', oddjob: `p50 ${ms(data.oddjob.p50Ms)}, p99 ${ms(data.oddjob.p99Ms)}`, baseline: `create p50 ${ms(data.direct.p50Ms)}, p99 ${ms(data.direct.p99Ms)}`, ratio: data.oddjob.p50Ms / data.direct.p50Ms, note: 'oddjob: authorize + audit (fsync) + create' },
    ],
    data,
  };
}
