// The web UI with real GitHub sign-in, in real headless Chromium: a signed-out
// visitor gets the sign-in page, "Sign in with GitHub" goes through the fake
// GitHub and back with a session cookie, the page shows who they are, a run
// started from the form streams over a cookie-authenticated WebSocket (Origin
// checked), and "Sign out" ends the session.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { optedInDeployment, REPO_ROOT, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { visit } from '../support/browser.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let browser: Browser;
let base: string;

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`);
  mkdirSync(SHOTS, { recursive: true });
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'web-signin');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }),
  });
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments', 'acme/web']);
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  base = `http://127.0.0.1:${port}`;
  server = await startServerProcess(
    [
      '--port',
      String(port),
      '--auth',
      'github',
      '--public-url',
      base,
      '--github-url',
      gh.url,
      '--github-client-id',
      gh.clientId,
      '--github-org',
      'acme',
      '--namespaces',
      ns.name,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--db',
      join(mkdtempSync(join(tmpdir(), 'oddjob-websignin-')), 'audit.db'),
    ],
    { ODDJOB_GITHUB_CLIENT_SECRET: gh.clientSecret, ODDJOB_SESSION_SECRET: 'web-signin-session-secret-0123456789abcdef' },
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

describe('web UI with GitHub sign-in', () => {
  test('sign in through GitHub, run from the form over a cookie-authenticated stream, sign out', async () => {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: base });
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));

    await visit(page, `/run?namespace=${ns.name}&deployment=api`);
    const signIn = page.getByRole('link', { name: 'Sign in with GitHub' });
    await signIn.waitFor();
    await page.screenshot({ path: join(SHOTS, 'github-signin-desktop.png') });

    gh.actAs = 'alice';
    await signIn.click();
    // Through the fake GitHub's authorize endpoint and our callback, back to the app.
    await page.getByTestId('whoami').waitFor({ timeout: 30_000 });
    assert.match(await page.getByTestId('whoami').innerText(), /alice/);
    assert.ok(
      gh.requests.some((r) => r.path.startsWith('/login/oauth/authorize?')),
      'the browser went through GitHub',
    );
    const cookies = await context.cookies();
    const session = cookies.find((c) => c.name === 'oddjob_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Lax');
    assert.equal(await page.evaluate('document.cookie'), '', 'no cookie is readable by scripts');

    await visit(page, `/run?namespace=${ns.name}&deployment=api`);
    await page.locator('#argv input').first().fill('sh');
    await page.locator('#argv input').last().press('Enter');
    await page.locator('#argv input').last().fill('-c');
    await page.locator('#argv input').last().press('Enter');
    await page.locator('#argv input').last().fill('echo signed-in run by $0');
    await page.locator('#argv input').last().press('Enter');
    await page.locator('#argv input').last().fill('alice');
    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/runs\/[a-z0-9]{12}$/, { timeout: 30_000 });
    await eventually('the output in the terminal', async () => /signed-in run by alice/.test(await page.locator('#terminal .xterm-rows').innerText()), 90_000);
    await eventually('the run to succeed', async () => (await page.locator('#run-status').innerText()).trim() === 'succeeded', 60_000);
    await page.screenshot({ path: join(SHOTS, 'github-run-desktop.png') });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in with GitHub' }).waitFor({ timeout: 15_000 });
    const after = await fetch(`${base}/api/whoami`, { headers: { cookie: `oddjob_session=${session.value}` } });
    assert.equal(after.status, 401, 'the old cookie no longer works anywhere');
    assert.deepEqual(errors, []);
    await context.close();
  });
});
