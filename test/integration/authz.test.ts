// Authorization of runs, on the real cluster, through the real server in GitHub mode
// (fake GitHub, several people) with a counting pass-through in front of the real API
// server. Proves that:
//  - a run is driven only by its own Job and pod: look-alike pods in another served
//    namespace (or label-only ones in its own) neither kill nor complete it, live or at
//    reconciliation after a restart, and a run recorded without a Job uid adopts only its Job;
//  - access follows the Deployment as it is now: a person removed from the annotation
//    can no longer list, read, stream, type into or cancel within the watch lag; a
//    deleted Deployment leaves its runs to their owner and auditors; listing 500 runs
//    reads no Deployment per run; a cancel by someone else is audited with both names;
//  - owners decide which containers a run may use and whether it may drop sidecars,
//    and refused previews are audited.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import * as k8s from '@kubernetes/client-node';
import WebSocket from 'ws';
import { decodeFrame, encodeFrame, Channel, type StatusFrame } from '../../protocol/frames.js';
import { DEMO_IMAGE, createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { startGitHubServer } from '../support/github-signin.js';
import { CountingKubeProxy } from '../support/kube-proxy.js';
import { runCli, type ServerProcess } from '../support/oddjob.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let A: { name: string; dispose: () => Promise<void> };
let B: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let proxy: CountingKubeProxy;
let server: ServerProcess;
let base: string;
let port: number;
let dir: string;
const tokens: Record<string, string> = {};

function startServer() {
  return startGitHubServer({
    port,
    gh,
    dir,
    namespaces: [A.name, B.name],
    kubeconfig: join(dir, 'kubeconfig'),
    extra: ['--auditors', 'acme/security', '--auth-rate-limit', '1000', '--start-timeout', '40s'],
  });
}

before(async () => {
  cluster = await requireCluster();
  [A, B] = await Promise.all([createTestNamespace(cluster, 'authz-a'), createTestNamespace(cluster, 'authz-b')]);
  const create = (d: k8s.V1Deployment) => cluster.apps.createNamespacedDeployment({ namespace: A.name, body: d });
  await create(optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/allowed-users': 'bob' }));
  await create(optedInDeployment('gone', { 'oddjob.io/allowed-users': 'alice, carol' }));
  const shaped = optedInDeployment('shaped', { 'oddjob.io/allowed-users': 'alice', 'oddjob.io/allowed-containers': 'app', 'oddjob.io/sidecars': 'keep' });
  shaped.spec!.template.spec!.containers.push({ name: 'proxy', image: DEMO_IMAGE, command: ['node', '/app/server.js'] });
  await create(shaped);
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/payments']);
  gh.addUser('bob', [], ['acme']); // allowed on api by login only
  gh.addUser('carol', [], ['acme']);
  gh.addUser('dave', ['acme/web']); // allowed nowhere
  gh.addUser('erin', ['acme/security']); // an auditor, allowed nowhere
  proxy = await new CountingKubeProxy().start(cluster.kc);
  dir = mkdtempSync(join(tmpdir(), 'oddjob-authz-'));
  proxy.writeKubeconfig(join(dir, 'kubeconfig'));
  port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startServer();
  for (const who of ['alice', 'bob', 'carol', 'dave', 'erin']) tokens[who] = await deviceSignIn(who);
});

after(async () => {
  await server?.kill();
  await proxy?.stop();
  await gh?.stop();
  await Promise.all([A?.dispose(), B?.dispose()]);
});

// ---- helpers ---------------------------------------------------------------

interface Answer {
  status: number;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read many body shapes; the asserts check them
  json(): any;
}
async function http(method: string, path: string, opts: { as?: string; body?: unknown } = {}): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (opts.as) headers.authorization = `Bearer ${tokens[opts.as]}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body) });
  const body = await res.text();
  return { status: res.status, body, json: () => JSON.parse(body) };
}

async function deviceSignIn(login: string): Promise<string> {
  const start = await http('POST', '/auth/device');
  assert.equal(start.status, 200, start.body);
  const { deviceCode, userCode } = start.json();
  gh.approveDevice(userCode, login);
  const done = await http('POST', '/auth/device/token', { body: { deviceCode } });
  assert.equal(done.status, 200, done.body);
  return done.json().token as string;
}

/** `node -e`: prints "started", then after `seconds` prints "finished" and exits with `code`. */
const sleeper = (seconds: number, code: number) => [
  'node',
  '-e',
  `console.log("started"); setTimeout(() => { console.log("finished"); process.exit(${code}); }, ${seconds * 1000})`,
];

async function startRun(as: string, body: Record<string, unknown>): Promise<string> {
  const r = await http('POST', '/api/runs', { as, body: { namespace: A.name, deployment: 'api', ...body } });
  assert.equal(r.status, 201, r.body);
  return r.json().id as string;
}

const getRun = async (id: string, as = 'alice') => (await http('GET', `/api/runs/${id}`, { as })).json();

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read many body shapes; the asserts check them
function waitFor(id: string, what: string, pred: (run: any) => boolean, timeoutMs = 60_000) {
  return eventually(
    `run ${id} ${what}`,
    async () => {
      const run = await getRun(id);
      return pred(run) ? run : undefined;
    },
    timeoutMs,
  );
}

/** A pod anyone with pod-create rights in a namespace can make: it only claims the run by label. */
async function lookAlike(namespace: string, name: string, runId: string, container: Partial<k8s.V1Container>) {
  await cluster.core.createNamespacedPod({
    namespace,
    body: {
      metadata: { name, labels: { 'oddjob.io/run-id': runId, 'oddjob.io/deployment': 'api' } },
      spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: DEMO_IMAGE, imagePullPolicy: 'IfNotPresent', ...container }] },
    },
  });
}

function waitForPod(namespace: string, name: string, what: string, pred: (p: k8s.V1Pod) => boolean) {
  return eventually(`pod ${namespace}/${name} ${what}`, async () => pred(await cluster.core.readNamespacedPod({ namespace, name })) || undefined);
}

interface Stream {
  ws: WebSocket;
  statuses: StatusFrame[];
  output(): string;
  closed: Promise<void>;
}
/** Opens a run's output stream the way the CLI does; resolves once upgraded, or rejects with the HTTP status. */
function openStream(id: string, as: string, follow = true): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/runs/${id}/stream?from=0&follow=${follow ? 1 : 0}`, {
      headers: { authorization: `Bearer ${tokens[as]}` },
    });
    const statuses: StatusFrame[] = [];
    const chunks: Buffer[] = [];
    const closed = new Promise<void>((r) => ws.on('close', () => r()));
    ws.on('message', (data: Buffer) => {
      const f = decodeFrame(data);
      if (f.channel === 3) statuses.push(f.status);
      else if (f.channel === 1 || f.channel === 2) chunks.push(f.data);
    });
    ws.on('open', () => resolve({ ws, statuses, output: () => Buffer.concat(chunks).toString(), closed }));
    ws.on('unexpected-response', (_req, res) => reject(Object.assign(new Error(`stream refused: ${res.statusCode}`), { status: res.statusCode })));
    ws.on('error', () => undefined);
  });
}

