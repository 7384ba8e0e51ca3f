// npm run bench [-- --quick] — measured side by side in one run, on the real
// local cluster:
//   1. time to first output and to exit of a short command:
//      A = `oddjob run deploy/api -- node -e ...`
//      B = the best raw sequence a user could script with kubectl:
//          create the same Job manifest → retry `kubectl logs -f job/NAME`
//          until the container can be read → read the exit code from the pod.
//      Pairs alternate A/B so drift hits both; we report medians, p90, ratios.
// Results: a table on stdout and JSON in bench/results/.
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { DEMO_IMAGE, REPO_ROOT, createTestNamespace, requireCluster } from '../test/support/cluster.js';
import { startServerProcess } from '../test/support/oddjob.js';
import { cloneJobFromDeployment } from '../server/jobs/clone.js';
import { newRunId } from '../server/runs/service.js';

const quick = process.argv.includes('--quick');
const PAIRS = quick ? 3 : 10;
const KUBECTL = `${process.env.ODDJOB_CACHE ?? '/var/cache/oddjob'}/k8s/v1.34.4/bin/kubectl`;
const COMMAND = ['node', '-e', 'console.log("hello from the bench")'];

interface Sample {
  firstOutputMs: number;
  exitMs: number;
  exitCode: number;
}

/** Runs a process; records when its first stdout byte and its exit arrive. */
function timed(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ firstMs: number; endMs: number; code: number; out: string; err: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let firstMs = -1;
    let out = '';
    let err = '';
    const p = spawn(cmd, args, { env: { ...process.env, ...env } });
    p.stdout.on('data', (d) => {
      if (firstMs < 0) firstMs = performance.now() - t0;
      out += d;
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ firstMs, endMs: performance.now() - t0, code: code ?? -1, out, err }));
  });
}

const median = (xs: number[]) => quantile(xs, 0.5);
function quantile(xs: number[], q: number) {
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)]! + (s[Math.ceil(i)]! - s[Math.floor(i)]!) * (i - Math.floor(i));
}

