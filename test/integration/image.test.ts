// The image is built from the Dockerfile, as users build it, with buildah (no
// Docker engine) on a locally made Node 24 base (no registry here). Proves the
// image's defaults: it runs as its own user, keeps the store on a volume that user
// owns, listens on all addresses (reachable on a non-loopback one), carries OCI
// labels, and its compiled server becomes ready against the real cluster.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { chownSync, mkdtempSync, readFileSync, rmSync, copyFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, requireCluster, type TestCluster } from '../support/cluster.js';

const pkg = JSON.parse(readFileSync(join(REPO_ROOT, 'package.json'), 'utf8')) as { version: string };
let IMAGE: string;
// The local cluster's node address: on this machine, but not loopback.
const NODE_IP = '10.201.0.1';
const PORT = 18_481;

let cluster: TestCluster;
let work: string;
let config: { User?: string; Env?: string[]; Volumes?: Record<string, unknown>; Labels?: Record<string, string> };
let server: ChildProcess | undefined;
let container: string | undefined;
let logs = '';

const buildah = (args: string[]) => execFileSync('buildah', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }).trim();

before(async () => {
  cluster = await requireCluster();
  work = mkdtempSync(join(tmpdir(), 'oddjob-image-'));
  // The same build the chart tests install (cached by content).
  IMAGE = execFileSync('bash', [join(REPO_ROOT, 'hack/images/build-oddjob.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] }).trim();
  config = (JSON.parse(buildah(['inspect', '--type', 'image', IMAGE])) as { OCIv1: { config: typeof config } }).OCIv1.config;
});

after(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  if (container) buildah(['rm', container]);
  if (work) rmSync(work, { recursive: true, force: true });
});

describe('the image built from the Dockerfile', () => {
  test('runs as a non-root user, listens on all addresses, keeps its store on a volume, has OCI labels', () => {
    assert.equal(config.User, '10001:10001');
    assert.ok(config.Env?.includes('ODDJOB_HOST=0.0.0.0'), String(config.Env));
    assert.ok(config.Env?.includes('ODDJOB_DB=/var/lib/oddjob/audit.db'), String(config.Env));
    assert.deepEqual(Object.keys(config.Volumes ?? {}), ['/var/lib/oddjob']);
    assert.equal(config.Labels?.['org.opencontainers.image.version'], pkg.version);
    assert.equal(config.Labels?.['org.opencontainers.image.title'], 'oddjob');
  });

  test('the server starts with its defaults, writes its store as its user and answers on a non-loopback address', async () => {
    // The admin kubeconfig, readable by the image's user only.
    const kube = join(work, 'kube');
    execFileSync('mkdir', ['-m', '700', kube]);
    copyFileSync(cluster.kubeconfigPath, join(kube, 'config'));
    chmodSync(join(kube, 'config'), 0o600);
    chownSync(join(kube, 'config'), 10001, 10001);
    chownSync(kube, 10001, 10001);
    container = buildah(['from', IMAGE]);
    // No --host, no --db: the image's defaults. GitHub mode with made-up app credentials (nobody signs in).
    server = spawn(
      'buildah',
      [
        'run',
        '--isolation',
        'chroot',
        '--network',
        'host',
        '-v',
        `${kube}:/kube:ro`,
        '-e',
        `ODDJOB_PORT=${PORT}`,
        '-e',
        'ODDJOB_KUBECONFIG=/kube/config',
        '-e',
        'ODDJOB_NAMESPACES=default',
        '-e',
        'ODDJOB_GITHUB_CLIENT_ID=Iv1.imagetest',
        '-e',
        'ODDJOB_GITHUB_CLIENT_SECRET=not-a-secret',
        '-e',
        'ODDJOB_GITHUB_ORG=acme', // GitHub mode refuses to start without an org (issue 12)
        '-e',
        'ODDJOB_SESSION_SECRET=image-test-session-secret-of-at-least-32-bytes',
        '-e',
        'ODDJOB_PUBLIC_URL=https://oddjob.example.com',
        container,
        '--',
        'node',
        '/app/bin/oddjob.mjs',
        'server',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    server.stdout!.on('data', (d) => (logs += d));
    server.stderr!.on('data', (d) => (logs += d));
    const deadline = Date.now() + 60_000;
    let ready: Response | undefined;
    while (Date.now() < deadline && server.exitCode === null) {
      ready = await fetch(`http://${NODE_IP}:${PORT}/readyz`).catch(() => undefined);
      if (ready?.status === 200) break;
      await new Promise((r) => setTimeout(r, 250));
    }
    assert.equal(ready?.status, 200, `not ready on ${NODE_IP}:${PORT}; server output:\n${logs}`);
    assert.equal(ready.headers.get('x-oddjob-version'), pkg.version);
    assert.match(logs, new RegExp(`listening on http://0\\.0\\.0\\.0:${PORT}`));
    assert.equal((await fetch(`http://${NODE_IP}:${PORT}/`)).status, 200, 'the web UI is in the image');
    const store = buildah(['run', '--isolation', 'chroot', container, '--', 'stat', '-c', '%u:%g %a %n', '/var/lib/oddjob', '/var/lib/oddjob/audit.db']);
    assert.match(store, /^10001:10001 700 \/var\/lib\/oddjob\n10001:10001 \d+ \/var\/lib\/oddjob\/audit\.db$/);
  });
});