const deploymentReads = (from: number) =>
  proxy.calls.slice(from).filter((c) => c.method === 'GET' && !c.watch && /^\/apis\/apps\/v1\/namespaces\/[^/]+\/deployments\/[^/]+$/.test(c.path));

async function patchAnnotations(name: string, annotations: Record<string, string | null>) {
  await cluster.apps.patchNamespacedDeployment(
    { name, namespace: A.name, body: { metadata: { annotations } } },
    k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch),
  );
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---- tests -----------------------------------------------------------------

describe('a run is driven only by its own Job and pod', () => {
  test('a pod in another served namespace that cannot start, and a deleted look-alike Job, do not end the run', async () => {
    const id = await startRun('alice', { command: sleeper(10, 0) });
    await waitFor(id, 'running', (r) => r.status === 'running');
    await lookAlike(B.name, 'spoof-pull', id, { image: 'docker.io/oddjob/does-not-exist:1.0' });
    await cluster.batch.createNamespacedJob({
      namespace: B.name,
      body: {
        metadata: {
          name: (await getRun(id)).jobName,
          labels: { 'app.kubernetes.io/managed-by': 'oddjob', 'oddjob.io/run-id': id, 'oddjob.io/deployment': 'api' },
        },
        spec: { suspend: true, template: { spec: { restartPolicy: 'Never', containers: [{ name: 'app', image: DEMO_IMAGE }] } } },
      },
    });
    await waitForPod(B.name, 'spoof-pull', 'to fail its image pull', (p) =>
      /ErrImagePull|ImagePullBackOff/.test(p.status?.containerStatuses?.[0]?.state?.waiting?.reason ?? ''),
    );
    await cluster.batch.deleteNamespacedJob({ namespace: B.name, name: (await getRun(id)).jobName, propagationPolicy: 'Background' });
    await sleep(1500); // the watch events of both look-alikes have arrived
    const during = await getRun(id);
    assert.equal(during.status, 'running', `the run must go on: ${JSON.stringify(during)}`);
    const job = await cluster.batch.readNamespacedJob({ namespace: A.name, name: during.jobName });
    assert.equal(job.metadata?.uid, during.jobUid, 'the uid of the Job oddjob created is on the run');
    const end = await waitFor(id, 'to finish', (r) => r.finishedAt);
    assert.equal(end.status, 'succeeded', JSON.stringify(end));
    assert.equal(end.exitCode, 0);
    const out = await openStream(id, 'alice', false);
    await out.closed;
    assert.equal(out.output(), 'started\nfinished\n');
    assert.match(server.logs(), new RegExp(`ignoring pod ${B.name}/spoof-pull that claims run ${id}: it is in namespace ${B.name}`));
    assert.match(server.logs(), new RegExp(`ignoring Job ${B.name}/${during.jobName} that claims run ${id}`));
  });

  test('look-alike pods that complete (another namespace; same namespace, label only) do not complete the run', async () => {
    const id = await startRun('alice', { command: sleeper(10, 7) });
    await waitFor(id, 'running', (r) => r.status === 'running');
    const done = ['node', '-e', 'console.log("spoofed"); process.exit(0)'];
    await lookAlike(B.name, 'spoof-done', id, { command: done });
    await lookAlike(A.name, 'spoof-local', id, { command: done });
    for (const [ns, name] of [
      [B.name, 'spoof-done'],
      [A.name, 'spoof-local'],
    ] as const) {
      await waitForPod(ns, name, 'to succeed', (p) => p.status?.phase === 'Succeeded');
    }
    await sleep(1000);
    assert.equal((await getRun(id)).status, 'running');
    const end = await waitFor(id, 'to finish', (r) => r.finishedAt);
    assert.equal(end.status, 'failed', JSON.stringify(end));
    assert.equal(end.exitCode, 7, "the exit code is the real command's");
    const out = await openStream(id, 'alice', false);
    await out.closed;
    assert.equal(out.output(), 'started\nfinished\n', "output comes from the run's own pod only");
  });

  test('after a restart, reconciliation ignores look-alikes and adopts a run recorded without a Job uid by its labels', async () => {
    const id = await startRun('alice', { command: sleeper(25, 5) });
    const running = await waitFor(id, 'running', (r) => r.status === 'running');
    await server.kill('SIGKILL');
    // Sorted before the real pod (api-oddjob-…): the first pod an unchecked lookup would take.
    await lookAlike(A.name, 'a-spoof', id, { command: ['node', '-e', 'process.exit(0)'] });
    await lookAlike(B.name, 'b-spoof', id, { command: ['node', '-e', 'process.exit(0)'] });
    await waitForPod(A.name, 'a-spoof', 'to succeed', (p) => p.status?.phase === 'Succeeded');
    // As a run recorded by a build that did not store Job uids.
    const db = new Database(join(dir, 'audit.db'));
    db.prepare(`UPDATE runs SET json = json_remove(json, '$.jobUid') WHERE id = ?`).run(id);
    db.close();
    server = await startServer();
    await sleep(1500);
    const after = await getRun(id);
    assert.equal(after.status, 'running', `reconciled from the look-alike: ${JSON.stringify(after)}`);
    assert.equal(after.jobUid, running.jobUid, 'the Job was adopted by its labels and its uid stored again');
    const end = await waitFor(id, 'to finish', (r) => r.finishedAt);
    assert.equal(end.status, 'failed', JSON.stringify(end));
    assert.equal(end.exitCode, 5);
    assert.match(server.logs(), new RegExp(`ignoring pod ${A.name}/a-spoof that claims run ${id}: it is not controlled by`));
  });
});

