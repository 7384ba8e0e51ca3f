// A replica dies mid-run (SIGKILL): another adopts the run within the lease bound,
// continues its output from the stored offset, and records its ending once with the
// true exit code; a CLI following through a round-robin proxy (the Service) resumes
// with no gap and no duplicate.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pg from 'pg';
import { type TestCluster, createTestNamespace, eventually, optedInDeployment, requireCluster } from '../support/cluster.js';
import { type ServerProcess, runCli, startServerProcess } from '../support/oddjob.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { startRoundRobin } from '../support/round-robin.js';

let cluster: TestCluster;
let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let pgServer: PostgresServer;
let dbUrl: string;
const servers: ServerProcess[] = [];
let proxy: Awaited<ReturnType<typeof startRoundRobin>>;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'failover');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }) });
  pgServer = await startPostgres();
  dbUrl = await pgServer.createDatabase('oddjob');
  const passwordFile = path.join(pgServer.dir, 'client-password');
  fs.writeFileSync(passwordFile, pgServer.password);
  const args = ['--auth', 'dev', '--dev-user', 'alice', '--dev-teams', 'acme/payments', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath];
  servers.push(
    ...(await Promise.all(
      [0, 1].map(() =>
        startServerProcess([...args, '--db', dbUrl.replace(`:${encodeURIComponent(pgServer.password)}@`, '@'), '--db-password-file', passwordFile]),
      ),
    )),
  );
  proxy = await startRoundRobin(() =>
    servers.map((s) => {
      const u = new URL(s.url);
      return { host: u.hostname, port: Number(u.port) };
    }),
  );
});

after(async () => {
  await proxy?.close();
  await Promise.all(servers.map((s) => s.kill()));
  await pgServer?.destroy();
  await ns?.dispose();
});

async function query<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pg.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

