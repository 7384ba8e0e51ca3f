// The web UI end to end: real headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core) against the real server process and the real
// cluster. Proves: signed in (identity shown), a run started from the form
// streams its output live into the terminal, an interactive run takes typed
// input (and its idle socket survives the server's keepalive pings), cancel,
// the audit view finds the run, a run URL replays the full output after its
// pod and Job are deleted, a dropped stream (server killed) resumes with no
// loss or duplicate, server validation errors are shown, and no page violates
// the Content-Security-Policy. Screenshots go to test-artifacts/screenshots/.
//
// The server is behind `UiServer` so that a GitHub-auth server (signing in
// through a fake GitHub) can replace the dev-auth one without touching the tests.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { DEMO_IMAGE, REPO_ROOT, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { visit } from '../support/browser.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');
const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };

/** A running oddjob the browser can use, and how a browser context signs in to it. */
interface UiServer {
  url: string;
  login: string;
  signIn(context: BrowserContext): Promise<void>;
  /** Kill the process (SIGKILL) and start it again on the same port and database. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function devAuthServer(cluster: TestCluster, namespace: string): Promise<UiServer> {
  const db = join(mkdtempSync(join(tmpdir(), 'oddjob-web-')), 'audit.db');
  const args = (port: string) => [
    '--auth',
    'dev',
    '--dev-user',
    'alice',
    '--dev-teams',
    'acme/payments',
    '--namespaces',
    namespace,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    db,
    '--start-timeout',
    '60s',
    '--port',
    port,
  ];
  let proc: ServerProcess = await startServerProcess(args('0'));
  const port = new URL(proc.url).port;
  return {
    url: proc.url,
    login: 'alice',
    async signIn() {
      // --auth dev: every request is alice; there is nothing to do.
    },
    async restart() {
      await proc.kill('SIGKILL');
      proc = await startServerProcess(args(port));
    },
    stop: () => proc.kill(),
  };
}

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: UiServer;
let browser: Browser;
let desktop: BrowserContext;
let phone: BrowserContext;
const cspViolations: string[] = [];
const consoleErrors: string[] = [];
/** Every HTTP answer >= 400 the pages got, with its body: the context for a failure. */
const httpErrors: string[] = [];

function deployment(name: string, annotations: Record<string, string>, sidecar = false): k8s.V1Deployment {
  const containers: k8s.V1Container[] = [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent', env: [{ name: 'GREETING', value: 'hi' }] }];
  if (sidecar)
    containers.push({
      name: 'proxy',
      image: DEMO_IMAGE,
      imagePullPolicy: 'IfNotPresent',
      command: ['node', '/app/server.js'],
      env: [{ name: 'PORT', value: '9090' }],
    });
  return {
    metadata: { name, annotations },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: name } },
      template: { metadata: { labels: { app: name } }, spec: { containers } },
    },
  };
}