describe('access follows the Deployment as it is now', () => {
  test('removed from allowed-users: list, get, stream, stdin and cancel are refused within the watch lag; cancels are audited with both names', async () => {
    const bobs = await startRun('bob', { interactive: true, command: ['node', 'scripts/echo-stdin.js'] });
    const alices = await startRun('alice', { command: ['node', 'scripts/sleep.js', '120'] });
    await waitFor(bobs, 'running', (r) => r.status === 'running');
    await waitFor(alices, 'running', (r) => r.status === 'running');

    // Before: bob may see and follow alice's run, and type into his own.
    assert.equal((await http('GET', `/api/runs/${alices}`, { as: 'bob' })).status, 200);
    assert.ok((await http('GET', '/api/runs?limit=100', { as: 'bob' })).json().items.some((r: { id: string }) => r.id === alices));
    const watching = await openStream(alices, 'bob');
    await eventually("bob to see alice's output", async () => watching.output().includes('tick'));
    // As the CLI does: input once the server says the command runs. (The run's first
    // line, "ready", may predate the server's attach: only the echo is awaited.)
    const own = await openStream(bobs, 'bob');
    await eventually('the running frame', async () => own.statuses.some((s) => s.kind === 'running'));
    own.ws.send(encodeFrame(Channel.stdin, 'before\n'));
    await eventually('the echo', async () => own.output().includes('echo: before'));

    const t0 = Date.now();
    await patchAnnotations('api', { 'oddjob.io/allowed-users': null });
    await eventually("bob to lose sight of alice's run", async () => (await http('GET', `/api/runs/${alices}`, { as: 'bob' })).status === 404, 10_000);
    const lagMs = Date.now() - t0;
    await eventually(
      "bob's live view of alice's run to be cut off",
      async () => watching.statuses.some((s) => s.kind === 'error' && s.code === 'forbidden'),
      10_000,
    );
    await watching.closed;
    await eventually(
      "bob's input to be refused",
      async () => own.statuses.some((s) => s.kind === 'progress' && /input is no longer accepted/.test(s.message)),
      10_000,
    );
    own.ws.send(encodeFrame(Channel.stdin, 'after\n'));

    const list = (await http('GET', '/api/runs?limit=100', { as: 'bob' })).json().items.map((r: { id: string }) => r.id);
    assert.ok(!list.includes(alices), "alice's run is no longer listed for bob");
    assert.ok(list.includes(bobs), 'bob still sees his own run');
    await assert.rejects(openStream(alices, 'bob'), (e: { status?: number }) => e.status === 404);
    assert.equal((await http('POST', `/api/runs/${alices}/cancel`, { as: 'bob' })).status, 404);
    assert.equal((await http('GET', `/api/runs/${bobs}`, { as: 'bob' })).status, 200);

    await sleep(1500);
    assert.doesNotMatch(own.output(), /echo: after/, 'stdin after the revocation never reached the command');
    // Someone who may run there now may stop another's run; the record names both.
    const cancelled = await http('POST', `/api/runs/${bobs}/cancel`, { as: 'alice' });
    assert.equal(cancelled.status, 200, cancelled.body);
    assert.equal(cancelled.json().status, 'cancelled');
    await own.closed;
    const stored = await openStream(bobs, 'alice', false);
    await stored.closed;
    assert.match(stored.output(), /echo: before/);
    assert.doesNotMatch(stored.output(), /echo: after/);
    const events = (await http('GET', `/api/audit?runId=${bobs}&type=run.cancelled`, { as: 'erin' })).json().items;
    assert.equal(events.length, 1, JSON.stringify(events));
    assert.equal(events[0].actor.login, 'alice');
    assert.equal(events[0].owner, 'bob');
    assert.equal(events[0].client.kind, 'api');
    // An auditor reads, but does not cancel; the refusal is on record.
    const erinCancel = await http('POST', `/api/runs/${alices}/cancel`, { as: 'erin' });
    assert.equal(erinCancel.status, 403, erinCancel.body);
    assert.match(erinCancel.json().error.message, /may see run .* but not cancel it/);
    const refused = (await http('GET', `/api/audit?runId=${alices}&type=run.denied`, { as: 'erin' })).json().items;
    assert.ok(
      refused.some((e: { actor: { login: string }; owner?: string }) => e.actor.login === 'erin' && e.owner === 'alice'),
      JSON.stringify(refused),
    );
    assert.equal((await http('POST', `/api/runs/${alices}/cancel`, { as: 'alice' })).status, 200);
    console.log(`# revocation took effect ${lagMs} ms after the annotation changed`);
  });

  test('a deleted Deployment leaves its runs to their owner and to auditors', async () => {
    const id = await startRun('alice', { deployment: 'gone', command: ['node', '-e', 'console.log("hi")'] });
    await waitFor(id, 'to finish', (r) => r.finishedAt);
    assert.equal((await http('GET', `/api/runs/${id}`, { as: 'carol' })).status, 200, 'carol may run there, so she sees it');
    await cluster.apps.deleteNamespacedDeployment({ namespace: A.name, name: 'gone' });
    await eventually('carol to lose sight of it', async () => (await http('GET', `/api/runs/${id}`, { as: 'carol' })).status === 404, 10_000);
    const listed = async (as: string) => (await http('GET', '/api/runs?limit=500', { as })).json().items.some((r: { id: string }) => r.id === id);
    assert.equal(await listed('carol'), false);
    assert.equal((await http('GET', `/api/runs/${id}`, { as: 'dave' })).status, 404);
    assert.equal(await listed('dave'), false);
    for (const who of ['alice', 'erin']) {
      assert.equal((await http('GET', `/api/runs/${id}`, { as: who })).status, 200, `${who} still sees it`);
      assert.equal(await listed(who), true, `${who} still lists it`);
      const out = await openStream(id, who, false);
      await out.closed;
      assert.equal(out.output(), 'hi\n');
    }
  });

  test('listing 500 runs reads no Deployment per run', async () => {
    // 500 finished runs of api (alice's), as a busy deployment accumulates them.
    const db = new Database(join(dir, 'audit.db'));
    const insert = db.prepare('INSERT INTO runs (id, login, namespace, deployment, status, created_at, json) VALUES (?, ?, ?, ?, ?, ?, ?)');
    const createdAt = new Date().toISOString();
    db.transaction(() => {
      for (let i = 0; i < 500; i++) {
        const id = `seed${String(i).padStart(8, '0')}`;
        const run = {
          id,
          namespace: A.name,
          deployment: 'api',
          container: 'app',
          image: DEMO_IMAGE,
          command: ['node', '-e', '1'],
          user: 'alice',
          interactive: false,
          tty: false,
          status: 'succeeded',
          exitCode: 0,
          jobName: `api-oddjob-${id}`,
          createdAt,
          finishedAt: createdAt,
          outputBytes: 0,
          outputTruncated: false,
        };
        insert.run(id, 'alice', A.name, 'api', 'succeeded', createdAt, JSON.stringify(run));
      }
    })();
    db.close();
    const mark = proxy.calls.length;
    const t0 = Date.now();
    const hidden = await http('GET', '/api/runs?limit=500', { as: 'dave' });
    const ms = Date.now() - t0;
    assert.equal(hidden.status, 200, hidden.body);
    assert.equal(hidden.json().items.length, 0, 'dave may see none of them');
    assert.deepEqual(deploymentReads(mark), [], 'no Deployment was read to hide them');
    const shown = await http('GET', '/api/runs?limit=500', { as: 'carol' });
    assert.equal(shown.json().items.length, 0, 'carol may not run in api: none');
    assert.equal((await http('GET', '/api/runs?limit=500', { as: 'erin' })).json().items.length, 500, 'an auditor sees them all');
    assert.equal((await http('GET', '/api/runs?limit=500', { as: 'alice' })).json().items.length, 500);
    assert.deepEqual(deploymentReads(mark), [], 'no Deployment was read to list runs');
    console.log(`# GET /api/runs?limit=500 hiding 500 runs: ${ms} ms, ${proxy.calls.length - mark} Kubernetes calls for 4 listings`);
  });
});

