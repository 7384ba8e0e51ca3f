// Schedules in the web UI, in real headless Chromium against the real server (fake
// GitHub sign-in, several people) and the real cluster. A scheduled Task that names its
// own allowedUsers: the person it names suspends it with a reason (required; hostile text
// stays text), which the page, `oddjob schedules` and the audit log show, and resumes it;
// Run now honours the schedule's concurrencyPolicy Forbid while a slot's run still goes,
// shows the server's refusal, and "Run anyway" starts one past it. Someone the Deployment
// lets run but the Task does not never sees the schedule; an auditor sees it without controls.
// Runtime is mostly the wait for the next minute's slot (≤ 60 s).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext } from 'playwright-core';
import { REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { createTask } from '../support/task-crd.js';
import { FakeGitHub } from '../support/fake-github.js';
import { deviceToken, startGitHubServer } from '../support/github-signin.js';
import { runCli, type ServerProcess } from '../support/oddjob.js';
import { visit } from '../support/browser.js';
import { freePort } from '../support/net.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const HOSTILE = 'INC-9 <img src=x onerror=alert(1)>';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let browser: Browser;
let aliceToken: string;

async function signedIn(login: string): Promise<BrowserContext> {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, baseURL: server.url });
  const page = await context.newPage();
  await visit(page, '/');
  gh.actAs = login;
  await page.getByRole('link', { name: 'Sign in with GitHub' }).click();
  await page.getByTestId('whoami').waitFor({ timeout: 30_000 });
  await page.close();
  return context;
}