async function newContext(viewport: { width: number; height: number }, isMobile = false): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport, isMobile, hasTouch: isMobile, deviceScaleFactor: 1, baseURL: server.url });
  await server.signIn(context);
  // A string, not a function: this file is compiled without the DOM typings.
  await context.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (e) => {
      (window.__csp ??= []).push(e.violatedDirective + ' ' + e.blockedURI + ' ' + e.sourceFile + ':' + e.lineNumber);
    });`,
  });
  context.on('page', (page) => watch(page));
  return context;
}

function watch(page: Page) {
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${page.url()}: ${msg.text()}`);
    if (/Content.Security.Policy/i.test(msg.text())) cspViolations.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: uncaught ${err.message}`));
  page.on('response', (r) => {
    if (r.status() >= 400)
      void r.text().then(
        (t) => httpErrors.push(`${r.request().method()} ${r.url()} ${r.status()} ${t.slice(0, 200)}`),
        () => undefined,
      );
  });
}

/** CSP violations the page saw itself (securitypolicyviolation events). */
async function collectCsp(page: Page) {
  const v = (await page.evaluate('window.__csp ?? []').catch(() => [])) as string[];
  cspViolations.push(...v.map((x) => `${page.url()}: ${x}`));
}

async function shot(page: Page, name: string, fullPage = true) {
  await collectCsp(page);
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage });
}

const terminalText = async (page: Page) => (await page.locator('#terminal .xterm-rows').innerText()).replace(/\u00a0/g, ' ');
/** How many terminal rows read exactly `line`. */
const rowsEqual = (text: string, line: string) => text.split('\n').filter((l) => l.trim() === line).length;

async function waitForTerminal(page: Page, re: RegExp, timeoutMs = 90_000) {
  await eventually(`terminal to show ${re}`, async () => re.test(await terminalText(page)), timeoutMs).catch(async (err) => {
    throw new Error(
      `${(err as Error).message}\nterminal:\n${await terminalText(page).catch(() => '?')}\nstatus: ${await page
        .locator('#stream-state')
        .innerText()
        .catch(() => '?')}`,
    );
  });
}

async function runStatus(page: Page) {
  return (await page.locator('#run-status').innerText()).trim();
}

/** Fills the run form's argument fields the way a person does: type, Enter for the next one. */
async function fillArgv(page: Page, argv: string[]) {
  const first = page.locator('#argv input').first();
  await first.fill(argv[0]!);
  for (const a of argv.slice(1)) {
    await page.locator('#argv input').last().press('Enter');
    await page.locator('#argv input').last().fill(a);
  }
}

async function startFromForm(page: Page, argv: string[], opts: { interactive?: boolean; tty?: boolean; reason?: string; deployment?: string } = {}) {
  await visit(page, `/run?namespace=${ns.name}&deployment=${opts.deployment ?? 'api'}`);
  await fillArgv(page, argv);
  if (opts.reason) await page.getByLabel('Reason').fill(opts.reason);
  if (opts.interactive) await page.getByLabel('Interactive').check();
  if (opts.tty) await page.getByLabel('Terminal (TTY)').check();
  await page.getByRole('button', { name: 'Start run' }).click();
  await page.waitForURL(/\/runs\/[a-z0-9]{12}$/, { timeout: 30_000 });
  return page.url().split('/').pop()!;
}

async function apiRun(id: string) {
  const r = await fetch(`${server.url}/api/runs/${id}`);
  assert.equal(r.status, 200);
  return (await r.json()) as { status: string; exitCode?: number; outputBytes: number; jobName: string; podName?: string };
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`);
  assert.ok(existsSync(join(REPO_ROOT, 'web/dist/index.html')), 'the web UI is not built: npm run build:web (npm test does it)');
  mkdirSync(SHOTS, { recursive: true });
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'web-e2e');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: deployment('api', { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/max-duration': '1h' }),
  });
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: deployment('worker', { 'oddjob.io/allowed-users': 'alice,bob' }, true) });
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: deployment('closed', {}) });
  server = await devAuthServer(cluster, ns.name);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  desktop = await newContext(DESKTOP);
  phone = await newContext(PHONE, true);
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await ns?.dispose();
});

