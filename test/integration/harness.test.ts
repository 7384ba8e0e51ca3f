// The test harness's crash detector (test/support/oddjob.ts) is itself tested: a test
// whose server dies while all of its assertions pass must fail, naming the exit.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, createTestNamespace, requireCluster, type TestCluster } from '../support/cluster.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let dir: string;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'harness');
  dir = mkdtempSync(join(tmpdir(), 'oddjob-harness-'));
});
after(async () => {
  await ns?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test('a server that exits under a passing test fails that test, with its exit and last log lines', () => {
  const args = ['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath, '--db', join(dir, 'a.db')];
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-reporter=spec', join(REPO_ROOT, 'test/fixtures/server-crash.fixture.ts')], {
    cwd: REPO_ROOT,
    // Without NODE_TEST_CONTEXT the child is a test run of its own, not a part of this one.
    env: { ...process.env, NODE_TEST_CONTEXT: undefined, ODDJOB_FIXTURE_SERVER_ARGS: JSON.stringify(args) },
    encoding: 'utf8',
    timeout: 120_000,
  });
  const out = `${r.stdout}\n${r.stderr}`;
  assert.notEqual(r.status, 0, `the fixture run must fail:\n${out}`);
  assert.match(out, /an oddjob server exited unexpectedly during this test/);
  assert.match(out, /exited with SIGKILL/);
  assert.match(out, /listening on http:\/\/127\.0\.0\.1/, 'the report carries the server log');
});
