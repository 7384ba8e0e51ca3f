// Benchmark 3: streaming throughput. One command writes M MiB to stdout; it runs
// once through `oddjob run` (server, WebSocket, CLI) and once as the same Job read
// with `kubectl logs -f`, back to back. Reports bytes received by each,
// throughput (pod running → last byte), and the server's CPU and peak RSS meanwhile,
// with stdout/stderr kept apart (two log requests) and merged (one).
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { cloneJobFromDeployment } from '../server/jobs/clone.js';
import { newRunId } from '../server/runs/service.js';
import { REPO_ROOT } from '../test/support/cluster.js';
import type { ServerProcess } from '../test/support/oddjob.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, KUBECTL, mib, sampleProcess, timed } from './lib.js';

export async function streamBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const size = opts.quick ? 20 : 200;
  const split = await measure(env, env.server, size);
  // The same with stdout and stderr merged (--split-log-streams false): one log
  // request per run instead of one per stream.
  const merged = await env.startServer('--split-log-streams', 'false');
  let one: Measured;
  try {
    one = await measure(env, merged, size);
  } finally {
    await merged.kill();
  }
  const row = (m: Measured, how: string) => ({
    benchmark: 'stream',
    metric: `${size} MiB to stdout, read live, ${how}`,
    oddjob: `${m.oddjob.mibPerSec.toFixed(1)} MiB/s, ${mib(m.oddjob.bytes)}${m.oddjob.complete ? ' (all)' : ' (INCOMPLETE)'}`,
    baseline: `kubectl logs -f ${m.kubectl.mibPerSec.toFixed(1)} MiB/s, ${mib(m.kubectl.bytes)}${m.kubectl.complete ? ' (all)' : ' (INCOMPLETE)'}`,
    ratio: m.oddjob.mibPerSec / m.kubectl.mibPerSec,
    note: 'A then B, each alone; submit → last byte; ratio > 1: oddjob faster',
  });
  const server = (m: Measured, how: string) => ({
    benchmark: 'stream',
    metric: `server while streaming, ${how}`,
    oddjob: `CPU ${m.server.cpuPercent.toFixed(0)}% of a core, peak RSS ${mib(m.server.peakRssBytes)}`,
    note: 'includes storing the output in SQLite',
  });
  return {
    name: 'stream',
    rows: [row(split, 'stdout/stderr apart (default)'), server(split, 'apart'), row(one, 'merged'), server(one, 'merged')],
    data: { mib: size, split, merged: one },
  };
}

type Measured = Awaited<ReturnType<typeof measure>>;

export async function measure(env: ClusterEnv, srv: ServerProcess, size: number) {
  const total = size * 1024 * 1024;
  const command = ['node', 'scripts/flood.js', String(size)];
  // A: oddjob run, alone on the node.
  await clearJobs(env, env.ns);
  const sampler = sampleProcess(srv.proc.pid!);
  const ra = await timed(
    process.execPath,
    [`${REPO_ROOT}bin/oddjob.mjs`, 'run', '-n', env.ns, 'deploy/api', '--', ...command],
    { ODDJOB_SERVER: srv.url },
    { keepOutput: false },
  );
  const server = sampler.stop();
  if (ra.code !== 0 || ra.bytes !== total) {
    // What the server saw is what explains a short (or long) read: keep it next to the results.
    mkdirSync(`${REPO_ROOT}bench/results`, { recursive: true });
    const file = `${REPO_ROOT}bench/results/stream-server-${new Date().toISOString().replace(/[:.]/g, '-')}.log`;
    writeFileSync(file, `${ra.err}\n--- server ---\n${srv.logs()}`);
    console.error(`stream: oddjob got ${ra.bytes} of ${total} bytes (exit ${ra.code}); CLI stderr and server log in ${file}`);
  }
  if (ra.code !== 0) throw new Error(`oddjob run failed (${ra.code}): ${ra.err.slice(-500)}`);
  await clearJobs(env, env.ns);
  // B: the same Job created with kubectl, read with `kubectl logs -f` (retried until the
  // container can be read), alone on the node. Two readers at once would compete for
  // the kubelet, and which one falls behind its log rotation is luck.
  const deployment = { ...env.deployment, metadata: { ...env.deployment.metadata, namespace: env.baselineNs } };
  const job = cloneJobFromDeployment(deployment, {
    runId: newRunId(),
    user: 'bench',
    command,
    interactive: false,
    tty: false,
    noSidecars: false,
    activeDeadlineSeconds: 900,
    ttlSecondsAfterFinished: 900,
    neighbours: { services: [], budgets: [] },
  });
  const t0 = performance.now();
  execFileSync(KUBECTL, ['create', '-f', '-'], { input: stringify(job), env: { ...process.env, ...env.kenv }, stdio: ['pipe', 'ignore', 'ignore'] });
  let rb: Awaited<ReturnType<typeof timed>>;
  for (;;) {
    rb = await timed(KUBECTL, ['logs', '-f', `job/${job.metadata!.name}`, '-n', env.baselineNs], env.kenv, { keepOutput: false });
    if (rb.code === 0 && rb.bytes > 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }
  await clearJobs(env, env.baselineNs);
  // Submit → last byte for both (pod start included on both sides). Output that outruns
  // the kubelet's log rotation (10 MiB × 5 files by default) is lost to any reader.
  const lastA = ra.lastMs;
  const lastB = rb.startAt + rb.lastMs - t0;
  return {
    oddjob: { bytes: ra.bytes, complete: ra.bytes === total, mibPerSec: ra.bytes / 1048576 / (lastA / 1000), ms: lastA, exitMs: ra.endMs },
    kubectl: { bytes: rb.bytes, complete: rb.bytes === total, mibPerSec: rb.bytes / 1048576 / (lastB / 1000), ms: lastB },
    server: { cpuPercent: server.cpuPercent, cpuMs: server.cpuMs, peakRssBytes: server.peakRssBytes },
  };
}
