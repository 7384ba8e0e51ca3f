// Tasks and the approval inbox in real headless Chromium, with two people signed in
// through the fake GitHub: a Task runs from the form built from its parameter types
// and streams like any run; a Task that needs approval becomes a request, which its
// requester cannot decide on and a second person approves from the inbox, after which
// the run streams in their browser.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { createTask } from '../support/task-crd.js';
import { FakeGitHub } from '../support/fake-github.js';
import { startGitHubServer } from '../support/github-signin.js';
import type { ServerProcess } from '../support/oddjob.js';
import { visit } from '../support/browser.js';
import { freePort } from '../support/net.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let browser: Browser;

async function signedIn(login: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, baseURL: server.url });
  const page = await context.newPage();
  await visit(page, '/');
  gh.actAs = login;
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await page.getByTestId('whoami').waitFor({ timeout: 30_000 });
  assert.match(await page.getByTestId('whoami').innerText(), new RegExp(login));
  await page.close();
  return context;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing`);
  assert.ok(existsSync(join(REPO_ROOT, 'web/dist/index.html')), 'the web UI is not built: npm run build:web (npm test does it)');
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'web-tasks');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/approvers': 'carol' }),
  });
  const task = (name: string, spec: Record<string, unknown>) => createTask(cluster, ns.name, name, { deployment: 'api', ...spec });
  await task('report', {
    description: 'prints what it was given',
    command: [
      'node',
      '-e',
      'console.log("report:" + JSON.stringify(process.argv.slice(1)))',
      '--',
      '$(params.merchant)',
      '--batch=$(params.batch)',
      '--dry-run=$(params.dryRun)',
      '$(params.region)',
    ],
    params: [
      { name: 'merchant', type: 'string', required: true, pattern: '^m_[a-z0-9]{8}$' },
      { name: 'batch', type: 'integer', min: 1, max: 1000, default: 100 },
      { name: 'dryRun', type: 'boolean', default: true },
      { name: 'region', type: 'choice', choices: ['eu', 'us'], default: 'eu' },
    ],
  });
  await task('purge', {
    approval: 'required',
    command: ['node', '-e', 'console.log("purged " + process.argv.at(-1))', '--', '$(params.what)'],
    params: [{ name: 'what', type: 'string', required: true }],
  });
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('carol', [], ['acme']);
  server = await startGitHubServer({
    port: await freePort(),
    gh,
    dir: mkdtempSync(join(tmpdir(), 'oddjob-web-tasks-')),
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auth-rate-limit', '1000', '--start-timeout', '60s'],
  });
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

describe('web UI: Tasks and the approval inbox', () => {
  test('a Task runs from the form built from its parameter types, and streams', async () => {
    const context = await signedIn('alice');
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await visit(page, '/tasks');
    const card = page.getByTestId('task-report');
    await card.waitFor();
    // One control per type: text, number (with its range), checkbox, select.
    assert.equal(await card.locator('input[name="merchant"]').getAttribute('type'), 'text');
    assert.equal(await card.locator('input[name="batch"]').getAttribute('type'), 'number');
    assert.equal(await card.locator('input[name="batch"]').getAttribute('max'), '1000');
    assert.equal(await card.locator('input[name="dryRun"]').isChecked(), true);
    assert.deepEqual(await card.locator('select[name="region"] option').allInnerTexts(), ['eu', 'us']);

    // A value the server refuses: its words, naming the parameter; nothing starts.
    await card.locator('input[name="merchant"]').fill('x; rm -rf /');
    await card.getByRole('button', { name: 'Run task' }).click();
    await card.getByRole('alert').waitFor();
    assert.match(await card.getByRole('alert').innerText(), /parameter merchant: must match/);

    await card.locator('input[name="merchant"]').fill('m_12345678');
    await card.locator('input[name="batch"]').fill('7');
    await card.locator('input[name="dryRun"]').uncheck();
    await card.locator('select[name="region"]').selectOption('us');
    await card.getByRole('button', { name: 'Run task' }).click();
    await page.waitForURL(/\/runs\/[a-z0-9]{12}$/, { timeout: 30_000 });
    await eventually(
      'the output in the terminal',
      async () => (await page.locator('#terminal .xterm-rows').innerText()).includes('report:["m_12345678","--batch=7","--dry-run=false","us"]'),
      90_000,
    );
    await eventually('the run to succeed', async () => (await page.locator('#run-status').innerText()).trim() === 'succeeded', 60_000);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test('a Task that needs approval is approved from the inbox by a second person, and its run streams', async () => {
    const alice = await signedIn('alice');
    const carol = await signedIn('carol');
    const a = await alice.newPage();
    await visit(a, '/tasks');
    const card = a.getByTestId('task-purge');
    await card.locator('input[name="what"]').fill('cache of m_1');
    await card.getByRole('button', { name: 'Run task' }).click();
    await card.getByTestId('approval-needed').waitFor();
    assert.match(await card.getByTestId('approval-needed').innerText(), /users carol/);

    // The requester sees it in the inbox, without the means to decide.
    await visit(a, '/requests');
    const mine = a.locator('[data-request]').first();
    await mine.waitFor();
    assert.match(await mine.innerText(), /Your request: someone else must decide/);
    assert.equal(await mine.getByRole('button', { name: 'Approve and run' }).count(), 0);

    const c = await carol.newPage();
    await visit(c, '/requests');
    const request = c.locator('[data-request]').first();
    await request.waitFor();
    assert.match(await request.innerText(), /task\/purge/);
    assert.match(await request.innerText(), /alice/);
    assert.match(await request.innerText(), /Manifest SHA-256/);
    await request.getByRole('button', { name: 'Approve and run' }).click();
    await c.waitForURL(/\/runs\/[a-z0-9]{12}$/, { timeout: 30_000 });
    await eventually(
      'the approved run in carol’s terminal',
      async () => (await c.locator('#terminal .xterm-rows').innerText()).includes('purged cache of m_1'),
      90_000,
    );
    await eventually('the run to succeed', async () => (await c.locator('#run-status').innerText()).trim() === 'succeeded', 60_000);
    await visit(c, '/requests');
    await c.getByText('Nothing is waiting for a decision.').waitFor();
    await alice.close();
    await carol.close();
  });
});
