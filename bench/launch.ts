// Benchmark 2: launch throughput. N concurrent runs through the API (each
// authorized with a fresh read of the Deployment, audited before create, cloned,
// created, then tracked) vs. the same N Job manifests created directly with
// @kubernetes/client-node — the ceiling, since oddjob creates every Job through the
// same API server — as it comes (a new TLS connection per call), with one keep-alive
// pool, and preceded by a GET of the Deployment (what a fresh consent check costs). Every phase starts on a quiet cluster (no pods left from the
// previous one), and the CPU used meanwhile by the oddjob server and the API server
// is recorded, because on a small machine that is what bounds all of them.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../test/support/cluster.js';
import { cloneJobFromDeployment } from '../server/jobs/clone.js';
import { loadKube } from '../server/k8s/client.js';
import { newRunId } from '../server/runs/service.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, ms, quantile, sampleProcess } from './lib.js';

const COMMAND = ['true'];

/**
 * Counts Jobs as they are created, from one watch opened before the phase starts:
 * polling a list would add load to the API server that grows with the phase (N Jobs
 * serialized again on every poll), and so penalize the slowest side.
 */
async function jobCounter(env: ClusterEnv, namespace: string, n: number) {
  const seen = new Set<string>();
  let reached: ((at: number) => void) | undefined;
  const all = new Promise<number>((resolve) => (reached = resolve));
  const ctl = await new k8s.Watch(env.cluster.kc).watch(
    `/apis/batch/v1/namespaces/${namespace}/jobs`,
    {},
    (type: string, job: k8s.V1Job) => {
      if (type !== 'ADDED' || !job.metadata?.name || job.metadata.deletionTimestamp) return;
      seen.add(job.metadata.name);
      if (seen.size >= n) reached?.(performance.now());
    },
    () => undefined,
  );
  return {
    /** When the n-th Job was seen (performance.now() clock). */
    all: () =>
      Promise.race([
        all,
        new Promise<number>((_, reject) =>
          setTimeout(() => reject(new Error(`only ${seen.size} of ${n} Jobs appeared in ${namespace} within 120 s`)), 120_000).unref(),
        ),
      ]),
    stop: () => ctl.abort(),
  };
}

/** The local cluster's API server process, when this is the hack/cluster one. */
function apiServerPid(): number | undefined {
  try {
    const pid = Number(readFileSync(`${REPO_ROOT}.cluster/pids/kube-apiserver.pid`, 'utf8').trim());
    readFileSync(`/proc/${pid}/stat`);
    return pid;
  } catch {
    return undefined;
  }
}

interface Phase {
  /** From the first request to the moment all N Jobs are listed. */
  allJobsExistMs: number;
  perSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU time per run of the oddjob server and the API server during the phase. */
  serverCpuMsPerRun: number;
  apiServerCpuMsPerRun?: number;
}

