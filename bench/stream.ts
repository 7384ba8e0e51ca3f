// Benchmark 3: streaming throughput. One command writes M MiB to stdout; the
// oddjob CLI (`oddjob run`, through the server's WebSocket) and `kubectl logs -f`
// on the same pod read it live, side by side. Reports bytes received by each,
// throughput from first byte to end, and the server's CPU and peak RSS meanwhile.
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../test/support/cluster.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, KUBECTL, mib, sampleProcess, timed } from './lib.js';

export async function streamBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const size = opts.quick ? 20 : 200;
  const total = size * 1024 * 1024;
  await clearJobs(env, env.ns);
  const sampler = sampleProcess(env.server.proc.pid!);
  const a = timed(process.execPath, [`${REPO_ROOT}bin/oddjob.mjs`, 'run', '-n', env.ns, 'deploy/api', '--', 'node', 'scripts/flood.js', String(size)], { ODDJOB_SERVER: env.server.url }, { keepOutput: false });
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
  // byte. (From each reader's own first byte would favour kubectl, which starts later
  // and first drains a backlog.)
  const rate = (r: { bytes: number; startAt: number; endMs: number }) => r.bytes / 1024 / 1024 / ((r.startAt + r.endMs - podSeenAt) / 1000);
  // Started later, kubectl may find the head of the log rotated away already (10 MiB files).
  const data = {
    mib: size,
    oddjob: { bytes: ra.bytes, complete: ra.bytes === total, mibPerSec: rate(ra), ms: ra.startAt + ra.endMs - podSeenAt },
    kubectl: { bytes: rb.bytes, complete: rb.bytes === total, mibPerSec: rate(rb), ms: rb.startAt + rb.endMs - podSeenAt },
    server: { cpuPercent: server.cpuPercent, cpuMs: server.cpuMs, peakRssBytes: server.peakRssBytes },
  };
  await clearJobs(env, env.ns);
  return {
    name: 'stream',
    rows: [
      {
        benchmark: 'stream',
        metric: `${size} MiB to stdout, read live`,
        oddjob: `${data.oddjob.mibPerSec.toFixed(1)} MiB/s, ${mib(ra.bytes)}${data.oddjob.complete ? ' (all)' : ' (INCOMPLETE)'}`,
        baseline: `kubectl logs -f ${data.kubectl.mibPerSec.toFixed(1)} MiB/s, ${mib(rb.bytes)}${data.kubectl.complete ? ' (all)' : ''}`,
        ratio: data.oddjob.mibPerSec / data.kubectl.mibPerSec,
        note: 'from pod running to last byte; ratio > 1: oddjob faster; both bounded by the writer and the kubelet',
      },
      { benchmark: 'stream', metric: 'server while streaming', oddjob: `CPU ${server.cpuPercent.toFixed(0)}% of a core, peak RSS ${mib(server.peakRssBytes)}`, note: 'includes storing the output in SQLite' },
    ],
    data,
  };
}

