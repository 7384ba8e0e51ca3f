// Faults injected on purpose, against the real cluster, the real server process
// and the real CLI (issue 7): the kube-apiserver crashes mid-stream, the oddjob
// server is SIGKILLed while a CLI follows a run, the audit store's disk fills
// up, 1,000 malformed or hostile requests, and 100 runs at once. Each test says
// what it proves; all of them clean up after themselves (the kube-apiserver is
// running again even if a test fails half-way).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, mkdirSync, mkdtempSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { optedInDeployment, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { freePort } from '../support/net.js';
import {
  ensureApiServerUp,
  killSpawnedClis,
  longestStall,
  mountTmpfs,
  restartApiServer,
  spawnCli,
  unmountTmpfs,
  waitForKubeletHeartbeat,
} from '../support/faults.js';
import { HOSTILE_CATEGORIES, checkRefusal, hostileRequests, sendRaw, type HostileRequest, type RawResponse } from '../support/hostile.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let server: ServerProcess;
let port: number;
let dir: string;
const extraServers: ServerProcess[] = [];
const cleanups: Array<() => unknown> = [];
const MAX_DURATION_S = 600;
const timings: Record<string, string> = {};

const ALLOW = { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/max-duration': `${MAX_DURATION_S}s` };

function serverArgs(db: string, extra: string[] = []) {
  return [
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
    // These tests send 1,000 hostile requests and 100 runs at once as one person.
    '--start-timeout',
    '240s',
    '--api-rate-limit',
    '100000',
    ...extra,
  ];
}
const startMain = () => startServerProcess(serverArgs(join(dir, 'audit.db'), ['--port', String(port)]));

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'faults');
  for (const d of [optedInDeployment('api', ALLOW), optedInDeployment('closed', {}), optedInDeployment('audited', ALLOW), optedInDeployment('burst', ALLOW)]) {
    await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: d });
  }
  dir = mkdtempSync(join(tmpdir(), 'oddjob-faults-'));
  // A fixed port, so the server can be killed and come back where the CLI looks for it.
  port = await freePort();
  server = await startMain();
});

after(async () => {
  killSpawnedClis();
  await server?.kill();
  for (const s of extraServers) await s.kill();
  // Unmount, stop the fake GitHub, and make sure the kube-apiserver is back whatever happened.
  for (const c of [...cleanups.splice(0).reverse(), ensureApiServerUp]) {
    try {
      await c();
    } catch (err) {
      console.error(`cleanup failed: ${(err as Error).message}`);
    }
  }
  await ns?.dispose();
  rmSync(dir, { recursive: true, force: true });
  console.error(
    `\nfault test timings:\n${Object.entries(timings)
      .map(([k, v]) => `  ${k}: ${v}`)
      .join('\n')}\n`,
  );
});

/** A command for the demo image that prints `line 1` … `line N`, one every `ms`, then exits with `code`. */
function countLines(n: number, ms: number, code: number): string[] {
  const script = `const [n, ms, code] = process.argv.slice(1).map(Number); let i = 0;
const t = setInterval(() => { console.log('line ' + ++i); if (i >= n) { clearInterval(t); process.exitCode = code; } }, ms);`;
  return ['node', '-e', script, String(n), String(ms), String(code)];
}
const expectedLines = (n: number) => Array.from({ length: n }, (_, i) => `line ${i + 1}`).join('\n') + '\n';
const linesIn = (s: string) => (s.match(/^line \d+$/gm) ?? []).length;

function runIdFrom(stderr: string): string {
  const m = /run ([a-z0-9]{12}) created/.exec(stderr);
  assert.ok(m, `no run id in the CLI's stderr:\n${stderr}`);
  return m[1]!;
}

interface AuditEventLite {
  seq: number;
  type: string;
  runId?: string;
  status?: string;
  exitCode?: number;
}
async function auditFor(srv: ServerProcess, query: string): Promise<AuditEventLite[]> {
  const res = await fetch(`${srv.url}/api/audit/export?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.text())
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEventLite)
    .sort((a, b) => a.seq - b.seq);
}

async function jobsOf(deploymentName: string) {
  return (await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/deployment=${deploymentName}` })).items;
}

const secondsSince = (t0: number) => `${((Date.now() - t0) / 1000).toFixed(1)} s`;

