// What an operator sees after a few real runs: /metrics counts them (started,
// finished by status including a lost run, denials by reason, durations, start delays,
// active runs, stream viewers, audit appends, store size), and the server's log is JSON
// with word levels, ISO times, request ids on the access log and the run id on every
// lifecycle line. The failure counters are proven where their failures are made:
// audit append failures in faults.test.ts (a full disk), GitHub API errors in
// auth.test.ts (an outage, a rate limit), watch restarts in test/unit/k8s-watch.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'metrics');
  const create = (name: string, annotations: Record<string, string>) =>
    cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment(name, annotations) });
  await create('api', { 'oddjob.io/allowed-users': 'alice' });
  await create('closed', {});
  await create('bobs', { 'oddjob.io/allowed-users': 'bob' });
  const db = join(mkdtempSync(join(tmpdir(), 'oddjob-metrics-')), 'audit.db');
  server = await startServerProcess([
    '--auth',
    'dev',
    '--dev-user',
    'alice',
    '--dev-teams',
    'acme/payments',
    '--namespaces',
    ns.name,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    db,
    '--log-level',
    'info',
  ]);
});

after(async () => {
  await server?.kill();
  await ns?.dispose();
});

/** One sample of the Prometheus text format; labels must match exactly. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  const want = Object.entries(labels)
    .map(([k, v]) => `${k}="${v}"`)
    .sort()
    .join(',');
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    const have = (m[2] ?? '')
      .split(/,(?=[a-zA-Z_]\w*=")/)
      .filter(Boolean)
      .sort()
      .join(',');
    if (have === want) return Number(m[3]);
  }
  return undefined;
}

const scrape = async () => (await fetch(`${server.url}/metrics`)).text();
const run = (args: string[]) => runCli(['run', '-n', ns.name, ...args], { server: server.url });
const runIdOf = (stderr: string) => /run ([a-z0-9]{12})/.exec(stderr)?.[1];

describe('what an operator sees', () => {
  const ids: Record<string, string> = {};

  test('a few runs: /metrics counts them, with the right values', async () => {
    const before = await scrape();
    assert.equal(sample(before, 'oddjob_runs_started_total'), 0);
    const version = (JSON.parse(readFileSync(`${REPO_ROOT}package.json`, 'utf8')) as { version: string }).version;
    assert.equal(sample(before, 'oddjob_build_info', { version, node: process.version }), 1, 'build info with the package version');

    const ok = await run(['deploy/api', '--', 'node', 'scripts/hello.js']);
    assert.equal(ok.code, 0, ok.stderr);
    ids.ok = runIdOf(ok.stderr)!;
    const failed = await run(['deploy/api', '--', 'node', 'scripts/exit.js', '7']);
    assert.equal(failed.code, 7, failed.stderr);
    ids.failed = runIdOf(failed.stderr)!;

    // While a run goes on: it is active and its follower is an open stream.
    const slow = run(['deploy/api', '--', 'node', '-e', 'setTimeout(() => {}, 6000)']);
    await eventually('the slow run active with its viewer', async () => {
      const text = await scrape();
      return sample(text, 'oddjob_runs_active') === 1 && sample(text, 'oddjob_stream_viewers') === 1;
    });
    const slowResult = await slow;
    assert.equal(slowResult.code, 0, slowResult.stderr);
    ids.slow = runIdOf(slowResult.stderr)!;

    const denied = await run(['deploy/closed', '--', 'true']);
    assert.equal(denied.code, 125, denied.stderr);
    const notAllowed = await run(['deploy/bobs', '--', 'true']);
    assert.equal(notAllowed.code, 125, notAllowed.stderr);

    // Lost: its Job deleted under it. Orphaning the pod leaves it running, so only the
    // Job's disappearance can end the run (no race with the container's exit).
    const doomed = run(['deploy/api', '--', 'node', '-e', 'setTimeout(() => {}, 120000)']);
    const doomedJob = await eventually('the doomed run running', async () => {
      // Its start delay observed: the server has seen its container running.
      if (sample(await scrape(), 'oddjob_run_start_delay_seconds_count') !== 4) return undefined;
      // Its own Job, by the command oddjob wrote on it: "the one still active" also matched
      // the 6 s run's Job while the Job controller had not yet counted its pod done (a
      // loaded CI machine), and the test deleted that one, leaving this run to sleep on.
      const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: 'app.kubernetes.io/managed-by=oddjob' });
      return jobs.items.find((j) => j.metadata?.annotations?.['oddjob.io/command']?.includes('120000'))?.metadata?.name;
    });
    await cluster.batch.deleteNamespacedJob({ name: doomedJob, namespace: ns.name, propagationPolicy: 'Orphan' });
    const lost = await doomed;
    assert.notEqual(lost.code, 0, lost.stderr);
    assert.match(lost.stderr, /deleted/, lost.stderr);

    const text = await eventually('streams closed', async () => {
      const t = await scrape();
      return sample(t, 'oddjob_stream_viewers') === 0 ? t : undefined;
    });
    assert.equal(sample(text, 'oddjob_runs_started_total'), 4);
    assert.equal(sample(text, 'oddjob_runs_finished_total', { status: 'succeeded' }), 2);
    assert.equal(sample(text, 'oddjob_runs_finished_total', { status: 'failed' }), 1);
    assert.equal(sample(text, 'oddjob_runs_finished_total', { status: 'lost' }), 1);
    assert.equal(sample(text, 'oddjob_runs_active'), 0);
    assert.equal(sample(text, 'oddjob_run_denials_total', { reason: 'not_opted_in' }), 1);
    assert.equal(sample(text, 'oddjob_run_denials_total', { reason: 'not_allowed' }), 1);
    assert.equal(sample(text, 'oddjob_run_start_delay_seconds_count'), 4);
    assert.ok(sample(text, 'oddjob_run_start_delay_seconds_sum')! > 0);
    assert.equal(sample(text, 'oddjob_run_duration_seconds_count', { status: 'succeeded' }), 2);
    assert.equal(sample(text, 'oddjob_run_duration_seconds_count', { status: 'failed' }), 1);
    assert.equal(sample(text, 'oddjob_run_duration_seconds_count', { status: 'lost' }), 1);
    // The 6 s run lands above the 5 s bucket; the quick one (hello.js) below it.
    assert.equal(sample(text, 'oddjob_run_duration_seconds_bucket', { status: 'succeeded', le: '5' }), 1);
    assert.equal(sample(text, 'oddjob_run_duration_seconds_bucket', { status: 'succeeded', le: '15' }), 2);
    // requested + created + started + finished per run, and the denial: group commits share one append.
    assert.ok(sample(text, 'oddjob_audit_append_duration_seconds_count')! >= 4, 'audit appends counted');
    assert.equal(sample(text, 'oddjob_audit_append_failures_total'), 0);
    assert.ok(sample(text, 'oddjob_db_size_bytes')! > 4096, 'the store has a size on disk');
    assert.equal(sample(text, 'oddjob_watch_restarts_total'), undefined, 'no watch restarted (none labelled yet)');
    assert.match(text, /^oddjob_http_request_duration_seconds_count\{.*route="\/runs".*\} \d+$/m);
  });

  test('the log is JSON with word levels, ISO times, request ids and run ids', async () => {
    const mine = await fetch(`${server.url}/api/whoami`, { headers: { 'X-Request-Id': 'trace-4711' } });
    assert.equal(mine.headers.get('x-request-id'), 'trace-4711', 'a proxy-given request id is kept');
    const made = await fetch(`${server.url}/api/whoami`, { headers: { 'X-Request-Id': 'not <a> valid id' } });
    const madeId = made.headers.get('x-request-id');
    assert.match(madeId ?? '', /^[0-9a-f-]{36}$/, 'an unusable request id is replaced by a fresh one');

    type Line = {
      level: unknown;
      time: unknown;
      msg?: string;
      run?: string;
      status?: string;
      exitCode?: number;
      durationMs?: number;
      req?: { id?: string; url?: string };
      res?: { statusCode?: number };
    };
    const lines: Line[] = await eventually('the access log lines', async () => {
      const parsed = server
        .logs()
        .split('\n')
        // The two plain lines `oddjob server` writes itself (listening, shutting down) are for people.
        .filter((l) => l.trim() && !l.startsWith('oddjob server'))
        .map((l) => {
          try {
            return JSON.parse(l) as Line;
          } catch {
            throw new Error(`a log line is not JSON: ${l}`);
          }
        });
      return parsed.some((l) => l.req?.id === madeId) ? parsed : undefined;
    });
    for (const l of lines) {
      assert.ok(['trace', 'debug', 'info', 'warn', 'error', 'fatal'].includes(l.level as string), `level as a word: ${JSON.stringify(l)}`);
      assert.match(String(l.time), /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/, 'ISO time');
    }
    const access = lines.find((l) => l.req?.id === 'trace-4711');
    assert.ok(access, 'the access log has the request id');
    assert.equal(access.req?.url, '/api/whoami');
    assert.equal(access.res?.statusCode, 200);

    for (const [what, id] of Object.entries(ids)) {
      const about = lines.filter((l) => l.run === id).map((l) => l.msg);
      assert.deepEqual(
        about.filter((m) => /^run (created|started|finished)$/.test(m ?? '')),
        ['run created', 'run started', 'run finished'],
        `${what} run ${id}: ${about.join(', ')}`,
      );
    }
    const failed = lines.find((l) => l.run === ids.failed && l.msg === 'run finished')!;
    assert.equal(failed.status, 'failed');
    assert.equal(failed.exitCode, 7);
    assert.ok(typeof failed.durationMs === 'number');
    assert.ok(
      lines.some((l) => l.msg === 'run denied'),
      'the denial is logged',
    );
  });
});
