// The package as users get it: `npm pack`, `npm i -g` of the tarball into an empty
// prefix, then the installed `oddjob` with nothing but Node on PATH: the right
// --version, `oddjob run` against the real cluster through a server started from the
// same installed package, and a warning when the CLI and server versions differ.
// `npx` of the same tarball works too.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { REPO_ROOT, createTestNamespace, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { name: string; version: string; dependencies: Record<string, string> };
const NODE_DIR = dirname(process.execPath);
// npm runs on the Node running these tests: its own shebang finds that one first.
const npmEnv = { ...process.env, PATH: `${NODE_DIR}:${process.env.PATH ?? ''}` };

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let work: string;
let prefix: string;
let installed: string;
let files: string[];
let tarball: string;
let server: ServerProcess;

/** The installed CLI with only Node on PATH, an empty HOME, and none of this checkout's environment. */
function oddjob(args: string[], serverUrl: string) {
  const r = spawnSync(join(prefix, 'bin', 'oddjob'), args, {
    env: { PATH: `${NODE_DIR}:/usr/bin:/bin`, HOME: join(work, 'home'), ODDJOB_SERVER: serverUrl },
    encoding: 'utf8',
    timeout: 120_000,
    input: '',
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

before(async () => {
  cluster = await requireCluster();
  work = mkdtempSync(join(tmpdir(), 'oddjob-package-'));
  prefix = join(work, 'prefix');
  // --json: the file list, straight from npm (prepack builds dist/ and web/dist/ first).
  const packed = JSON.parse(
    execFileSync('npm', ['pack', '--json', '--pack-destination', work], {
      cwd: REPO_ROOT,
      env: npmEnv,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    }),
  ) as Array<{
    filename: string;
    files: Array<{ path: string }>;
  }>;
  files = packed[0]!.files.map((f) => f.path);
  tarball = join(work, packed[0]!.filename);
  execFileSync('npm', ['install', '--global', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', tarball], {
    env: npmEnv,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  installed = join(prefix, 'lib', 'node_modules', pkg.name);
  ns = await createTestNamespace(cluster, 'package');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  // The server from the installed package too: its compiled code and runtime dependencies are what ship.
  server = await startServerProcess(
    [
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
      '--start-timeout',
      '40s',
    ],
    {},
    join(installed, 'bin', 'oddjob.mjs'),
  );
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
  if (tarball) forgetNpxInstall(tarball);
  if (work) rmSync(work, { recursive: true, force: true });
});

/** npx keeps what it installed for a package spec (here a one-off tarball path) in its cache for good: remove it. */
function forgetNpxInstall(spec: string) {
  const npxDir = join(execFileSync('npm', ['config', 'get', 'cache'], { env: npmEnv, encoding: 'utf8' }).trim(), '_npx');
  for (const dir of existsSync(npxDir) ? readdirSync(npxDir) : []) {
    const manifest = join(npxDir, dir, 'package.json');
    if (existsSync(manifest) && readFileSync(manifest, 'utf8').includes(spec)) rmSync(join(npxDir, dir), { recursive: true, force: true });
  }
}

describe('the packed package, installed with npm i -g', () => {
  test('carries compiled code, the web UI and the license, no TypeScript sources and no tests', () => {
    assert.ok(files.includes('dist/cli/main.js') && files.includes('dist/server/main.js') && files.includes('web/dist/index.html'), files.join('\n'));
    assert.ok(files.includes('LICENSE'), 'the Apache-2.0 text package.json names');
    const stray = files.filter(
      (f) => f.endsWith('.ts') || f.startsWith('test/') || f.startsWith('dist/test/') || f.startsWith('bench/') || f.startsWith('web/src/'),
    );
    assert.deepEqual(stray, []);
  });
  test('installs only the runtime dependencies', () => {
    const top = readdirSync(join(installed, 'node_modules'));
    for (const dev of ['tsx', 'typescript', 'vite', 'eslint', 'supertest']) assert.ok(!top.includes(dev), `${dev} was installed`);
    for (const dep of Object.keys(pkg.dependencies)) assert.ok(existsSync(join(installed, 'node_modules', dep)), `${dep} is missing`);
  });
  test("--version is package.json's version", () => {
    const r = oddjob(['--version'], server.url);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${pkg.version}\n`);
  });
  test('oddjob run works against the real cluster, with no version warning from a matching server', () => {
    const r = oddjob(['run', '-n', ns.name, 'deploy/api', '--', 'node', '-e', 'console.log("from the package"); process.exit(3)'], server.url);
    assert.equal(r.code, 3, r.stderr);
    assert.equal(r.stdout, 'from the package\n');
    // Only the version check is asserted absent: the pod's Events may warn on stderr too
    // (the local cluster has no DNS, so the kubelet reports MissingClusterDNS).
    assert.doesNotMatch(r.stderr, /this CLI is/);
  });
  test('a CLI of another major.minor than the server warns on stderr, and still works', () => {
    // The installed CLI reads its version from its package.json: make it a later release.
    const pj = join(installed, 'package.json');
    const manifest = JSON.parse(readFileSync(pj, 'utf8')) as { version: string };
    const [major, minor] = pkg.version.split('.').map(Number) as [number, number];
    const later = `${major}.${minor + 1}.0`;
    writeFileSync(pj, JSON.stringify({ ...manifest, version: later }));
    const version = oddjob(['--version'], server.url);
    assert.equal(version.stdout, `${later}\n`);
    // The server process read its version at start: it still announces pkg.version.
    const r = oddjob(['whoami'], server.url);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /alice/);
    assert.match(
      r.stderr,
      new RegExp(`warning: this CLI is ${major}\\.${minor + 1} but the server is ${major}\\.${minor} \\(${pkg.version.replace(/\./g, '\\.')}\\)`),
    );
    assert.equal(r.stderr.match(/warning/g)?.length, 1, 'warned once');
  });
});

describe('the packed package, through npx', () => {
  test('npx --package <tarball> oddjob: the right --version, and oddjob run against the real cluster', () => {
    const npx = (args: string[]) =>
      spawnSync('npx', ['--yes', '--prefer-offline', '--package', tarball, '--', 'oddjob', ...args], {
        // A fresh working directory: npx must not find this checkout's own bin.
        cwd: work,
        env: { ...npmEnv, ODDJOB_SERVER: server.url },
        encoding: 'utf8',
        timeout: 180_000,
        input: '',
      });
    const version = npx(['--version']);
    assert.equal(version.status, 0, version.stderr);
    assert.equal(version.stdout, `${pkg.version}\n`);
    const r = npx(['run', '-n', ns.name, 'deploy/api', '--', 'node', '-e', 'console.log("through npx")']);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'through npx\n');
  });
});
