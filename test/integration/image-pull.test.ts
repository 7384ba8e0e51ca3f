// A run whose image really has to be pulled, end to end: a real registry on loopback
// (test/support/registry.ts) serves the demo image under a tag the node has never
// seen, the kubelet pulls it through containerd, and the CLI (stderr) and the run's
// web page (real Chromium) show Pulling while the pull is held in progress, then
// Pulled once it is let through. Screenshot: test-artifacts/screenshots/run-pulling-light.png.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { BIN, runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { nodeHasImage, startLocalRegistry, type LocalRegistry } from '../support/registry.js';
import { visit } from '../support/browser.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let registry: LocalRegistry;
let browser: Browser | undefined;

/** A Deployment of the demo image as served by the local registry under a fresh tag. */
async function pulledDeployment(name: string): Promise<string> {
  const image = await registry.pushDemo('oddjob/demo-pull');
  assert.equal(await nodeHasImage(image), false, `${image} is already on the node: the test would not pull`);
  const d = optedInDeployment(name, { 'oddjob.io/allowed-users': 'alice' });
  d.spec!.template.spec!.containers[0]!.image = image;
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: d });
  return image;
}

const escaped = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const manifestRequests = (image: string) => {
  const [repo, tag] = image.slice(image.indexOf('/') + 1).split(':') as [string, string];
  return registry.requests.filter((r) => r.path === `/v2/${repo}/manifests/${tag}`).length;
};

before(async () => {
  cluster = await requireCluster();
  registry = await startLocalRegistry();
  ns = await createTestNamespace(cluster, 'image-pull');
  server = await startServerProcess([
    ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath],
    ...['--db', join(mkdtempSync(join(tmpdir(), 'oddjob-pull-')), 'audit.db'), '--start-timeout', '2m'],
  ]);
});

after(async () => {
  await browser?.close();
  await server?.kill();
  await ns?.dispose();
  await registry?.close();
});

describe('a run whose image has to be pulled', () => {
  test('the CLI shows Pulling while the pull is in progress, then Pulled, then the output', async () => {
    const image = await pulledDeployment('cli');
    registry.hold();
    const proc = spawn(process.execPath, [BIN, 'run', '-n', ns.name, 'deploy/cli', '--', 'node', 'scripts/hello.js'], {
      env: { ...process.env, ODDJOB_SERVER: server.url, ODDJOB_TOKEN: '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => setImmediate(() => r(code))));
    try {
      await eventually('the Pulling line', async () => stderr.includes(`oddjob: Pulling: Pulling image "${image}"`), 60_000);
      // The registry holds the manifest: the pull is under way and has not finished.
      assert.ok(manifestRequests(image) >= 1, `the kubelet never asked the registry for ${image}: ${JSON.stringify(registry.requests)}`);
      assert.doesNotMatch(stderr, /oddjob: Pulled:/);
    } finally {
      registry.release();
    }
    const code = await exited;
    assert.equal(code, 0, stderr);
    assert.match(stderr, new RegExp(`oddjob: Pulled: Successfully pulled image "${escaped(image)}" in `));
    assert.ok(stderr.indexOf('oddjob: Pulling:') < stderr.indexOf('oddjob: Pulled:'), stderr);
    assert.match(stdout, /hello/i);
    assert.equal(await nodeHasImage(image), true, 'the node should now hold the pulled image');
  });

  test('the run page shows Pulling while the pull is in progress, then Pulled', async () => {
    assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`);
    assert.ok(existsSync(join(REPO_ROOT, 'web/dist/index.html')), 'the web UI is not built: npm run build:web (npm test does it)');
    mkdirSync(SHOTS, { recursive: true });
    const image = await pulledDeployment('web');
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: server.url, colorScheme: 'light' });
    const pageErrors: string[] = [];
    const page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));

    registry.hold();
    try {
      const r = await runCli(['run', '-n', ns.name, '--detach', 'deploy/web', '--', 'node', 'scripts/hello.js'], { server: server.url });
      assert.equal(r.code, 0, r.stderr);
      const id = r.stdout.toString().trim();
      await visit(page, `/runs/${id}`);
      const pulling = page.locator('#pod-events li[data-reason="Pulling"]');
      await pulling.waitFor({ timeout: 60_000 });
      assert.equal(await pulling.innerText(), `Pulling: Pulling image "${image}"`);
      assert.ok(manifestRequests(image) >= 1, `the kubelet never asked the registry for ${image}`);
      assert.equal(await page.locator('#pod-events li[data-reason="Pulled"]').count(), 0);
      registry.release();

      const pulled = page.locator('#pod-events li[data-reason="Pulled"]');
      await pulled.waitFor({ timeout: 60_000 });
      assert.match(await pulled.innerText(), new RegExp(`^Pulled: Successfully pulled image "${escaped(image)}" in `));
      await eventually(
        'the run to succeed',
        async () => ((await (await fetch(`${server.url}/api/runs/${id}`)).json()) as { status: string }).status === 'succeeded',
      );
      // The lines stay on the page after the run started.
      assert.deepEqual(
        (await page.locator('#pod-events li').evaluateAll((els) => els.map((e) => e.getAttribute('data-reason')))).filter(
          (x) => x === 'Pulling' || x === 'Pulled',
        ),
        ['Pulling', 'Pulled'],
      );
      await page.screenshot({ path: join(SHOTS, 'run-pulling-light.png'), fullPage: true });
    } finally {
      registry.release();
      await page.close();
    }
    assert.deepEqual(pageErrors, []);
  });
});
