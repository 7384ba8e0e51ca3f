// Benchmark 3: streaming throughput. One command writes M MiB to stdout; the
// oddjob CLI (`oddjob run`, through the server's WebSocket) and `kubectl logs -f`
// on the same pod read it live, side by side. Reports bytes received by each,
// throughput (pod running → last byte), and the server's CPU and peak RSS meanwhile,
// with stdout/stderr kept apart (two log requests) and merged (one).
import { performance } from 'node:perf_hooks';
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
    note: 'pod running → last byte; ratio > 1: oddjob faster',
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
  await clearJobs(env, env.ns);
  const sampler = sampleProcess(srv.proc.pid!);
  const a = timed(process.execPath, [`${REPO_ROOT}bin/oddjob.mjs`, 'run', '-n', env.ns, 'deploy/api', '--', 'node', 'scripts/flood.js', String(size)], { ODDJOB_SERVER: srv.url }, { keepOutput: false });
  // The same pod, read by kubectl as soon as it exists.
  let pod: string | undefined;
  for (let i = 0; i < 600 && !pod; i++) {
    const pods = await env.cluster.core.listNamespacedPod({ namespace: env.ns });
    pod = pods.items.find((p) => p.status?.phase === 'Running' || p.status?.phase === 'Succeeded')?.metadata?.name;
    if (!pod) await new Promise((r) => setTimeout(r, 100));
  }
  if (!pod) throw new Error('the flood pod never started');
  const podSeenAt = performance.now();
  const b = timed(KUBECTL, ['logs', '-f', pod, '-n', env.ns], env.kenv, { keepOutput: false });
  const [ra, rb] = await Promise.all([a, b]);
  const server = sampler.stop();
  if (ra.code !== 0) throw new Error(`oddjob run failed (${ra.code}): ${ra.err.slice(-500)}`);
  // One clock for both: from the moment the pod was seen running to each reader's last
  // byte (not its exit: oddjob run also waits for the exit code). (From each reader's own first byte would favour kubectl, which starts later
  // and first drains a backlog.) Output that outruns the kubelet's log rotation
  // (10 MiB × 5 files by default) is lost to every reader: "INCOMPLETE".
  const rate = (r: { bytes: number; startAt: number; lastMs: number }) => r.bytes / 1024 / 1024 / ((r.startAt + r.lastMs - podSeenAt) / 1000);
  await clearJobs(env, env.ns);
  return {
    oddjob: { bytes: ra.bytes, complete: ra.bytes === total, mibPerSec: rate(ra), ms: ra.startAt + ra.lastMs - podSeenAt, exitMs: ra.startAt + ra.endMs - podSeenAt },
    kubectl: { bytes: rb.bytes, complete: rb.bytes === total, mibPerSec: rate(rb), ms: rb.startAt + rb.lastMs - podSeenAt, exitMs: rb.startAt + rb.endMs - podSeenAt },
    server: { cpuPercent: server.cpuPercent, cpuMs: server.cpuMs, peakRssBytes: server.peakRssBytes },
  };
}
