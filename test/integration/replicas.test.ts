// Several oddjob replicas on one real PostgreSQL 15, against the real cluster: a run
// started through replica A is followed through replica B with the CLI, byte for byte,
// live from the store; sessions and the audit chain are shared.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TestCluster, REPO_ROOT, createTestNamespace, optedInDeployment, requireCluster } from '../support/cluster.js';
import { type ServerProcess, runCli, startServerProcess } from '../support/oddjob.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

let cluster: TestCluster;
let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let pg: PostgresServer;
let a: ServerProcess;
let b: ServerProcess;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'replicas');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }) });
  pg = await startPostgres();
  const url = await pg.createDatabase('oddjob');
  const passwordFile = path.join(pg.dir, 'client-password');
  fs.writeFileSync(passwordFile, pg.password);
  const server = () =>
    startServerProcess([
      '--auth',
      'dev',
      '--dev-user',
      'alice',
      '--dev-teams',
      'acme/payments',
      '--namespaces',
      ns.name,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--db',
      url.replace(`:${encodeURIComponent(pg.password)}@`, '@'),
      '--db-password-file',
      passwordFile,
    ]);
  [a, b] = await Promise.all([server(), server()]);
});

after(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await pg?.destroy();
  await ns?.dispose();
});

describe('replicas on one PostgreSQL', () => {
  test('a run started through A and followed through B streams byte-exact, live', async () => {
    const expected = execFileSync(process.execPath, [path.join(REPO_ROOT, 'hack/images/demo-app/scripts/flood.js'), '3'], { maxBuffer: 64 << 20 });
    const started = await runCli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', 'scripts/flood.js', '3'], { server: a.url });
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    // Followed on B while A captures it (B does not track the run: it reads the store).
    const [viaB, viaA] = await Promise.all([runCli(['logs', '-f', id], { server: b.url }), runCli(['logs', '-f', id], { server: a.url })]);
    assert.equal(viaB.code, 0, viaB.stderr);
    assert.equal(viaB.stdout.length, expected.length, `B: ${viaB.stdout.length} bytes, expected ${expected.length}; stderr: ${viaB.stderr}`);
    assert.ok(viaB.stdout.equals(expected), 'B: byte-exact');
    assert.ok(viaA.stdout.equals(expected), 'A: byte-exact');
    const run = (await (await fetch(`${b.url}/api/runs/${id}`)).json()) as { status: string; exitCode: number; outputBytes: number };
    assert.deepEqual([run.status, run.exitCode, run.outputBytes], ['succeeded', 0, expected.length]);
    assert.match(b.logs() + a.logs(), /store open/);
  });

  test('the exit code and the audit trail are the same from either replica; the shared chain verifies', async () => {
    const started = await runCli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', 'scripts/exit.js', '3'], { server: b.url });
    const id = started.stdout.toString().trim();
    const viaA = await runCli(['logs', '-f', id], { server: a.url });
    assert.equal(viaA.stdout.toString(), 'to stdout\n');
    assert.equal(viaA.stderr.includes('to stderr'), true, viaA.stderr);
    for (const srv of [a, b]) {
      const run = (await (await fetch(`${srv.url}/api/runs/${id}`)).json()) as { status: string; exitCode: number };
      assert.deepEqual([run.status, run.exitCode], ['failed', 3]);
      const trail = ((await (await fetch(`${srv.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; exitCode?: number }[] }).items;
      assert.deepEqual(trail.map((e) => e.type).reverse(), ['run.requested', 'run.created', 'run.started', 'run.finished']);
      assert.equal(trail.filter((e) => e.type === 'run.finished').length, 1, 'the ending is recorded once');
    }
    const verify = (await (await fetch(`${a.url}/api/audit/verify`)).json()) as { ok: boolean; checked: number };
    assert.equal(verify.ok, true, JSON.stringify(verify));
  });
});
