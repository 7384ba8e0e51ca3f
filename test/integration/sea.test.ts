// The CLI as a single-file executable (Node's SEA, hack/sea/build.sh): one file that
// needs no Node and no node_modules. Proves it reports the package's version, runs a
// command through a server against the real cluster with an empty environment (no
// PATH, so no node to fall back on), and says clearly that it carries no server.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, createTestNamespace, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let work: string;
let exe: string;
let server: ServerProcess;

function oddjob(args: string[]) {
  const r = spawnSync(exe, args, {
    env: { HOME: join(work, 'home'), ODDJOB_SERVER: server.url },
    cwd: join(work, 'home'),
    encoding: 'utf8',
    timeout: 120_000,
    input: '',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  cluster = await requireCluster();
  work = mkdtempSync(join(tmpdir(), 'oddjob-sea-'));
  mkdirSync(join(work, 'home'));
  exe = execFileSync('bash', [join(REPO_ROOT, 'hack/sea/build.sh'), join(work, 'out')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  ns = await createTestNamespace(cluster, 'sea');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  server = await startServerProcess([
    '--auth',
    'dev',
    '--dev-user',
    'alice',
    '--namespaces',
    ns.name,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    join(work, 'oddjob.db'),
  ]);
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the single-file executable', () => {
  test('is one executable file and knows its version', () => {
    assert.ok(statSync(exe).mode & 0o100, 'executable');
    const r = oddjob(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`);
    assert.equal(r.stderr, '', 'no experimental-feature warning');
  });

  test('oddjob run: output and exit code from the real cluster, with no Node on PATH', () => {
    const r = oddjob(['run', '-n', ns.name, 'deploy/api', '--', 'node', '-e', 'console.log("from the single file"); process.exit(5)']);
    assert.equal(r.code, 5, r.stderr);
    assert.equal(r.stdout, 'from the single file\n');
    // No version warning (the pod's Events may warn on stderr: the local cluster has no DNS).
    assert.doesNotMatch(r.stderr, /this CLI is/);
  });

  test('oddjob server: refused with where to get the server', () => {
    const r = oddjob(['server']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /the server is not in the single-file executable; run it from the npm package or the image/);
  });
});