async function main() {
  const cluster = await requireCluster();
  const ns = await createTestNamespace(cluster, 'bench');
  const kenv = { KUBECONFIG: cluster.kubeconfigPath };
  const deployment = (
    await cluster.apps.createNamespacedDeployment({
      namespace: ns.name,
      body: {
        metadata: { name: 'api', namespace: ns.name, annotations: { 'oddjob.io/allowed-users': 'bench' } },
        spec: {
          selector: { matchLabels: { app: 'api' } },
          template: { metadata: { labels: { app: 'api' } }, spec: { containers: [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent' }] } },
        },
      },
    })
  );
  // Measure oddjob as it ships: compiled (tsx would add ~0.3 s to every CLI start).
  execFileSync('npx', ['tsc', '-p', `${REPO_ROOT}tsconfig.json`], { stdio: 'ignore' });
  process.env.ODDJOB_COMPILED = '1';
  const server = await startServerProcess(['--auth', 'dev', '--dev-user', 'bench', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath, '--db', `/tmp/oddjob-bench-${ns.name}.db`, '--log-level', 'warn']);
  const oddjob: Sample[] = [];
  const kubectl: Sample[] = [];

  const runOddjob = async (): Promise<Sample> => {
    const r = await timed(process.execPath, [`${REPO_ROOT}bin/oddjob.mjs`, 'run', '-n', ns.name, 'deploy/api', '--', ...COMMAND], { ODDJOB_SERVER: server.url });
    if (r.code !== 0 || !r.out.includes('hello from the bench')) throw new Error(`oddjob run failed (${r.code}): ${r.err}`);
    return { firstOutputMs: r.firstMs, exitMs: r.endMs, exitCode: r.code };
  };

  const runKubectl = async (): Promise<Sample> => {
    const job = cloneJobFromDeployment(deployment, {
      runId: newRunId(), user: 'bench', command: COMMAND, interactive: false, tty: false, noSidecars: false, activeDeadlineSeconds: 600, ttlSecondsAfterFinished: 600,
    });
    const name = job.metadata!.name!;
    const manifest = stringify(job);
    const t0 = performance.now();
    execFileSync(KUBECTL, ['create', '-f', '-'], { input: manifest, env: { ...process.env, ...kenv }, stdio: ['pipe', 'ignore', 'ignore'] });
    // What a careful user scripts: retry `logs -f` until the container can be read.
    let first = -1;
    for (;;) {
      const r = await timed(KUBECTL, ['logs', '-f', `job/${name}`, '-n', ns.name], kenv);
      if (r.code === 0 && r.out.includes('hello from the bench')) {
        first = performance.now() - t0 - (r.endMs - r.firstMs);
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    let exitCode = -1;
    for (;;) {
      const code = execFileSync(KUBECTL, ['get', 'pods', '-n', ns.name, '-l', `job-name=${name}`, '-o', 'jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}'], { env: { ...process.env, ...kenv }, encoding: 'utf8' });
      if (code !== '') {
        exitCode = Number(code);
        break;
      }
      await new Promise((res) => setTimeout(res, 500));
    }
    return { firstOutputMs: first, exitMs: performance.now() - t0, exitCode };
  };

  try {
    await runOddjob(); // warm-up: first pod of the namespace, image cache, JIT
    await runKubectl();
    for (let i = 0; i < PAIRS; i++) {
      const order = i % 2 === 0 ? [runOddjob, runKubectl] : [runKubectl, runOddjob];
      for (const f of order) (f === runOddjob ? oddjob : kubectl).push(await f());
      process.stderr.write(`pair ${i + 1}/${PAIRS}: oddjob ${oddjob.at(-1)!.exitMs.toFixed(0)} ms, kubectl ${kubectl.at(-1)!.exitMs.toFixed(0)} ms\n`);
    }
  } finally {
    await server.kill();
    await ns.dispose();
  }

  const stat = (xs: Sample[], k: keyof Sample) => ({ median: median(xs.map((s) => s[k])), p90: quantile(xs.map((s) => s[k]), 0.9) });
  const result = {
    benchmark: 'time to first output and exit of a short command',
    pairs: PAIRS,
    machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
    oddjob: { firstOutputMs: stat(oddjob, 'firstOutputMs'), exitMs: stat(oddjob, 'exitMs') },
    kubectl: { firstOutputMs: stat(kubectl, 'firstOutputMs'), exitMs: stat(kubectl, 'exitMs') },
    ratio: {
      firstOutput: median(oddjob.map((s) => s.firstOutputMs)) / median(kubectl.map((s) => s.firstOutputMs)),
      exit: median(oddjob.map((s) => s.exitMs)) / median(kubectl.map((s) => s.exitMs)),
    },
    samples: { oddjob, kubectl },
  };
  mkdirSync(`${REPO_ROOT}bench/results`, { recursive: true });
  const file = `${REPO_ROOT}bench/results/latency-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify(result, null, 2));
  const row = (name: string, a: { median: number; p90: number }, b: { median: number; p90: number }) =>
    `${name.padEnd(20)} ${a.median.toFixed(0).padStart(8)} ${a.p90.toFixed(0).padStart(8)} ${b.median.toFixed(0).padStart(10)} ${b.p90.toFixed(0).padStart(8)} ${(a.median / b.median).toFixed(2).padStart(7)}`;
  console.log(`\n${PAIRS} A/B pairs, ms          oddjob p50      p90  kubectl p50      p90   ratio`);
  console.log(row('first output', result.oddjob.firstOutputMs, result.kubectl.firstOutputMs));
  console.log(row('exit (code known)', result.oddjob.exitMs, result.kubectl.exitMs));
  console.log(`\nratio < 1: oddjob is faster. JSON: ${file}`);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exit(1);
});
