// Singleton work on several real oddjob servers against the real cluster: exactly one
// leads (a coordination.k8s.io Lease), a killed leader is replaced within the lease
// duration plus 1.2 retry periods, a stopped one within ~1 retry period (it releases
// the lease), and a leader cut off from the API server stops its work before anyone
// else may start theirs. Output retention runs on the leader only. Who led when is
// read from each server's log (transition times, same machine clock), so "never two
// at once" is checked over the whole run, not sampled.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import * as k8s from '@kubernetes/client-node';
import { createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { CountingKubeProxy } from '../support/kube-proxy.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';

// Short timings keep the file to about a minute; the defaults (15s/10s/2s) are measured in `npm run bench`.
const LEASE_S = 6;
const DEADLINE_S = 4;
const RETRY_S = 1;

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let leases: k8s.CoordinationV1Api;
const dir = mkdtempSync(join(tmpdir(), 'oddjob-leader-'));
const servers: Replica[] = [];

interface Replica {
  name: string;
  server: ServerProcess;
  /** When the test killed it (ms), if it did. */
  killedAt?: number;
}

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'oddjob-leader');
  leases = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
});

after(async () => {
  await Promise.all(servers.map((r) => r.server.kill('SIGKILL')));
  await ns?.dispose();
});

async function startReplica(name: string, lease: string, kubeconfig = cluster.kubeconfigPath): Promise<Replica> {
  const server = await startServerProcess(
    [
      '--auth',
      'dev',
      '--namespaces',
      ns.name,
      '--kubeconfig',
      kubeconfig,
      '--db',
      join(dir, `${name}.db`),
      '--leader-lease',
      lease,
      '--leader-lease-duration',
      `${LEASE_S}s`,
      '--leader-renew-deadline',
      `${DEADLINE_S}s`,
      '--leader-retry-period',
      `${RETRY_S}s`,
    ],
    { POD_NAME: name },
  );
  const r = { name, server };
  servers.push(r);
  return r;
}