export async function launchBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const n = opts.quick ? 20 : 100;
  const deployment = { ...env.deployment, metadata: { ...env.deployment.metadata, namespace: env.baselineNs } };
  const manifests = () =>
    Array.from({ length: n }, () =>
      cloneJobFromDeployment(deployment, {
        runId: newRunId(),
        user: 'bench',
        command: COMMAND,
        interactive: false,
        tty: false,
        noSidecars: false,
        activeDeadlineSeconds: 600,
        ttlSecondsAfterFinished: 600,
        neighbours: { services: [], budgets: [] },
      }),
    );
  const apiPid = apiServerPid();

  /** Runs one phase on a quiet cluster: N concurrent requests, then waits for N Jobs. */
  async function phase(namespace: string, one: () => Promise<void>): Promise<Phase> {
    await Promise.all([clearJobs(env, env.ns), clearJobs(env, env.baselineNs)]);
    const jobs = await jobCounter(env, namespace, n);
    const server = sampleProcess(env.server.proc.pid!);
    const api = apiPid ? sampleProcess(apiPid) : undefined;
    const lat: number[] = [];
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: n }, async () => {
        const s = performance.now();
        await one();
        lat.push(performance.now() - s);
      }),
    );
    let allJobsExistMs: number;
    try {
      allJobsExistMs = (await jobs.all()) - t0;
    } finally {
      jobs.stop();
    }
    const s = server.stop();
    const a = api?.stop();
    return {
      allJobsExistMs,
      perSec: n / (allJobsExistMs / 1000),
      p50Ms: quantile(lat, 0.5),
      p99Ms: quantile(lat, 0.99),
      serverCpuMsPerRun: s.cpuMs / n,
      apiServerCpuMsPerRun: a ? a.cpuMs / n : undefined,
    };
  }

  const directOnce = () => {
    const jobs = manifests();
    return phase(env.baselineNs, async () => {
      await env.cluster.batch.createNamespacedJob({ namespace: env.baselineNs, body: jobs.pop()! });
    });
  };
  // The same with one keep-alive connection pool (what oddjob's server does; client-node
  // by default opens a new TLS connection per call): the higher ceiling.
  const pooled = loadKube({ kubeconfig: env.cluster.kubeconfigPath }).batch;
  const pooledOnce = () => {
    const jobs = manifests();
    return phase(env.baselineNs, async () => {
      await pooled.createNamespacedJob({ namespace: env.baselineNs, body: jobs.pop()! });
    });
  };
  const oddjobOnce = async () => {
    const statuses: number[] = [];
    const p = await phase(env.ns, async () => {
      const r = await fetch(`${env.server.url}/api/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-oddjob-client': 'cli/bench' },
        body: JSON.stringify({ namespace: env.ns, deployment: 'api', command: COMMAND }),
      });
      statuses.push(r.status);
      await r.arrayBuffer();
    });
    const bad = statuses.filter((st) => st !== 201);
    if (bad.length) throw new Error(`${bad.length} of ${n} runs were not created: ${[...new Set(bad)].join(', ')}`);
    return p;
  };
  // What the ceiling becomes with oddjob's one extra API call per run: a fresh GET of
  // the Deployment (annotations decide who may run; they are read fresh, not cached).
  const readCreateOnce = () => {
    const jobs = manifests();
    return phase(env.baselineNs, async () => {
      await env.cluster.apps.readNamespacedDeployment({ namespace: env.baselineNs, name: 'api' });
      await env.cluster.batch.createNamespacedJob({ namespace: env.baselineNs, body: jobs.pop()! });
    });
  };

  // Warm-up, not measured: the server's first runs pay for JIT and its first connections.
  const warm = manifests().slice(0, 5);
  await Promise.all([
    ...warm.map((body) => env.cluster.batch.createNamespacedJob({ namespace: env.baselineNs, body })),
    ...warm.map(() =>
      fetch(`${env.server.url}/api/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ namespace: env.ns, deployment: 'api', command: COMMAND }),
      }).then((r) => r.arrayBuffer()),
    ),
  ]);

  // Rounds of the three, rotating which goes first: a single round on a shared 2-core
  // machine swings by 2× either way. The medians are reported.
  const rounds = opts.quick ? 1 : 3;
  const all = { direct: [] as Phase[], oddjob: [] as Phase[], readCreate: [] as Phase[], pooled: [] as Phase[] };
  const once = { direct: directOnce, oddjob: oddjobOnce, readCreate: readCreateOnce, pooled: pooledOnce };
  for (let r = 0; r < rounds; r++) {
    const order: (keyof typeof all)[] = (['direct', 'oddjob', 'readCreate', 'pooled'] as const).map((_, i, a) => a[(i + r) % a.length]!);
    for (const which of order) {
      const p = await once[which]();
      all[which].push(p);
      process.stderr.write(`launch: round ${r + 1}/${rounds} ${which}: ${p.perSec.toFixed(1)}/s\n`);
    }
  }
  const mid = (ps: Phase[]): Phase => [...ps].sort((a, b) => a.perSec - b.perSec)[Math.floor(ps.length / 2)]!;
  const direct = mid(all.direct);
  const oddjob = mid(all.oddjob);
  const readCreate = mid(all.readCreate);
  const pooledMid = mid(all.pooled);

  // Leave nothing running for the next benchmark.
  await Promise.all([clearJobs(env, env.ns), clearJobs(env, env.baselineNs)]);

  const cpu = (p: Phase) => `API server ${p.apiServerCpuMsPerRun === undefined ? '?' : p.apiServerCpuMsPerRun.toFixed(1)} ms CPU/run`;
  const data = { runs: n, rounds, oddjob, direct, pooled: pooledMid, readThenCreate: readCreate, all };
  return {
    name: 'launch',
    rows: [
      {
        benchmark: 'launch',
        metric: `${n} concurrent runs: runs/s until all Jobs exist`,
        oddjob: `${oddjob.perSec.toFixed(1)}/s (${(oddjob.allJobsExistMs / 1000).toFixed(2)} s)`,
        baseline: `client-node ${direct.perSec.toFixed(1)}/s (${(direct.allJobsExistMs / 1000).toFixed(2)} s)`,
        ratio: oddjob.perSec / direct.perSec,
        note: `target ≥ 0.90 of the direct ceiling; median of ${rounds} round${rounds > 1 ? 's' : ''} (all: oddjob ${all.oddjob.map((p) => p.perSec.toFixed(0)).join('/')}, direct ${all.direct.map((p) => p.perSec.toFixed(0)).join('/')})`,
      },
      {
        benchmark: 'launch',
        metric: 'same, vs client-node with keep-alive',
        oddjob: `${oddjob.perSec.toFixed(1)}/s`,
        baseline: `client-node, one connection pool ${pooledMid.perSec.toFixed(1)}/s`,
        ratio: oddjob.perSec / pooledMid.perSec,
        note: `client-node's default is a new TLS connection per call; oddjob's server pools (all: ${all.pooled.map((p) => p.perSec.toFixed(0)).join('/')})`,
      },
      {
        benchmark: 'launch',
        metric: 'same, vs a GET Deployment + create ceiling',
        oddjob: `${oddjob.perSec.toFixed(1)}/s`,
        baseline: `client-node GET+create ${readCreate.perSec.toFixed(1)}/s`,
        ratio: oddjob.perSec / readCreate.perSec,
        note: 'oddjob reads the annotations fresh: one more API call per run',
      },
      {
        benchmark: 'launch',
        metric: 'run request latency',
        oddjob: `p50 ${ms(oddjob.p50Ms)}, p99 ${ms(oddjob.p99Ms)}`,
        baseline: `create p50 ${ms(direct.p50Ms)}, p99 ${ms(direct.p99Ms)}`,
        ratio: oddjob.p50Ms / direct.p50Ms,
        note: 'oddjob: read Deployment + audit (fsync) + create',
      },
      {
        benchmark: 'launch',
        metric: 'CPU per run while launching',
        oddjob: `server ${oddjob.serverCpuMsPerRun.toFixed(1)} ms, ${cpu(oddjob)}`,
        baseline: `create: ${cpu(direct)}; GET+create: ${cpu(readCreate)}`,
        note: 'the API server shares 2 cores with everything else',
      },
    ],
    data,
  };
}
