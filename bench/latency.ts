// Benchmark 1: time to first output and to exit of a short command.
//   A = `oddjob run deploy/api -- node -e ...` (compiled CLI, real server)
//   B = the best raw sequence a user could script with kubectl: create the same
//       Job manifest → retry `kubectl logs -f job/NAME` until the container can be
//       read → read the exit code from the pod.
// Pairs alternate A/B so drift hits both; medians, p90 and ratios.
import { execFileSync } from 'node:child_process';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { REPO_ROOT } from '../test/support/cluster.js';
import { cloneJobFromDeployment } from '../server/jobs/clone.js';
import { newRunId } from '../server/runs/service.js';
import type { ClusterEnv } from './env.js';
import { type BenchOptions, type BenchResult, KUBECTL, median, ms, quantile, timed } from './lib.js';

const COMMAND = ['node', '-e', 'console.log("hello from the bench")'];

interface Sample {
  firstOutputMs: number;
  exitMs: number;
}

export async function latencyBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const pairs = opts.quick ? 3 : 10;
  const deployment = { ...env.deployment, metadata: { ...env.deployment.metadata, namespace: env.baselineNs } };

  const runOddjob = async (): Promise<Sample> => {
    const r = await timed(process.execPath, [`${REPO_ROOT}bin/oddjob.mjs`, 'run', '-n', env.ns, 'deploy/api', '--', ...COMMAND], {
      ODDJOB_SERVER: env.server.url,
    });
    if (r.code !== 0 || !r.out.includes('hello from the bench')) throw new Error(`oddjob run failed (${r.code}): ${r.err}`);
    return { firstOutputMs: r.firstMs, exitMs: r.endMs };
  };

  const runKubectl = async (): Promise<Sample> => {
    const job = cloneJobFromDeployment(deployment, {
      runId: newRunId(),
      user: 'bench',
      command: COMMAND,
      interactive: false,
      tty: false,
      noSidecars: false,
      activeDeadlineSeconds: 600,
      ttlSecondsAfterFinished: 600,
      neighbours: { services: [], budgets: [] },
    });
    const name = job.metadata!.name!;
    const t0 = performance.now();
    execFileSync(KUBECTL, ['create', '-f', '-'], { input: stringify(job), env: { ...process.env, ...env.kenv }, stdio: ['pipe', 'ignore', 'ignore'] });
    let first: number;
    for (;;) {
      const r = await timed(KUBECTL, ['logs', '-f', `job/${name}`, '-n', env.baselineNs], env.kenv);
      if (r.code === 0 && r.out.includes('hello from the bench')) {
        first = performance.now() - t0 - (r.endMs - r.firstMs);
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    for (;;) {
      const code = execFileSync(
        KUBECTL,
        ['get', 'pods', '-n', env.baselineNs, '-l', `job-name=${name}`, '-o', 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}'],
        { env: { ...process.env, ...env.kenv }, encoding: 'utf8' },
      );
      if (code !== '') break;
      await new Promise((res) => setTimeout(res, 500));
    }
    return { firstOutputMs: first, exitMs: performance.now() - t0 };
  };

  const oddjob: Sample[] = [];
  const kubectl: Sample[] = [];
  await runOddjob(); // warm-up: first pod of the namespace, image cache, JIT
  await runKubectl();
  for (let i = 0; i < pairs; i++) {
    const order = i % 2 === 0 ? [runOddjob, runKubectl] : [runKubectl, runOddjob];
    for (const f of order) (f === runOddjob ? oddjob : kubectl).push(await f());
    process.stderr.write(`latency: pair ${i + 1}/${pairs}: oddjob ${oddjob.at(-1)!.exitMs.toFixed(0)} ms, kubectl ${kubectl.at(-1)!.exitMs.toFixed(0)} ms\n`);
  }
  const stat = (xs: Sample[], k: keyof Sample) => ({
    median: median(xs.map((s) => s[k])),
    p90: quantile(
      xs.map((s) => s[k]),
      0.9,
    ),
  });
  const data = {
    pairs,
    oddjob: { firstOutputMs: stat(oddjob, 'firstOutputMs'), exitMs: stat(oddjob, 'exitMs') },
    kubectl: { firstOutputMs: stat(kubectl, 'firstOutputMs'), exitMs: stat(kubectl, 'exitMs') },
    samples: { oddjob, kubectl },
  };
  const row = (metric: string, k: keyof Sample) => ({
    benchmark: 'latency',
    metric,
    oddjob: `p50 ${ms(data.oddjob[k].median)}, p90 ${ms(data.oddjob[k].p90)}`,
    baseline: `kubectl p50 ${ms(data.kubectl[k].median)}, p90 ${ms(data.kubectl[k].p90)}`,
    ratio: data.oddjob[k].median / data.kubectl[k].median,
    note: `${pairs} A/B pairs; ratio < 1: oddjob faster`,
  });
  return { name: 'latency', rows: [row('time to first output', 'firstOutputMs'), row('time to exit code', 'exitMs')], data };
}
