// The web log view, end to end in real Chromium against the real server and cluster:
// stderr marked in the terminal, search within the output (scrollback included),
// download of the stored output (and GET /api/runs/ID/log for curl), the pod's
// Events while a run waits to start, a runs list that updates by itself, and dark
// mode following the system. Screenshots in both colour schemes go to
// test-artifacts/screenshots/.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { visit } from '../support/browser.js';

const CHROMIUM = process.env.ODDJOB_TEST_CHROMIUM ?? '/usr/bin/chromium';
const SHOTS = join(REPO_ROOT, 'test-artifacts', 'screenshots');

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let browser: Browser;
let light: BrowserContext;
let dark: BrowserContext;
const pageErrors: string[] = [];

// 300 numbered lines, then one line on stderr, then two that mention a needle.
const SCRIPT = 'for (let i = 0; i < 300; i++) console.log("line " + i); console.error("oops-on-stderr"); console.log("Needle-a"); console.log("x needle-b");';

before(async () => {
  assert.ok(existsSync(CHROMIUM), `Chromium is needed for the browser tests: ${CHROMIUM} is missing (apt-get install chromium)`);
  assert.ok(existsSync(join(REPO_ROOT, 'web/dist/index.html')), 'the web UI is not built: npm run build:web (npm test does it)');
  mkdirSync(SHOTS, { recursive: true });
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'web-log');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  const nowhere = optedInDeployment('nowhere', { 'oddjob.io/allowed-users': 'alice' });
  nowhere.spec!.template.spec!.nodeSelector = { 'oddjob.io/test-no-such-node': 'true' };
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: nowhere });
  server = await startServerProcess([
    ...['--auth', 'dev', '--dev-user', 'alice', '--namespaces', ns.name, '--kubeconfig', cluster.kubeconfigPath],
    ...['--db', join(mkdtempSync(join(tmpdir(), 'oddjob-web-log-')), 'audit.db'), '--start-timeout', '2m'],
  ]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox', '--disable-dev-shm-usage', '--disable-gpu'] });
  const context = async (colorScheme: 'light' | 'dark') => {
    const c = await browser.newContext({ viewport: { width: 1280, height: 800 }, baseURL: server.url, colorScheme, acceptDownloads: true });
    c.on('page', (p) => {
      p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`));
      p.on('console', (m) => {
        if (m.type() === 'error') pageErrors.push(`${p.url()}: ${m.text()}`);
      });
    });
    return c;
  };
  light = await context('light');
  dark = await context('dark');
});

after(async () => {
  await browser?.close();
  await server?.kill();
  await ns?.dispose();
});

const cli = (args: string[]) => runCli(args, { server: server.url });
const terminalText = async (page: Page) => (await page.locator('#terminal .xterm-rows').innerText()).replace(/\u00a0/g, ' ');

async function finishedRun(): Promise<string> {
  const r = await cli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', '-e', SCRIPT]);
  assert.equal(r.code, 0, r.stderr);
  const id = r.stdout.toString().trim();
  let last: unknown;
  await eventually('the run to finish', async () => {
    const run = (await (await fetch(`${server.url}/api/runs/${id}`)).json()) as { status: string };
    last = run;
    return run.status === 'succeeded';
  }).catch((err: Error) => {
    throw new Error(`${err.message}; the run: ${JSON.stringify(last)}; cli stderr: ${r.stderr}`);
  });
  return id;
}

describe('the web log view', () => {
  let id: string;

  test('GET /api/runs/ID/log: the stored output as a file, whole or one stream', async () => {
    id = await finishedRun();
    const all = await fetch(`${server.url}/api/runs/${id}/log`);
    assert.equal(all.status, 200);
    assert.equal(all.headers.get('content-disposition'), `attachment; filename="oddjob-${id}.log"`);
    assert.equal(all.headers.get('content-type'), 'text/plain; charset=utf-8');
    const text = await all.text();
    assert.equal(text.split('\n').length, 304);
    // stdout and stderr are captured apart: their relative order is not promised, each one's is.
    const stdout = [...Array.from({ length: 300 }, (_, i) => `line ${i}`), 'Needle-a', 'x needle-b', ''].join('\n');
    assert.equal(await (await fetch(`${server.url}/api/runs/${id}/log?stream=stdout`)).text(), stdout);
    assert.equal(await (await fetch(`${server.url}/api/runs/${id}/log?stream=stderr`)).text(), 'oops-on-stderr\n');
    assert.equal(text.replace('oops-on-stderr\n', ''), stdout);
  });

  test('the run page marks stderr, finds text in the whole output, and downloads it', async () => {
    const page = await light.newPage();
    await visit(page, `/runs/${id}`);
    await eventually('the output', async () => /x needle-b/.test(await terminalText(page)), 30_000);
    // stderr is drawn in the terminal's red (palette colour 1); stdout is not. stdout and
    // stderr are captured apart, so the stderr line may sit anywhere in the 303 lines:
    // search brings it into view (the viewport shows ~40 rows), then only it is red.
    await page.locator('#log-search').fill('oops-on-stderr');
    await eventually('the stderr line in view', async () => /oops-on-stderr/.test(await terminalText(page)));
    // (the search highlight draws the match one cell per span: join them)
    const red = await page.locator('#terminal .xterm-rows span.xterm-fg-1').allInnerTexts();
    assert.equal(red.join('').trim(), 'oops-on-stderr');
    await page.locator('#log-search').fill('');
    assert.match(await page.locator('.log-downloads').innerText(), /stderr/);

    await page.locator('#log-search').fill('needle');
    await eventually('1 of 2', async () => (await page.locator('#search-count').innerText()) === '1 of 2');
    await page.locator('#log-search').press('Enter');
    assert.equal(await page.locator('#search-count').innerText(), '2 of 2');
    await page.locator('#search-prev').click();
    assert.equal(await page.locator('#search-count').innerText(), '1 of 2');
    // Far up in the scrollback: the terminal scrolls to it.
    assert.doesNotMatch(await terminalText(page), /^line 3$/m);
    await page.locator('#log-search').fill('line 3');
    await eventually('the match in view', async () => /^line 3$/m.test(await terminalText(page)));
    // "line 3", "line 30".."line 39", "line 300"? no: 0..299 → 3, 30-39, 300+ none.
    assert.equal(await page.locator('#search-count').innerText(), '1 of 11');
    await page.locator('#log-search').fill('no such text');
    assert.equal(await page.locator('#search-count').innerText(), 'no match');

    const [download] = await Promise.all([page.waitForEvent('download'), page.locator('#download-log').click()]);
    assert.equal(download.suggestedFilename(), `oddjob-${id}.log`);
    const saved = readFileSync((await download.path())!, 'utf8');
    assert.equal(saved, await (await fetch(`${server.url}/api/runs/${id}/log`)).text());
    const [errOnly] = await Promise.all([page.waitForEvent('download'), page.locator('#download-stderr').click()]);
    assert.equal(readFileSync((await errOnly.path())!, 'utf8'), 'oops-on-stderr\n');
    await page.locator('#log-search').fill('needle');
    await page.screenshot({ path: join(SHOTS, 'run-log-light.png'), fullPage: true });
    await page.close();
  });

  test('dark mode follows the system', async () => {
    const bg = async (context: BrowserContext) => {
      const page = await context.newPage();
      await visit(page, `/runs/${id}`);
      await eventually('the output', async () => /x needle-b/.test(await terminalText(page)), 30_000);
      const colour = await page.evaluate('getComputedStyle(document.documentElement).backgroundColor');
      const button = await page.evaluate('getComputedStyle(document.querySelector("#download-log")).backgroundColor');
      return { page, colour, button };
    };
    const l = await bg(light);
    const d = await bg(dark);
    assert.equal(l.colour, 'rgb(246, 248, 250)');
    assert.equal(d.colour, 'rgb(13, 17, 23)');
    assert.equal(d.button, 'rgb(33, 38, 45)');
    await d.page.locator('#log-search').fill('needle');
    await d.page.screenshot({ path: join(SHOTS, 'run-log-dark.png'), fullPage: true });
    await l.page.close();
    await d.page.close();
  });

  test('a run that waits to start shows the pod’s events on its page', async () => {
    const r = await cli(['run', '-n', ns.name, '--detach', 'deploy/nowhere', '--', 'true']);
    assert.equal(r.code, 0, r.stderr);
    const waiting = r.stdout.toString().trim();
    const page = await dark.newPage();
    try {
      await visit(page, `/runs/${waiting}`);
      const line = page.locator('#pod-events li[data-reason="FailedScheduling"]');
      await line.first().waitFor({ timeout: 30_000 });
      assert.match(await line.first().innerText(), /^FailedScheduling: 0\/1 nodes are available/);
      assert.equal(await line.first().getAttribute('class'), 'warning');
      await page.screenshot({ path: join(SHOTS, 'run-pod-events-dark.png'), fullPage: true });
    } finally {
      await page.close();
      await cli(['cancel', waiting]);
    }
  });

  test('the runs list updates by itself: a new run appears and reaches its end without a reload', async () => {
    const page = await light.newPage();
    await visit(page, '/runs');
    await page.locator('#runs-table').waitFor();
    const r = await cli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', '-e', 'setTimeout(() => {}, 3000)']);
    assert.equal(r.code, 0, r.stderr);
    const fresh = r.stdout.toString().trim();
    const row = page.locator(`[data-run-id="${fresh}"]`);
    await row.waitFor({ timeout: 20_000 });
    await eventually('the new run to show succeeded', async () => (await row.locator('.badge').innerText()) === 'succeeded', 60_000);
    await page.screenshot({ path: join(SHOTS, 'runs-live-light.png'), fullPage: true });
    await page.close();
    assert.deepEqual(pageErrors, []);
  });
});
