#!/usr/bin/env node
// One test runner for the whole project: node:test through tsx.
//   npm test                 unit, then integration (needs the local cluster)
//   npm test -- unit         only test/unit
//   npm test -- integration  only test/integration
// Integration tests run one file at a time: they share one real cluster.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

const root = new URL('..', import.meta.url).pathname;

// The project runs on Node >= 22 (better-sqlite3 13 crashes on older ones). On a
// machine with an older Node, run the suite on the pinned Node the project fetches
// itself (hack/node/ensure-node.sh), so `npm test` works on a fresh machine.
if (Number(process.versions.node.split('.')[0]) < 22) {
  const ensured = spawnSync('bash', [join(root, 'hack/node/ensure-node.sh')], { stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' });
  if (ensured.status !== 0) {
    console.error(`Node ${process.version} is too old (need >= 22) and fetching the pinned Node failed (hack/node/ensure-node.sh)`);
    process.exit(1);
  }
  const bin = ensured.stdout.trim();
  console.error(`Node ${process.version} is too old: running the tests on ${bin}/node`);
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}` };
  const r = spawnSync(join(bin, 'node'), process.argv.slice(1), { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}
const SUITES = ['unit', 'integration'];
const want = process.argv.slice(2);
const suites = want.length ? want : SUITES;
const unknown = suites.filter((s) => !SUITES.includes(s));
if (unknown.length) {
  console.error(`unknown test suite${unknown.length > 1 ? 's' : ''}: ${unknown.join(', ')}; the suites are ${SUITES.join(' and ')} (npm test -- unit)`);
  console.error('one file: node --import tsx --test test/unit/FILE.test.ts');
  process.exit(2);
}

function find(dir) {
  const out = [];
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...find(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

// Integration tests need the real local cluster. `npm test` starts it when it
// is not running (first time: builds it, ~6 min); a failure to start is a failure.
function ensureCluster() {
  if (process.env.ODDJOB_TEST_KUBECONFIG) return true; // someone else's cluster
  const status = spawnSync('bash', [join(root, 'hack/cluster/status.sh'), '--quiet'], { stdio: 'ignore' });
  if (status.status === 0) return true;
  console.error('\nthe local cluster is not running: starting it (npm run cluster:up)');
  const up = spawnSync('bash', [join(root, 'hack/cluster/up.sh')], { stdio: 'inherit' });
  if (up.status !== 0) console.error('cluster:up failed; integration tests cannot run (see .cluster/logs/)');
  return up.status === 0;
}

// The browser tests (test/integration/web.test.ts) need the built web UI.
// Rebuild when web/dist is missing or older than any source (vite takes ~2 s).
function newest(dir) {
  let t = 0;
  for (const name of readdirSync(dir)) {
    if (name === 'dist' || name === 'node_modules') continue;
    const p = join(dir, name);
    const st = statSync(p);
    t = Math.max(t, st.isDirectory() ? newest(p) : st.mtimeMs);
  }
  return t;
}
function ensureWebBuilt() {
  const index = join(root, 'web', 'dist', 'index.html');
  let built = 0;
  try {
    built = statSync(index).mtimeMs;
  } catch {
    /* not built */
  }
  const sources = Math.max(newest(join(root, 'web')), newest(join(root, 'protocol')));
  if (built && built >= sources) return true;
  console.error('\nbuilding the web UI (npm run build:web)');
  const r = spawnSync(
    process.execPath,
    [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(root, 'web', 'vite.config.ts'), '--logLevel', 'warn'],
    { stdio: 'inherit', cwd: root },
  );
  if (r.status !== 0) console.error('the web UI did not build; the browser tests will fail');
  return r.status === 0;
}

let failed = false;
for (const suite of suites) {
  if (suite === 'integration' && !ensureCluster()) {
    failed = true;
    continue;
  }
  if (suite === 'integration' && !ensureWebBuilt()) failed = true;
  const files = find(join(root, 'test', suite));
  if (files.length === 0) {
    console.error(`no tests found in test/${suite}`);
    failed = true;
    continue;
  }
  console.error(`\n== ${suite}: ${files.length} files ==`);
  const args = ['--import', 'tsx', '--test', '--test-reporter=spec', `--test-concurrency=${suite === 'unit' ? 2 : 1}`, ...files];
  const r = spawnSync(process.execPath, args, { stdio: 'inherit', cwd: root, env: process.env });
  if (r.status !== 0) failed = true;
}
process.exit(failed ? 1 : 0);