describe('fault tests', () => {
  test('kube-apiserver crashes and restarts mid-stream: output continues with no gap or duplicate, watches reconnect', { timeout: 150_000 }, async () => {
    const t0 = Date.now();
    const N = 150;
    const cli = spawnCli(['run', '-n', ns.name, 'deploy/api', '--', ...countLines(N, 100, 7)], { server: server.url, timeoutMs: 120_000 });
    await cli.waitForStdout(/^line 10$/m);
    const atCrash = linesIn(cli.stdout());
    let restart: Awaited<ReturnType<typeof restartApiServer>> | undefined;
    const crashedAt = Date.now();
    try {
      // Down for 2 s on top of the restart itself: the server's log reads and watches hit a dead endpoint.
      restart = await restartApiServer(2);
    } finally {
      // The rest of the suite (and everyone else on this cluster) needs it back, even if the restart failed.
      await ensureApiServerUp();
    }
    const atReady = linesIn(cli.stdout());
    const r = await cli.done;
    const runMs = Date.now() - t0;
    assert.equal(r.code, 7, `the run must end with the command's own exit code; stderr:\n${r.stderr}`);
    assert.equal(r.stdout.toString(), expectedLines(N), 'every line exactly once, in order');
    assert.ok(atCrash < N && atReady < N, `the command must still be running when the API server is back (lines at crash ${atCrash}, at ready ${atReady})`);
    // The fault reached the stream: the output stalled while the API server was gone (a line is printed every 100 ms)…
    const stall = longestStall(cli.arrivals);
    assert.ok(stall >= 1000, `the output never stalled (longest pause ${stall} ms): the restart did not hit the stream`);
    // …and the server: its watches and log reads failed and recovered.
    assert.match(server.logs(), /watch failed; retrying/, 'the server never saw its watches fail');
    assert.match(server.logs(), /attach dropped; re-attaching|log stream interrupted; resuming/, 'the server never saw its output stream fail');
    // The node is back in business (its kubelet talks to the new API server) before anything new is scheduled.
    const heartbeatMs = await waitForKubeletHeartbeat(cluster, crashedAt + restart!.readyMs);
    // A watch that reconnected delivers new objects: a fresh run after the restart ends with its code.
    const t1 = Date.now();
    const after = await runCli(['run', '-n', ns.name, 'deploy/api', '--', 'sh', '-c', 'echo after; exit 3'], { server: server.url, timeoutMs: 90_000 });
    assert.equal(after.code, 3, after.stderr);
    assert.equal(after.stdout.toString(), 'after\n');
    timings['kube-apiserver restart'] =
      `apiserver down ${(restart!.readyMs / 1000).toFixed(1)} s, output stalled ${(stall / 1000).toFixed(1)} s (lines at crash ${atCrash}, at ready ${atReady}); ` +
      `the ${N / 10} s run took ${(runMs / 1000).toFixed(1)} s; kubelet heartbeat ${(heartbeatMs / 1000).toFixed(1)} s after ready; ` +
      `the run after it ${secondsSince(t1)}; whole test ${secondsSince(t0)}`;
  });

  test(
    'oddjob server SIGKILLed mid-run and restarted on the same port: the CLI reconnects, `logs -f` resumes, the audit has the true exit code',
    { timeout: 150_000 },
    async () => {
      const t0 = Date.now();
      const N = 100;
      const run = spawnCli(['run', '-n', ns.name, 'deploy/api', '--', ...countLines(N, 100, 5)], { server: server.url, timeoutMs: 120_000 });
      await run.waitForStdout(/^line 5$/m);
      const id = runIdFrom(run.stderr());
      const logs = spawnCli(['logs', '-f', id], { server: server.url, timeoutMs: 120_000 });
      await logs.waitForStdout(/^line 10$/m);
      await server.kill('SIGKILL');
      const killedAt = Date.now();
      const atKill = linesIn(run.stdout());
      // A third follower starts while the server is down: it must wait for it, not give up.
      const late = spawnCli(['logs', '-f', id], { server: server.url, timeoutMs: 120_000 });
      // Down long enough for the CLIs to notice and start retrying.
      await new Promise((r) => setTimeout(r, 1500));
      server = await startMain();
      const downMs = Date.now() - killedAt;

      const [r, l, lt] = await Promise.all([run.done, logs.done, late.done]);
      assert.equal(r.code, 5, `oddjob run must exit with the command's code after reconnecting; stderr:\n${r.stderr}`);
      assert.equal(r.stdout.toString(), expectedLines(N), 'oddjob run: every line exactly once across the restart');
      assert.match(r.stderr, /stream interrupted .*reconnecting/);
      assert.match(r.stderr, /stream reconnected; resuming/);
      assert.ok(atKill < N, `the command must still be running when the server dies (lines at kill: ${atKill})`);
      const stall = longestStall(run.arrivals);
      assert.ok(stall >= 1000, `oddjob run's output never stalled (longest pause ${stall} ms)`);
      assert.equal(l.code, 0, l.stderr);
      assert.equal(l.stdout.toString(), expectedLines(N), 'oddjob logs -f: every line exactly once across the restart');
      assert.equal(lt.code, 0, lt.stderr);
      assert.equal(lt.stdout.toString(), expectedLines(N), 'oddjob logs -f started during the outage: everything exactly once');

      // After the fact, the stored output is complete too.
      const replay = await runCli(['logs', id], { server: server.url });
      assert.equal(replay.stdout.toString(), expectedLines(N));
      // One started, one finished, with the command's real exit code: the reconciled run was not recorded twice.
      const events = await auditFor(server, `runId=${id}`);
      assert.deepEqual(
        events.map((e) => e.type),
        ['run.requested', 'run.created', 'run.started', 'run.finished'],
      );
      assert.equal(events.at(-1)!.exitCode, 5);
      assert.equal(events.at(-1)!.status, 'failed');
      timings['oddjob server SIGKILL'] =
        `server down ${(downMs / 1000).toFixed(1)} s, output stalled ${(stall / 1000).toFixed(1)} s (lines at kill ${atKill}), whole test ${secondsSince(t0)}`;
    },
  );

  test(
    'audit store unwritable (its disk is full): runs are refused with a clear error, nothing is created, /readyz says so, and it recovers',
    { timeout: 120_000 },
    async () => {
      const t0 = Date.now();
      // A small filesystem of its own that the test can fill to the last byte. (As root,
      // permissions would not stop SQLite; a full disk does, for a server already running.)
      const mnt = join(dir, 'tmpfs');
      mkdirSync(mnt);
      mountTmpfs(mnt, '8m');
      cleanups.push(() => unmountTmpfs(mnt));
      const srv = await startServerProcess(serverArgs(join(mnt, 'audit.db')));
      extraServers.push(srv);
      const run = (cmd: string[]) => runCli(['run', '-n', ns.name, 'deploy/audited', '--', ...cmd], { server: srv.url, timeoutMs: 90_000 });

      // Healthy first: the server has been writing to this store.
      const ok = await run(['sh', '-c', 'echo fine']);
      assert.equal(ok.code, 0, ok.stderr);
      assert.equal((await jobsOf('audited')).length, 1);

      const appendFailures = (metrics: string) => Number(/^oddjob_audit_append_failures_total (\d+)$/m.exec(metrics)?.[1]);
      assert.equal(appendFailures(await (await fetch(`${srv.url}/metrics`)).text()), 0);

      const filler = join(mnt, 'filler');
      const fd = openSync(filler, 'w');
      try {
        for (const size of [1 << 20, 64 << 10, 4 << 10, 512, 1]) {
          const block = Buffer.alloc(size, 0x61);
          try {
            for (;;) writeSync(fd, block);
          } catch (err) {
            if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
          }
        }
      } finally {
        closeSync(fd);
      }

      const ready = await fetch(`${srv.url}/readyz`);
      const readyText = await ready.text();
      assert.equal(ready.status, 503, `readiness must fail while the audit store cannot be written: ${readyText}`);
      assert.match(readyText, /audit-store/);

      const refused = await run(['sh', '-c', 'echo must-not-run']);
      assert.equal(refused.code, 125, `refused runs exit 125; stderr:\n${refused.stderr}`);
      assert.match(refused.stderr, /audit log cannot be written/);
      assert.match(refused.stderr, /nothing was created/);
      assert.doesNotMatch(refused.stderr, /\n\s+at /, 'no stack trace');
      assert.equal(refused.stdout.length, 0);
      assert.equal((await jobsOf('audited')).length, 1, 'no Job may be created without an audit record');
      const runs = (await (await fetch(`${srv.url}/api/runs?deployment=audited`)).json()) as { items: unknown[] };
      assert.equal(runs.items.length, 1, 'no run may be recorded either');
      assert.match(srv.logs(), /audit log unwritable; refusing the run/);
      assert.equal(srv.proc.exitCode, null, 'the server survives a full disk');
      assert.ok(appendFailures(await (await fetch(`${srv.url}/metrics`)).text()) >= 1, 'the failed append is counted for the alert');

      // Space again: ready again, runs again, and the chain is intact (nothing half-written).
      rmSync(filler);
      await eventually('/readyz to recover', async () => (await fetch(`${srv.url}/readyz`)).status === 200, 10_000);
      const again = await run(['sh', '-c', 'echo back']);
      assert.equal(again.code, 0, again.stderr);
      assert.equal(again.stdout.toString(), 'back\n');
      assert.equal((await jobsOf('audited')).length, 2);
      const verify = (await (await fetch(`${srv.url}/api/audit/verify`)).json()) as { ok: boolean; checked: number };
      assert.equal(verify.ok, true, JSON.stringify(verify));
      timings['audit store full'] = `whole test ${secondsSince(t0)}`;
    },
  );

  test('1,000 malformed or hostile requests: each a clear 4xx JSON error, no 5xx, no Job created', { timeout: 180_000 }, async () => {
    const t0 = Date.now();
    // A second server with GitHub sign-in, for forged tokens and cookies (with --auth dev every caller is signed in).
    const gh = await new FakeGitHub().start();
    cleanups.push(() => gh.stop());
    writeFileSync(join(dir, 'session-secret'), 'faults-session-secret-0123456789-abcdefghijklmnop\n', { mode: 0o600 });
    const ghPort = await freePort();
    const ghServer = await startServerProcess(
      [
        '--port',
        String(ghPort),
        '--auth',
        'github',
        '--public-url',
        `http://127.0.0.1:${ghPort}`,
        '--github-url',
        gh.url,
        '--github-client-id',
        gh.clientId,
        '--github-org',
        'acme',
        '--session-secret-file',
        join(dir, 'session-secret'),
        '--api-rate-limit',
        '100000',
        '--namespaces',
        ns.name,
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--db',
        join(dir, 'github.db'),
      ],
      { ODDJOB_GITHUB_CLIENT_SECRET: gh.clientSecret },
    );
    extraServers.push(ghServer);

    // One real run, so stream and path variants fail for what is wrong with them, not for a missing run.
    const real = await runCli(['run', '--detach', '-n', ns.name, 'deploy/api', '--', 'true'], { server: server.url });
    assert.equal(real.code, 0, real.stderr);
    const runId = real.stdout.toString().trim();
    const jobsBefore = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
    const requestedBefore = (await auditFor(server, `namespace=${ns.name}&type=run.requested`)).length;

    const requests = hostileRequests(0x0dd70b, 1000, { namespace: ns.name, allowed: 'api', closed: 'closed', runId, maxDurationSeconds: MAX_DURATION_S });
    const failures: string[] = [];
    const byCategory = new Map<string, number>();
    let next = 0;
    const worker = async () => {
      while (next < requests.length) {
        const req: HostileRequest = requests[next++]!;
        const category = req.label.split('/')[0]!;
        byCategory.set(category, (byCategory.get(category) ?? 0) + 1);
        let res: RawResponse;
        try {
          res = await sendRaw(req.target === 'dev' ? server.url : ghServer.url, req.raw);
        } catch (err) {
          failures.push(`${req.label}: ${(err as Error).message}`);
          continue;
        }
        const problem = checkRefusal(req, res);
        if (problem) failures.push(`${req.label}: ${problem}`);
      }
    };
    await Promise.all(Array.from({ length: 8 }, worker));
    const sentMs = Date.now() - t0;

    assert.deepEqual([...new Set(failures)].slice(0, 40), [], `${failures.length} of ${requests.length} requests were not answered with a clear 4xx`);
    assert.equal(requests.length, 1000);
    assert.deepEqual([...byCategory.keys()].sort(), [...HOSTILE_CATEGORIES].sort(), 'every kind of request was sent');
    const jobsAfter = (await cluster.batch.listNamespacedJob({ namespace: ns.name })).items.length;
    assert.equal(jobsAfter, jobsBefore, 'no hostile request may create a Job');
    const requestedAfter = (await auditFor(server, `namespace=${ns.name}&type=run.requested`)).length;
    assert.equal(requestedAfter, requestedBefore, 'no hostile request got as far as an audited run request');
    for (const s of [server, ghServer]) {
      assert.equal(s.proc.exitCode, null, 'the server is still running');
      assert.equal((await fetch(`${s.url}/readyz`)).status, 200);
      assert.doesNotMatch(s.logs(), /unexpected error|"level":50/, 'no unexpected error in the server log');
    }
    timings['1,000 hostile requests'] =
      `${requests.length} requests in ${(sentMs / 1000).toFixed(1)} s (${[...byCategory].map(([k, v]) => `${k} ${v}`).join(', ')})`;
  });

  test('100 concurrent runs: each has exactly one Job and one complete audit trail', { timeout: 300_000 }, async () => {
    const N = 100;
    const t0 = Date.now();
    const body = JSON.stringify({ namespace: ns.name, deployment: 'burst', command: ['sh', '-c', 'exit 3'] });
    const latencies: number[] = [];
    const created = await Promise.all(
      Array.from({ length: N }, async () => {
        const s = Date.now();
        const res = await fetch(`${server.url}/api/runs`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
        latencies.push(Date.now() - s);
        const json = (await res.json()) as { id: string };
        assert.equal(res.status, 201, JSON.stringify(json));
        return json.id;
      }),
    );
    const submitMs = Date.now() - t0;
    const ids = new Set(created);
    assert.equal(ids.size, N, 'every run has its own id');

    const jobsExistMs = await eventually('all Jobs to exist', async () => ((await jobsOf('burst')).length >= N ? Date.now() - t0 : undefined), 60_000);
    const finishedMs = await eventually(
      'all runs to finish',
      async () => {
        const page = (await (await fetch(`${server.url}/api/runs?namespace=${ns.name}&deployment=burst&limit=500`)).json()) as {
          items: Array<{ id: string; status: string }>;
        };
        const done = page.items.filter((r) => ids.has(r.id) && !['pending', 'running'].includes(r.status));
        return done.length === N ? Date.now() - t0 : undefined;
      },
      240_000,
    );

    // Exactly one Job per run (the run id is a label on the Job).
    const jobs = await jobsOf('burst');
    assert.equal(jobs.length, N);
    const perRun = new Map<string, number>();
    for (const j of jobs) {
      const id = j.metadata?.labels?.['oddjob.io/run-id'] ?? '';
      perRun.set(id, (perRun.get(id) ?? 0) + 1);
    }
    for (const id of ids) assert.equal(perRun.get(id), 1, `run ${id} has ${perRun.get(id) ?? 0} Jobs`);

    // One complete trail per run, in order, with the true exit code.
    const events = await auditFor(server, `namespace=${ns.name}&deployment=burst`);
    const trails = new Map<string, AuditEventLite[]>();
    for (const e of events) trails.set(e.runId ?? '', [...(trails.get(e.runId ?? '') ?? []), e]);
    assert.equal(trails.size, N);
    for (const id of ids) {
      const trail = trails.get(id) ?? [];
      assert.deepEqual(
        trail.map((e) => e.type),
        ['run.requested', 'run.created', 'run.started', 'run.finished'],
        `audit trail of run ${id}`,
      );
      assert.equal(trail[3]!.exitCode, 3, `run ${id} exit code`);
      assert.equal(trail[3]!.status, 'failed');
    }
    const verify = (await (await fetch(`${server.url}/api/audit/verify`)).json()) as { ok: boolean; checked: number };
    assert.equal(verify.ok, true, JSON.stringify(verify));

    latencies.sort((a, b) => a - b);
    const pct = (p: number) => latencies[Math.min(N - 1, Math.ceil((p / 100) * N) - 1)];
    timings['100 concurrent runs'] =
      `submitted in ${(submitMs / 1000).toFixed(1)} s (request p50 ${pct(50)} ms, p99 ${pct(99)} ms), all Jobs exist after ${(jobsExistMs / 1000).toFixed(1)} s, ` +
      `all finished after ${(finishedMs / 1000).toFixed(1)} s, whole test ${secondsSince(t0)}`;
  });
});