/** One sample of the Prometheus text format (labels must match exactly); undefined when absent. */
function sample(text: string, name: string, labels = ''): number | undefined {
  const m = new RegExp(`^${name}${labels ? `\\{${labels}\\}` : ''} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}
const scrape = async (r: Replica) => (await fetch(`${r.server.url}/metrics`)).text();
const isLeaderNow = async (r: Replica) => sample(await scrape(r), 'oddjob_leader') === 1;
const retentionPasses = async (r: Replica) => sample(await scrape(r), 'oddjob_singleton_passes_total', 'task="output_retention"') ?? 0;

/** [start, end) of every term each replica led, from its log; a killed one's last term ends when it was killed. */
function terms(r: Replica): Array<[number, number]> {
  const out: Array<[number, number]> = [];
  let start: number | undefined;
  for (const line of r.server.logs().split('\n')) {
    if (!line.startsWith('{')) continue;
    const e = JSON.parse(line) as { msg?: string; time: string };
    if (e.msg?.startsWith('started leading')) start = Date.parse(e.time);
    if (e.msg?.startsWith('stopped leading') && start !== undefined) {
      out.push([start, Date.parse(e.time)]);
      start = undefined;
    }
  }
  if (start !== undefined) out.push([start, r.killedAt ?? Infinity]);
  return out;
}

function startedLeadingAfter(r: Replica, t: number): number | undefined {
  return terms(r).find(([s]) => s >= t)?.[0];
}

/** Never two leaders of one lease at once, over everything its replicas logged. */
function assertOneLeaderAtATime(rs: Replica[]): void {
  const all = rs.flatMap((r) => terms(r).map(([s, e]) => ({ who: r.name, s, e })));
  for (const a of all) {
    for (const b of all) {
      if (a.who !== b.who && a.s < b.e && b.s < a.e) {
        assert.fail(`${a.who} led ${new Date(a.s).toISOString()}..${new Date(a.e).toISOString()} while ${b.who} led from ${new Date(b.s).toISOString()}`);
      }
    }
  }
}

async function theLeader(rs: Replica[]): Promise<Replica> {
  return eventually('exactly one leader', async () => {
    const flags = await Promise.all(rs.map(isLeaderNow));
    return flags.filter(Boolean).length === 1 ? rs[flags.indexOf(true)] : undefined;
  });
}

async function holder(lease: string): Promise<string | undefined> {
  return (await leases.readNamespacedLease({ name: lease, namespace: ns.name })).spec?.holderIdentity;
}

describe('leader election across replicas', () => {
  test('three replicas: one leads and prunes; SIGKILL → another within the lease duration; SIGTERM → another within a retry period', async () => {
    const lease = 'three';
    const rs = await Promise.all(['r1', 'r2', 'r3'].map((n) => startReplica(n, lease)));
    const first = await theLeader(rs);
    assert.equal(await holder(lease), first.name, 'the Lease names the replica that says it leads');
    // Retention runs once when a replica starts leading, then hourly: on the leader only.
    await eventually('a retention pass on the leader', async () => (await retentionPasses(first)) === 1);
    for (const r of rs) {
      if (r !== first) assert.equal(await retentionPasses(r), 0, `${r.name} stands by and does not prune`);
      assert.equal((await fetch(`${r.server.url}/readyz`)).status, 200, `${r.name} is ready, leader or not`);
    }

    const killedAt = Date.now();
    first.killedAt = killedAt;
    await first.server.kill('SIGKILL');
    const rest = rs.filter((r) => r !== first);
    const second = await theLeader(rest);
    const failover = (startedLeadingAfter(second, killedAt) ?? NaN) - killedAt;
    console.log(`SIGKILL → new leader: ${failover} ms (bound ${(LEASE_S + 1.2 * RETRY_S) * 1000} ms + API latency)`);
    // It waited for the lease to expire (the old leader may have renewed up to a retry period before dying)...
    assert.ok(failover >= (LEASE_S - RETRY_S) * 1000 - 500, `took over after ${failover} ms, before the lease could have expired`);
    // ...and took it within one (jittered) retry period of expiry.
    assert.ok(failover <= (LEASE_S + 1.2 * RETRY_S) * 1000 + 1000, `took ${failover} ms`);
    assert.equal(await holder(lease), second.name);
    await eventually('a retention pass on the new leader', async () => (await retentionPasses(second)) === 1);

    const stoppedAt = Date.now();
    second.killedAt = stoppedAt;
    await second.server.kill('SIGTERM');
    const third = rest.find((r) => r !== second)!;
    await eventually('the last replica leads', () => isLeaderNow(third));
    const handover = (startedLeadingAfter(third, stoppedAt) ?? NaN) - stoppedAt;
    console.log(`SIGTERM → new leader: ${handover} ms (bound ${1.2 * RETRY_S * 1000} ms + shutdown + API latency)`);
    assert.ok(handover <= 1.2 * RETRY_S * 1000 + 1000, `a released lease was taken after ${handover} ms`);
    assert.match(second.server.logs(), /released the lease/);
    assert.equal(await retentionPasses(third), 1);
    assert.equal(sample(await scrape(third), 'oddjob_leader_transitions_total', 'direction="started"'), 1);
    assertOneLeaderAtATime(rs);
    await third.server.kill();
  });

  test('a leader cut off from the API server stops leading before another may start', async () => {
    const lease = 'cut-off';
    const proxy = await new CountingKubeProxy().start(cluster.kc);
    try {
      const a = await startReplica('cut', lease, proxy.writeKubeconfig(join(dir, 'proxy.kubeconfig')));
      await eventually('the replica behind the proxy leads', () => isLeaderNow(a));
      const b = await startReplica('direct', lease);
      await eventually('the other one stands by', async () => /standing by/.test(b.server.logs()));

      // The API server stops answering a's lease calls (and only those: its watches go on).
      const cutAt = Date.now();
      proxy.hold = (call) => call.path.includes('/leases');
      await eventually('the direct replica leads', () => isLeaderNow(b), 20_000);
      const [aTerm] = terms(a);
      assert.ok(aTerm && aTerm[1] !== Infinity, 'the cut-off leader stopped leading');
      const stoppedAfter = aTerm[1] - cutAt;
      const gap = (startedLeadingAfter(b, cutAt) ?? NaN) - aTerm[1];
      console.log(`cut off → stopped leading after ${stoppedAfter} ms; the next leader started ${gap} ms after that`);
      // It renewed at most a retry period (plus the call) before the cut, and stops renewDeadline after that renewal.
      assert.ok(stoppedAfter <= DEADLINE_S * 1000 + 500, `kept leading ${stoppedAfter} ms without renewing`);
      // Others wait a whole lease duration from the last renewal they saw: the margin is duration - deadline.
      assert.ok(gap >= (LEASE_S - DEADLINE_S) * 1000 - 100, `the next leader started only ${gap} ms after the old one stopped`);
      assert.equal((await fetch(`${a.server.url}/readyz`)).status, 200, 'leadership does not affect readiness');

      // Reconnected, it sees the other holder and stands by.
      const healedAt = Date.now();
      proxy.hold = undefined;
      await eventually('the healed replica stands by', async () => a.server.logs().includes('lease is reachable again'), 15_000);
      assert.equal(await isLeaderNow(a), false);
      assert.equal(await isLeaderNow(b), true);
      assert.equal(await holder(lease), 'direct');
      assert.equal(startedLeadingAfter(a, healedAt), undefined);
      assertOneLeaderAtATime([a, b]);

      // Cut off again, a SIGTERM still ends it: unanswered lease calls are aborted, not left holding the process.
      proxy.hold = (call) => call.path.includes('/leases');
      await new Promise((r) => setTimeout(r, 2 * RETRY_S * 1000));
      const exited = await Promise.race([a.server.kill('SIGTERM').then(() => true), new Promise((r) => setTimeout(() => r(false), 15_000))]);
      assert.ok(exited, `a replica whose lease calls go unanswered did not exit within 15 s of SIGTERM:\n${a.server.logs().slice(-2000)}`);
    } finally {
      await Promise.all(servers.map((r) => r.server.kill('SIGKILL')));
      await proxy.stop();
    }
  });
});