describe('owners decide containers and sidecars', () => {
  const shaped = (extra: Record<string, unknown> = {}) => ({ namespace: A.name, deployment: 'shaped', command: ['node', '-e', '1'], ...extra });

  test('allowed-containers and sidecars are enforced, malformed values refuse, refused previews are audited', async () => {
    const cli = await runCli(['run', '-n', A.name, '-c', 'proxy', 'deploy/shaped', '--', 'node', '-e', '1'], {
      server: base,
      env: { ODDJOB_TOKEN: tokens.alice },
    });
    assert.equal(cli.code, 125, cli.stderr);
    assert.match(cli.stderr, /-c proxy: runs in deployment .*\/shaped may use only app \(oddjob\.io\/allowed-containers\)/);
    const drop = await http('POST', '/api/runs', { as: 'alice', body: shaped({ noSidecars: true }) });
    assert.equal(drop.status, 403, drop.body);
    assert.match(drop.json().error.message, /--no-sidecars: deployment .*\/shaped keeps its sidecars in every run \(oddjob\.io\/sidecars: keep\): proxy/);
    const previewRefused = await http('POST', '/api/runs/preview', { as: 'alice', body: shaped({ container: 'proxy' }) });
    assert.equal(previewRefused.status, 403, previewRefused.body);
    const strangerPreview = await http('POST', '/api/runs/preview', { as: 'dave', body: { namespace: A.name, deployment: 'api', command: ['id'] } });
    assert.equal(strangerPreview.status, 403);
    const batch = await cluster.batch.listNamespacedJob({ namespace: A.name, labelSelector: 'oddjob.io/deployment=shaped' });
    assert.equal(batch.items.length, 0, 'nothing was created');

    const kept = await http('POST', '/api/runs/preview', { as: 'alice', body: shaped() });
    assert.equal(kept.status, 200, kept.body);
    assert.deepEqual(
      kept.json().job.spec.template.spec.initContainers.map((c: { name: string; restartPolicy: string }) => [c.name, c.restartPolicy]),
      [['proxy', 'Always']],
    );
    await patchAnnotations('shaped', { 'oddjob.io/sidecars': 'drop' });
    const dropped = await http('POST', '/api/runs/preview', { as: 'alice', body: shaped() });
    assert.equal(dropped.status, 200, dropped.body);
    assert.equal(dropped.json().job.spec.template.spec.initContainers, undefined, 'sidecars: drop applies to every run');
    await patchAnnotations('shaped', { 'oddjob.io/sidecars': 'sometimes' });
    const malformed = await http('POST', '/api/runs', { as: 'alice', body: shaped() });
    assert.equal(malformed.status, 403, malformed.body);
    assert.match(malformed.json().error.message, /malformed oddjob\.io\/sidecars annotation \("sometimes" is not one of keep, drop, either\)/);

    const denied = (await http('GET', '/api/audit?type=run.denied&limit=100', { as: 'erin' })).json().items;
    const shapedDenials = denied.filter((e: { deployment?: string }) => e.deployment === 'shaped');
    assert.equal(shapedDenials.length, 4, JSON.stringify(shapedDenials));
    assert.equal(shapedDenials.filter((e: { preview?: boolean }) => e.preview === true).length, 1);
    assert.ok(
      denied.some(
        (e: { actor: { login: string }; preview?: boolean; deployment?: string }) => e.actor.login === 'dave' && e.preview === true && e.deployment === 'api',
      ),
    );
  });
});