describe('web UI, end to end in Chromium', () => {
  const ids: Record<string, string> = {};

  test('signed in: the identity is shown and only runnable deployments are listed', async () => {
    const page = await desktop.newPage();
    await visit(page, '/');
    await page.getByRole('heading', { name: 'Deployments you may run in' }).waitFor();
    assert.match(await page.getByTestId('whoami').innerText(), /alice/);
    await page.locator(`[data-deployment="${ns.name}/api"]`).waitFor();
    const cards = await page.locator('[data-deployment]').evaluateAll((els) => els.map((e) => e.getAttribute('data-deployment')));
    assert.deepEqual(cards.sort(), [`${ns.name}/api`, `${ns.name}/worker`], 'the un-annotated deployment is not offered');
    const worker = await page.locator(`[data-deployment="${ns.name}/worker"]`).innerText();
    assert.match(worker, /@alice/);
    assert.match(worker, /proxy/);
    assert.match(await page.locator(`[data-deployment="${ns.name}/api"]`).innerText(), /team acme\/payments[\s\S]*at most 1h/);
    await shot(page, 'deployments-desktop');
    const p = await phone.newPage();
    await visit(p, '/');
    await p
      .locator(`[data-deployment="${ns.name}/api"]`)
      .waitFor()
      .catch((err) => {
        throw new Error(`${(err as Error).message}\nHTTP errors: ${httpErrors.join('\n')}`);
      });
    await shot(p, 'deployments-phone');
    await p.close();
    await page.close();
  });

  test('the form previews the Job as YAML and starts a run whose output appears live', async () => {
    const page = await desktop.newPage();
    await visit(page, `/run?namespace=${ns.name}&deployment=api`);
    await fillArgv(page, ['node', 'scripts/backfill.js', '20']);
    assert.equal(await page.locator('#will-run').innerText(), 'node scripts/backfill.js 20');
    // The paste helper shows how a command line splits, quotes included.
    await page.getByText('Paste a command line').click();
    await page.locator('#cmdline').fill(`node -e 'console.log("a b")' | wc`);
    assert.match(await page.locator('#split-preview').innerText(), /5 arguments[\s\S]*console\.log\("a b"\)[\s\S]*no pipes/);
    await page.getByLabel('Reason').fill('web e2e: live output');
    await page.getByRole('button', { name: 'Preview Job' }).click();
    await page.locator('#job-preview pre').waitFor();
    const yaml = await page.locator('#job-preview pre').innerText();
    assert.match(yaml, /kind: Job/);
    assert.match(yaml, /- scripts\/backfill\.js/);
    assert.match(yaml, /activeDeadlineSeconds: \d+/);
    await shot(page, 'run-form-preview-desktop');
    const jobsBefore = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
    assert.equal(jobsBefore, 0, 'a preview creates nothing');

    await page.getByRole('button', { name: 'Start run' }).click();
    await page.waitForURL(/\/runs\/[a-z0-9]{12}$/);
    const id = page.url().split('/').pop()!;
    ids.live = id;
    // Live: the first batches are on screen while the run is still running.
    await waitForTerminal(page, /backfilled batch 1\/20/);
    const whileVisible = await runStatus(page);
    const textThen = await terminalText(page);
    assert.ok(['running', 'pending'].includes(whileVisible) && !/done/.test(textThen), `expected to see output before the end (status ${whileVisible})`);
    await shot(page, 'run-live-desktop', false);
    await eventually('the run to succeed', async () => (await runStatus(page)) === 'succeeded', 60_000);
    const text = await terminalText(page);
    for (let i = 1; i <= 20; i++) assert.equal(rowsEqual(text, `backfilled batch ${i}/20`), 1, `batch ${i} exactly once:\n${text}`);
    assert.match(text, /warning: 0 rows skipped/);
    assert.match(text, /^done\s*$/m);
    assert.equal((await page.getByTestId('exit-code').innerText()).trim(), '0');
    assert.match(await page.getByTestId('duration').innerText(), /\d(\.\d)?s/);
    assert.equal(await page.locator('#terminal').getAttribute('data-received'), String((await apiRun(id)).outputBytes));
    await shot(page, 'run-finished-desktop');
    await page.close();
  });

  test('an interactive run takes typed input; its idle socket survives the server keepalive', async () => {
    const page = await desktop.newPage();
    const id = await startFromForm(page, ['node', 'scripts/echo-stdin.js'], { interactive: true, reason: 'web e2e: stdin' });
    await eventually('the run to be running', async () => (await runStatus(page)) === 'running', 90_000);
    await page.locator('#terminal').click();
    await page.keyboard.type('hello there');
    await page.keyboard.press('Enter');
    await waitForTerminal(page, /echo: hello there/, 30_000);
    await shot(page, 'run-interactive-desktop', false);
    // Idle for two of the server's 25 s ping rounds: a socket that did not answer pings would be cut.
    await page.waitForTimeout(55_000);
    assert.equal(await page.locator('#terminal').getAttribute('data-connections'), '1', 'the stream was not re-opened');
    await page.keyboard.type('still here');
    await page.keyboard.press('Enter');
    await waitForTerminal(page, /echo: still here/, 30_000);
    await page.keyboard.type('exit');
    await page.keyboard.press('Enter');
    await eventually('the run to end', async () => (await runStatus(page)) === 'failed', 60_000);
    assert.equal((await page.getByTestId('exit-code').innerText()).trim(), '3');
    assert.equal(await page.locator('#terminal').getAttribute('data-connections'), '1');
    ids.interactive = id;
    await page.close();
  });

  test('a TTY run echoes keystrokes through the pty and gets the browser terminal size', async () => {
    const page = await desktop.newPage();
    await startFromForm(
      page,
      [
        'node',
        '-e',
        'process.stdin.on("data", d => { if (String(d).includes("q")) { process.stdout.write(`size ${process.stdout.columns}x${process.stdout.rows}\\n`); process.exit(0) } })',
      ],
      { interactive: true, tty: true },
    );
    await eventually('the run to be running', async () => (await runStatus(page)) === 'running', 90_000);
    await page.locator('#terminal').click();
    await page.keyboard.type('abc');
    await waitForTerminal(page, /abc/, 30_000);
    await page.keyboard.type('q');
    await page.keyboard.press('Enter');
    await eventually('the run to end', async () => (await runStatus(page)) === 'succeeded', 60_000);
    const text = await terminalText(page);
    // The size the pty has while someone types, not as the command starts: the pod's
    // command starts before anyone can attach, so a size read at its first instruction
    // races the attach (0x0 if it wins, as with kubectl run -it).
    const m = /size (\d+)x(\d+)/.exec(text);
    assert.ok(m, `no size line in the terminal:\n${text}`);
    assert.ok(Number(m[1]) > 40 && Number(m[2]) > 10, text);
    await page.close();
  });

  test('cancel: the run ends as cancelled', async () => {
    const page = await desktop.newPage();
    const id = await startFromForm(page, ['node', 'scripts/sleep.js', '300'], { reason: 'web e2e: cancel me' });
    ids.cancelled = id;
    await waitForTerminal(page, /tick 2/);
    await page.getByRole('button', { name: 'Cancel run' }).click();
    await page.getByRole('button', { name: 'Confirm cancel' }).click();
    await eventually('the run to be cancelled', async () => (await runStatus(page)) === 'cancelled', 60_000);
    assert.equal((await apiRun(id)).status, 'cancelled');
    await shot(page, 'run-cancelled-desktop');
    const p = await phone.newPage();
    await visit(p, `/runs/${id}`);
    await waitForTerminal(p, /tick 2/);
    await shot(p, 'run-cancelled-phone');
    await p.close();
    await page.close();
  });

  test('the audit view finds the cancelled run (filters in the form), the runs view lists it', async () => {
    const page = await desktop.newPage();
    await visit(page, '/audit');
    await page.getByLabel('Run id').fill(ids.cancelled!);
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/runId=/);
    await page.locator('#audit-table').waitFor();
    const types = await page.locator('#audit-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
    for (const t of ['run.requested', 'run.created', 'run.cancelled']) assert.ok(types.includes(t), `${t} in ${types}`);
    assert.match(await page.locator('#audit-table').innerText(), /cancel me/);
    await shot(page, 'audit-run-desktop');
    // Event filter + export: the CSV is built from the NDJSON export of the same filters.
    await visit(page, `/audit?type=run.finished`);
    await page.locator('#audit-table').waitFor();
    const finished = await page.locator('#audit-table tbody tr').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-type')));
    assert.ok(finished.length >= 2 && finished.every((t) => t === 'run.finished'), String(finished));
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()]);
    const csvPath = await download.path();
    const csv = (await import('node:fs')).readFileSync(csvPath!, 'utf8');
    assert.match(csv, /^seq,time,type,actor/);
    assert.equal(csv.trim().split('\r\n').length, finished.length + 1);
    await visit(page, '/audit');
    await page.locator('#audit-table').waitFor();
    await shot(page, 'audit-desktop');
    const p = await phone.newPage();
    await visit(p, '/audit');
    await p.locator('#audit-table').waitFor();
    await shot(p, 'audit-phone');

    await visit(page, '/runs?status=cancelled');
    await page.locator(`#runs-table tr[data-run-id="${ids.cancelled}"]`).waitFor();
    assert.equal(await page.locator('#runs-table tbody tr').count(), 1);
    await visit(page, '/runs');
    await page.locator('#runs-table').waitFor();
    await shot(page, 'runs-desktop');
    await visit(p, '/runs');
    await p.locator('#runs-table').waitFor();
    await shot(p, 'runs-phone');
    await p.close();
    await page.close();
  });

  test('the run URL replays the full output after the pod and the Job are deleted', async () => {
    const id = ids.live!;
    const run = await apiRun(id);
    await cluster.batch.deleteNamespacedJob({ name: run.jobName, namespace: ns.name, propagationPolicy: 'Foreground' });
    await eventually('the run pod to be gone', async () => {
      const pods = await cluster.core.listNamespacedPod({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` });
      return pods.items.length === 0;
    });
    await eventually('the Job to be gone', async () => {
      const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` });
      return jobs.items.length === 0;
    });
    const page = await desktop.newPage();
    await visit(page, `/runs/${id}`);
    await waitForTerminal(page, /^done\s*$/m, 30_000);
    const text = await terminalText(page);
    for (let i = 1; i <= 20; i++) assert.equal(rowsEqual(text, `backfilled batch ${i}/20`), 1, `batch ${i} exactly once:\n${text}`);
    assert.equal(await runStatus(page), 'succeeded');
    assert.equal(await page.locator('#terminal').getAttribute('data-received'), String(run.outputBytes));
    await shot(page, 'run-replay-after-delete-desktop');
    const p = await phone.newPage();
    await visit(p, `/runs/${id}`);
    await waitForTerminal(p, /done/, 30_000);
    await shot(p, 'run-replay-phone');
    await p.close();
    await page.close();
  });

  test('a dropped stream (server killed mid-run) reconnects and resumes with no loss or duplicate', async () => {
    const page = await desktop.newPage();
    const errorsBefore = consoleErrors.length;
    const id = await startFromForm(page, ['node', 'scripts/backfill.js', '40']);
    await waitForTerminal(page, /backfilled batch 4\/40/);
    await server.restart();
    await eventually('the run to succeed after the restart', async () => (await runStatus(page)) === 'succeeded', 90_000);
    const connections = Number(await page.locator('#terminal').getAttribute('data-connections'));
    assert.ok(connections >= 2, `the page reconnected (${connections} connections)`);
    const run = await apiRun(id);
    await eventually(
      'the page counters to settle',
      async () => (await page.locator('#terminal').getAttribute('data-received')) === String(run.outputBytes),
      5_000,
    );
    const text = await terminalText(page);
    // The terminal shows its last rows; every one of those is there exactly once.
    for (let i = 25; i <= 40; i++) assert.equal(rowsEqual(text, `backfilled batch ${i}/40`), 1, `batch ${i} exactly once:\n${text}`);
    assert.match(text, /^done\s*$/m);
    // While the server was down the browser logged its failed connection attempts: expected here, nowhere else.
    const during = consoleErrors.splice(errorsBefore);
    consoleErrors.push(...during.filter((e) => !/WebSocket connection to .* failed|ERR_CONNECTION_REFUSED|status of 50[23]/.test(e)));
    await page.close();
  });

  test('validation errors: the server’s words for a too-long time limit, the form’s for a bad duration', async () => {
    const page = await desktop.newPage();
    await visit(page, `/run?namespace=${ns.name}&deployment=api`);
    await fillArgv(page, ['node', '-e', '1']);
    await page.getByLabel('Time limit').fill('2h');
    await page.getByRole('button', { name: 'Start run' }).click();
    const alert = page.locator('#form-error [role=alert]');
    await alert.waitFor();
    assert.match(await alert.innerText(), /The run was not started[\s\S]*7200s is above the limit of 3600s/);
    assert.equal(await page.evaluate('document.activeElement?.id'), 'form-error', 'the error takes focus');
    assert.match(page.url(), /\/run\?/);
    await shot(page, 'run-form-error-desktop');
    await page.getByLabel('Time limit').fill('ten minutes');
    await page.getByRole('button', { name: 'Start run' }).click();
    assert.match(await page.locator('#timeout-error').innerText(), /not a duration/);
    await page.locator('#argv input').first().fill('');
    await page.getByLabel('Time limit').fill('');
    await page.getByRole('button', { name: 'Preview Job' }).click();
    assert.match(await page.locator('#command-error').innerText(), /Enter the program/);
    const p = await phone.newPage();
    await visit(p, `/run?namespace=${ns.name}&deployment=worker`);
    await p.locator('#argv input').first().waitFor();
    assert.equal(await p.locator('#container option').count(), 2);
    await shot(p, 'run-form-phone');
    await p.close();
    await page.close();
  });

  test('unknown pages and runs say so; the sign-in page offers GitHub', async () => {
    const page = await desktop.newPage();
    await visit(page, '/no/such/page');
    await page.getByRole('heading', { name: 'Page not found' }).waitFor();
    await visit(page, '/runs/zzzzzzzzzzzz');
    await page.getByRole('heading', { name: 'Run not found' }).waitFor();
    // What a signed-out visitor sees (a dev-auth server never says 401, so the answer is simulated here).
    await page.route('**/api/whoami', (route) =>
      route.fulfill({ status: 401, contentType: 'application/json', body: '{"error":{"code":"unauthenticated","message":"sign in"}}' }),
    );
    await visit(page, '/runs');
    const signIn = page.getByRole('link', { name: 'Sign in with GitHub' });
    await signIn.waitFor();
    assert.equal(await signIn.getAttribute('href'), '/auth/github');
    await shot(page, 'signin-desktop');
    await page.close();
  });

  test('no Content-Security-Policy violations and no console errors on any page', async () => {
    for (const ctx of [desktop, phone]) for (const p of ctx.pages()) await collectCsp(p);
    assert.deepEqual(cspViolations, []);
    // Expected answers logged by Chromium: the refused 2h time limit (400), the simulated
    // signed-out visitor (401) and the unknown run (404). Nothing else may show up.
    // Also net::ERR_NETWORK_CHANGED: the local cluster's CNI adds and removes a veth
    // interface for every pod, and Chromium aborts loads in flight on any interface
    // change — even to 127.0.0.1. That is the machine, not the UI; every step above
    // still had to succeed on its own.
    const unexpected = consoleErrors.filter((e) => !/status of 40[014] /.test(e) && !/net::ERR_NETWORK_CHANGED$/.test(e));
    assert.deepEqual(unexpected, [], `HTTP errors seen:\n${httpErrors.join('\n')}`);
  });
});