describe('failover between replicas', () => {
  test('SIGKILL of the owner mid-run: adopted within 15 s, the CLI through the proxy gets every line once, the audit ends once with the true exit code', async () => {
    const lines = 120;
    const script = `for (let i = 1; i <= ${lines}; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, 250)); } process.exitCode = 5;`;
    const cli = runCli(['run', '-n', ns.name, 'deploy/api', '--', 'node', '--input-type=module', '-e', script], { server: proxy.url, timeoutMs: 150_000 });
    const { id, owner } = await eventually(
      'the run to be running and owned',
      async () => {
        const rows = await query<{ id: string; status: string; owner: string | null }>(
          `select r.id, r.status, l.owner from runs r left join run_leases l on l.run_id = r.id order by r.ord desc limit 1`,
        );
        const r = rows[0];
        return r && r.status === 'running' && r.owner ? { id: r.id, owner: r.owner } : undefined;
      },
      90_000,
    );
    // Let some output be captured and streamed first.
    await eventually(
      'output to be stored',
      async () => ((await query<{ bytes: number }>('select bytes from run_output_meta where run_id = $1', [id]))[0]?.bytes ?? 0) > 100 || undefined,
    );
    const victim = servers.find((s) => owner.includes(`/${s.proc.pid}/`));
    assert.ok(victim, `owner ${owner} is one of our servers`);
    const killedAt = Date.now();
    await victim.kill('SIGKILL');
    servers.splice(servers.indexOf(victim), 1);
    const adopted = await eventually(
      'another replica to adopt the run',
      async () => {
        const l = (await query<{ owner: string }>('select owner from run_leases where run_id = $1', [id]))[0];
        const r = (await query<{ status: string }>('select status from runs where id = $1', [id]))[0];
        return (l && l.owner !== owner) || (r && r.status !== 'running') ? Date.now() : undefined;
      },
      30_000,
    );
    const failoverMs = adopted - killedAt;
    console.log(`failover: adopted ${failoverMs} ms after the owner was killed`);
    assert.ok(failoverMs <= 15_000, `adopted within 15 s (took ${failoverMs} ms)`);

    const result = await cli;
    assert.equal(result.code, 5, `the CLI exits with the run's exit code; stderr:\n${result.stderr}`);
    assert.deepEqual(
      result.stdout.toString().trimEnd().split('\n'),
      Array.from({ length: lines }, (_, i) => `line ${i + 1}`),
      'every line once, in order, across the failover',
    );
    const survivor = servers[0]!;
    const trail = (
      (await (await fetch(`${survivor.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; exitCode?: number; status?: string }[] }
    ).items;
    const endings = trail.filter((e) => ['run.finished', 'run.lost', 'run.cancelled'].includes(e.type));
    assert.equal(endings.length, 1, `one ending: ${JSON.stringify(trail.map((e) => e.type))}`);
    assert.deepEqual([endings[0]!.type, endings[0]!.status, endings[0]!.exitCode], ['run.finished', 'failed', 5]);
    const verify = (await (await fetch(`${survivor.url}/api/audit/verify`)).json()) as { ok: boolean };
    assert.equal(verify.ok, true);
  });

  test('PostgreSQL restarts mid-run: new runs fail closed with 503 while it is down; acknowledged output and the run survive it', async () => {
    const srv = servers[0]!;
    const lines = 60;
    const script = `for (let i = 1; i <= ${lines}; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, 250)); }`;
    const cli = runCli(['run', '-n', ns.name, 'deploy/api', '--', 'node', '--input-type=module', '-e', script], { server: srv.url, timeoutMs: 150_000 });
    const id = await eventually(
      'the run to be running',
      async () => {
        const r = (await query<{ id: string; status: string }>('select id, status from runs order by ord desc limit 1'))[0];
        return r?.status === 'running' ? r.id : undefined;
      },
      90_000,
    );
    await pgServer.stop();
    try {
      const refused = await fetch(`${srv.url}/api/runs`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ namespace: ns.name, deployment: 'api', command: ['true'] }),
      });
      assert.equal(refused.status, 503, await refused.text());
      assert.equal((await fetch(`${srv.url}/readyz`)).status, 503, 'not ready while the store is away');
    } finally {
      await pgServer.start();
    }
    const result = await cli;
    assert.equal(result.code, 0, result.stderr);
    const expected = Array.from({ length: lines }, (_, i) => `line ${i + 1}`);
    assert.deepEqual(result.stdout.toString().trimEnd().split('\n'), expected, 'the live stream lost nothing');
    // What was stored (the replay any replica serves) is whole too.
    const replay = await runCli(['logs', id], { server: srv.url });
    assert.deepEqual(replay.stdout.toString().trimEnd().split('\n'), expected, 'the stored output has no gap');
    const trail = ((await (await fetch(`${srv.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; exitCode?: number }[] }).items;
    assert.equal(trail.filter((e) => e.type === 'run.finished').length, 1);
    assert.equal(((await (await fetch(`${srv.url}/api/audit/verify`)).json()) as { ok: boolean }).ok, true);
  });
  test("an owner that stalls past its lease (SIGSTOP) hands its viewers over: the other adopts, the stalled one's CLI gets every line once and the exit code", async () => {
    // A fresh pair: the first test left one replica.
    const args = ['--auth', 'dev', '--dev-user', 'alice', '--dev-teams', 'acme/payments', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath];
    const passwordFile = path.join(pgServer.dir, 'client-password');
    const pair = await Promise.all(
      [0, 1].map(() =>
        startServerProcess([...args, '--db', dbUrl.replace(`:${encodeURIComponent(pgServer.password)}@`, '@'), '--db-password-file', passwordFile]),
      ),
    );
    servers.push(...pair);
    const [stalled, other] = pair as [ServerProcess, ServerProcess];
    const lines = 80;
    const script = `for (let i = 1; i <= ${lines}; i++) { console.log('line ' + i); await new Promise((r) => setTimeout(r, 250)); } process.exitCode = 4;`;
    // Straight to the replica that will stall: it creates the run, owns it, and serves this viewer.
    const cli = runCli(['run', '-n', ns.name, 'deploy/api', '--', 'node', '--input-type=module', '-e', script], { server: stalled.url, timeoutMs: 150_000 });
    const id = await eventually(
      'the run to be running and owned by the replica that will stall',
      async () => {
        const r = (
          await query<{ id: string; status: string; owner: string | null }>(
            `select r.id, r.status, l.owner from runs r left join run_leases l on l.run_id = r.id order by r.ord desc limit 1`,
          )
        )[0];
        return r?.status === 'running' && r.owner?.includes(`/${stalled.proc.pid}/`) ? r.id : undefined;
      },
      90_000,
    );
    await eventually(
      'output to be stored',
      async () => ((await query<{ bytes: number }>('select bytes from run_output_meta where run_id = $1', [id]))[0]?.bytes ?? 0) > 100 || undefined,
    );
    stalled.proc.kill('SIGSTOP');
    try {
      await eventually(
        'another replica to adopt the run',
        async () => {
          const l = (await query<{ owner: string }>('select owner from run_leases where run_id = $1', [id]))[0];
          return (l && !l.owner.includes(`/${stalled.proc.pid}/`)) || undefined;
        },
        30_000,
      );
    } finally {
      stalled.proc.kill('SIGCONT');
    }
    // The stalled replica learns it lost the run at its next renewal; its viewer must not
    // wait there for an ending it will never record.
    const result = await cli;
    assert.equal(result.code, 4, `the CLI exits with the run's exit code; stderr:\n${result.stderr}`);
    assert.deepEqual(
      result.stdout.toString().trimEnd().split('\n'),
      Array.from({ length: lines }, (_, i) => `line ${i + 1}`),
      'every line once, in order, across the stall',
    );
    const trail = ((await (await fetch(`${other.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; exitCode?: number }[] }).items;
    const endings = trail.filter((e) => ['run.finished', 'run.lost', 'run.cancelled'].includes(e.type));
    assert.equal(endings.length, 1, `one ending: ${JSON.stringify(trail.map((e) => e.type))}`);
    assert.equal(endings[0]!.exitCode, 4);
  });
});