async function apiAs<T>(path: string, init: RequestInit = {}): Promise<T> {
  const res = await fetch(`${server.url}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${aliceToken}`, 'content-type': 'application/json' },
  });
  assert.ok(res.ok, `${path}: ${res.status} ${await res.clone().text()}`);
  return (await res.json()) as T;
}

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing`);
  assert.ok(existsSync(join(REPO_ROOT, 'web/dist/index.html')), 'the web UI is not built: npm run build:web (npm test does it)');
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'web-sched');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }) });
  const task = (name: string, schedule: Record<string, unknown>) =>
    createTask(cluster, ns.name, name, {
      deployment: 'api',
      // Sleeps as long as the schedule says: slots and Run now pass the schedule's params.
      command: ['node', '-e', 'setTimeout(() => {}, Number(process.argv[1]) * 1000)', '--', '$(params.seconds)'],
      params: [{ name: 'seconds', type: 'integer', min: 1, max: 600, default: 1 }],
      allowedUsers: ['alice'],
      schedule: { timeZone: 'Europe/Berlin', concurrencyPolicy: 'Forbid', params: { seconds: 120 }, ...schedule },
    });
  // nightly never fires while this runs; minutely's first slot is a slow run that is still going when Run now is asked.
  await task('nightly', { cron: '0 3 1 1 *' });
  await task('minutely', { cron: '* * * * *' });
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('bob', ['acme/payments']);
  gh.addUser('erin', ['acme/security']);
  server = await startGitHubServer({
    port: await freePort(),
    gh,
    dir: mkdtempSync(join(tmpdir(), 'oddjob-web-schedules-')),
    namespaces: [ns.name],
    kubeconfig: cluster.kubeconfigPath,
    extra: ['--auditors', 'acme/security', '--auth-rate-limit', '1000', '--start-timeout', '60s'],
  });
  aliceToken = await deviceToken(server.url, gh, 'alice');
  await eventually(
    'the schedule to be listed',
    async () => (await apiAs<{ items: Array<{ task: string }> }>('/api/schedules')).items.some((s) => s.task === 'nightly'),
    30_000,
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
});

after(async () => {
  await browser?.close();
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

describe('web UI: schedules', () => {
  test('suspend asks why, and the page, oddjob schedules and the audit log say by whom and why; resume', async () => {
    const context = await signedIn('alice');
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('dialog', (d) => {
      errors.push(`a dialog opened: ${d.message()}`);
      void d.dismiss();
    });
    await visit(page, '/schedules');
    const row = page.locator(`tbody[data-task="${ns.name}/nightly"]`);
    await row.getByRole('button', { name: 'Suspend', exact: true }).click();
    // No reason: nothing is sent, and the page says what is missing.
    await row.getByRole('button', { name: 'Suspend schedule' }).click();
    assert.match(await row.getByRole('alert').innerText(), /Say why you suspend it/);
    await row.getByLabel('Reason').fill(HOSTILE);
    await row.getByRole('button', { name: 'Suspend schedule' }).click();
    await row.getByRole('button', { name: 'Resume' }).waitFor();
    const shown = await row.locator('td.suspended').innerText();
    assert.ok(shown.startsWith('yes — by alice at ') && shown.endsWith(`: ${HOSTILE}`), shown);
    assert.equal(await page.locator('#schedules-table img').count(), 0, 'the reason stays text');

    // The server's state, not the page's: a reload, the CLI and the audit log agree.
    await visit(page, '/schedules');
    assert.match(await row.locator('td.suspended').innerText(), /by alice at .*: INC-9 <img/);
    const cli = await runCli(['schedules', '-n', ns.name], { server: server.url, env: { ODDJOB_TOKEN: aliceToken } });
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout.toString(), /nightly\s.*yes \(alice: INC-9 <img src=x onerror=/);
    const suspended = await apiAs<{ items: Array<{ actor: { login: string }; reason?: string; task?: string; client: { kind: string } }> }>(
      `/api/audit?type=schedule.suspended&namespace=${ns.name}`,
    );
    assert.deepEqual(
      suspended.items.map((e) => [e.actor.login, e.task, e.reason, e.client.kind]),
      [['alice', 'nightly', HOSTILE, 'web']],
    );

    await row.getByRole('button', { name: 'Resume' }).click();
    await row.getByRole('button', { name: 'Suspend', exact: true }).waitFor();
    assert.equal(await row.locator('td.suspended').innerText(), 'no');
    const resumed = await apiAs<{ items: Array<{ message?: string }> }>(`/api/audit?type=schedule.resumed&namespace=${ns.name}`);
    assert.match(resumed.items[0]!.message!, /suspended by alice since .*: INC-9 <img/);
    assert.deepEqual(errors, []);
    await context.close();
  });

  test("Run now honours Forbid while a slot's run still goes: the server's refusal is shown, and Run anyway starts one", async () => {
    const slot = await eventually(
      "minutely's first slot to start its (slow) run",
      async () =>
        (await apiAs<{ items: Array<{ state: string; runId?: string }> }>(`/api/schedules/${ns.name}/minutely/history`)).items.find(
          (x) => x.state === 'started' && x.runId,
        ),
      80_000,
    );
    const context = await signedIn('alice');
    const page = await context.newPage();
    await visit(page, '/schedules');
    const row = page.locator(`tbody[data-task="${ns.name}/minutely"]`);
    await row.getByRole('button', { name: 'Run now' }).click();
    const refusal = row.getByRole('alert');
    await refusal.waitFor();
    assert.match(
      await refusal.innerText(),
      new RegExp(`task ${ns.name}/minutely has run ${slot.runId} still going and its schedule's concurrencyPolicy is Forbid, so nothing was started`),
    );
    await refusal.getByRole('button', { name: 'Run anyway' }).click();
    await page.waitForURL(/\/runs\/[a-z0-9]{12}$/, { timeout: 30_000 });
    const forced = page.url().split('/').at(-1)!;
    assert.notEqual(forced, slot.runId);
    const requested = await apiAs<{ items: Array<{ runId?: string; command?: string[]; message?: string }> }>(
      `/api/audit?type=run.requested&namespace=${ns.name}&runId=${forced}`,
    );
    assert.equal(requested.items[0]?.command?.at(-1), '120', "Run now passes the schedule's params");
    assert.match(requested.items[0]?.message ?? '', new RegExp(`past its schedule's concurrencyPolicy Forbid \\(run ${slot.runId} still going\\)`));

    // The slot's history links its run's page.
    await visit(page, `/schedules/${ns.name}/minutely`);
    await page.locator('#slots-table').getByRole('link', { name: slot.runId }).click();
    await page.waitForURL(new RegExp(`/runs/${slot.runId}$`));
    await apiAs(`/api/schedules/${ns.name}/minutely/suspend`, { method: 'POST', body: JSON.stringify({ reason: 'test over' }) });
    for (const id of [slot.runId!, forced]) await apiAs(`/api/runs/${id}/cancel`, { method: 'POST', body: '{}' });
    await context.close();
  });

  test('who may run in the Deployment but not the Task does not see it; an auditor sees it without controls', async () => {
    const bob = await signedIn('bob');
    const b = await bob.newPage();
    await visit(b, '/schedules');
    await b.getByText('No scheduled Tasks you may see.').waitFor();
    await bob.close();

    const erin = await signedIn('erin');
    const e = await erin.newPage();
    await visit(e, '/schedules');
    await e.locator(`tbody[data-task="${ns.name}/nightly"]`).waitFor();
    assert.equal(await e.getByRole('button', { name: /Suspend|Resume|Run now/ }).count(), 0);
    await erin.close();
  });
});
