// Benchmark 6: failover of the singleton work. Two servers share one leader Lease with
// the default timings (15s lease, 10s renew deadline, 2s retry period). The leader is
// killed (SIGKILL: no release) or stopped (SIGTERM: it releases the lease), a fresh
// server replaces it as the standby, and the next kill comes at a random point of the
// renew cycle. Measured: the kill → the survivor's "started leading" (its log time,
// same machine clock). Bounds: lease duration + 1.2 × retry period for a kill, 1.2 ×
// retry period for a stop, each plus an API round trip.
import * as k8s from '@kubernetes/client-node';
import type { ServerProcess } from '../test/support/oddjob.js';
import type { ClusterEnv } from './env.js';
import { type BenchOptions, type BenchResult, quantile, sleep } from './lib.js';

const LEASE = 'bench-failover';

interface Replica {
  server: ServerProcess;
}

export async function failoverBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const rounds = opts.quick ? 3 : 8;
  const start = async (): Promise<Replica> => ({ server: await env.startServer('--leader-lease', LEASE, '--log-level', 'info') });
  const replicas: Replica[] = [await start(), await start()];
  const samples: Record<'SIGKILL' | 'SIGTERM', number[]> = { SIGKILL: [], SIGTERM: [] };
  try {
    await waitFor('a leader', 60_000, () => replicas.some((r) => leadsAfter(r, 0) !== undefined));
    for (let i = 0; i < 2 * rounds; i++) {
      const signal = i % 2 === 0 ? 'SIGKILL' : 'SIGTERM';
      // Every replica has seen the current leader renew, and the kill lands anywhere in its 2 s cycle.
      await waitFor('one leader and one standby', 60_000, () => {
        const leading = replicas.filter(isLeading).length;
        return leading === 1 && replicas.every((r) => isLeading(r) || /standing by/.test(r.server.logs()));
      });
      await sleep(2000 + Math.random() * 2000);
      const leader = replicas.find((r) => isLeading(r))!;
      const survivor = replicas.find((r) => r !== leader)!;
      const killedAt = Date.now();
      await leader.server.kill(signal);
      const startedAt = await waitFor('the survivor to lead', 60_000, () => leadsAfter(survivor, killedAt));
      samples[signal].push(startedAt - killedAt);
      process.stderr.write(`  ${signal} → new leader in ${startedAt - killedAt} ms\n`);
      replicas.splice(replicas.indexOf(leader), 1, await start());
    }
  } finally {
    await Promise.all(replicas.map((r) => r.server.kill('SIGKILL')));
    await env.cluster.kc
      .makeApiClient(k8s.CoordinationV1Api)
      .deleteNamespacedLease({ name: LEASE, namespace: env.ns })
      .catch(() => undefined);
  }
  const row = (signal: 'SIGKILL' | 'SIGTERM', bound: string) => ({
    benchmark: 'failover',
    metric: `leader ${signal === 'SIGKILL' ? 'killed (SIGKILL)' : 'stopped (SIGTERM)'} → new leader`,
    oddjob: `p50 ${s(quantile(samples[signal], 0.5))}, p99 ${s(quantile(samples[signal], 0.99))}`,
    note: `${samples[signal].length} failovers, min ${s(Math.min(...samples[signal]))}; bound ${bound}`,
  });
  return {
    name: 'failover',
    rows: [row('SIGKILL', 'lease 15 s + 1.2 × retry 2 s = 17.4 s + API call'), row('SIGTERM', '1.2 × retry 2 s = 2.4 s + API calls')],
    data: { timing: { leaseDurationS: 15, renewDeadlineS: 10, retryPeriodS: 2 }, samplesMs: samples },
  };
}

const s = (msTime: number) => `${(msTime / 1000).toFixed(2)} s`;

/** The time of the first "started leading" this replica logged at or after `t`. */
function leadsAfter(r: Replica, t: number): number | undefined {
  for (const line of r.server.logs().split('\n')) {
    if (!line.includes('"started leading')) continue;
    const at = Date.parse((JSON.parse(line) as { time: string }).time);
    if (at >= t) return at;
  }
  return undefined;
}

function isLeading(r: Replica): boolean {
  const log = r.server.logs();
  return log.lastIndexOf('"started leading') > log.lastIndexOf('"stopped leading');
}

async function waitFor<T>(what: string, timeoutMs: number, probe: () => T | undefined | false): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > deadline) throw new Error(`failover bench: no ${what} after ${timeoutMs / 1000} s`);
    await sleep(20);
  }
}
