// Several oddjob replicas on one real PostgreSQL 15, against the real cluster: a run
// started through replica A is followed through replica B with the CLI, byte for byte,
// live from the store; sessions and the audit chain are shared. A person connected to
// the replica that does not own a run controls it as well as through its owner: stdin
// (byte-exact, bounded), terminal size and cancel reach the run through the store, and
// when the owner dies mid-session the viewer is told what happened.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import pgClient from 'pg';
import WebSocket from 'ws';
import { Channel, decodeFrame, encodeFrame, encodeResize, type StatusFrame } from '../../protocol/frames.js';
import { type TestCluster, REPO_ROOT, createTestNamespace, eventually, optedInDeployment, requireCluster } from '../support/cluster.js';
import { BIN, type ServerProcess, runCli, startServerProcess, tailLines } from '../support/oddjob.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';

let cluster: TestCluster;
let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let pg: PostgresServer;
let a: ServerProcess;
let b: ServerProcess;
let dbUrl: string;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'replicas');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments' }) });
  pg = await startPostgres();
  const url = await pg.createDatabase('oddjob');
  dbUrl = url;
  const passwordFile = path.join(pg.dir, 'client-password');
  fs.writeFileSync(passwordFile, pg.password);
  const server = () =>
    startServerProcess([
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
      url.replace(`:${encodeURIComponent(pg.password)}@`, '@'),
      '--db-password-file',
      passwordFile,
    ]);
  [a, b] = await Promise.all([server(), server()]);
});

after(async () => {
  await Promise.all([a?.kill(), b?.kill()]);
  await pg?.destroy();
  await ns?.dispose();
});

describe('replicas on one PostgreSQL', () => {
  test('a run started through A and followed through B streams byte-exact, live', async () => {
    const expected = execFileSync(process.execPath, [path.join(REPO_ROOT, 'hack/images/demo-app/scripts/flood.js'), '3'], { maxBuffer: 64 << 20 });
    const started = await runCli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', 'scripts/flood.js', '3'], { server: a.url });
    assert.equal(started.code, 0, started.stderr);
    const id = started.stdout.toString().trim();
    // Followed on B while A captures it (B does not track the run: it reads the store).
    const [viaB, viaA] = await Promise.all([runCli(['logs', '-f', id], { server: b.url }), runCli(['logs', '-f', id], { server: a.url })]);
    assert.equal(viaB.code, 0, viaB.stderr);
    assert.equal(viaB.stdout.length, expected.length, `B: ${viaB.stdout.length} bytes, expected ${expected.length}; stderr: ${viaB.stderr}`);
    assert.ok(viaB.stdout.equals(expected), 'B: byte-exact');
    assert.ok(viaA.stdout.equals(expected), 'A: byte-exact');
    const run = (await (await fetch(`${b.url}/api/runs/${id}`)).json()) as { status: string; exitCode: number; outputBytes: number };
    assert.deepEqual([run.status, run.exitCode, run.outputBytes], ['succeeded', 0, expected.length]);
    assert.match(b.logs() + a.logs(), /store open/);
  });

  test('the exit code and the audit trail are the same from either replica; the shared chain verifies', async () => {
    const started = await runCli(['run', '-n', ns.name, '--detach', 'deploy/api', '--', 'node', 'scripts/exit.js', '3'], { server: b.url });
    const id = started.stdout.toString().trim();
    const viaA = await runCli(['logs', '-f', id], { server: a.url });
    assert.equal(viaA.stdout.toString(), 'to stdout\n');
    assert.equal(viaA.stderr.includes('to stderr'), true, viaA.stderr);
    for (const srv of [a, b]) {
      const run = (await (await fetch(`${srv.url}/api/runs/${id}`)).json()) as { status: string; exitCode: number };
      assert.deepEqual([run.status, run.exitCode], ['failed', 3]);
      const trail = ((await (await fetch(`${srv.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; exitCode?: number }[] }).items;
      assert.deepEqual(trail.map((e) => e.type).reverse(), ['run.requested', 'run.created', 'run.started', 'run.finished']);
      assert.equal(trail.filter((e) => e.type === 'run.finished').length, 1, 'the ending is recorded once');
    }
    const verify = (await (await fetch(`${a.url}/api/audit/verify`)).json()) as { ok: boolean; checked: number };
    assert.equal(verify.ok, true, JSON.stringify(verify));
  });
});

async function query<T>(text: string, params: unknown[] = []): Promise<T[]> {
  const c = new pgClient.Client({ connectionString: dbUrl });
  await c.connect();
  try {
    return (await c.query(text, params)).rows as T[];
  } finally {
    await c.end();
  }
}

/** Starts a run through `srv` (so `srv` owns it) and waits until its command runs. */
async function startRun(srv: ServerProcess, body: { command: string[]; interactive?: boolean; tty?: boolean }): Promise<string> {
  const res = await fetch(`${srv.url}/api/runs`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ namespace: ns.name, deployment: 'api', ...body }),
  });
  assert.equal(res.status, 201, await res.clone().text());
  const { id } = (await res.json()) as { id: string };
  await eventually(
    `run ${id} to be running`,
    async () => ((await (await fetch(`${srv.url}/api/runs/${id}`)).json()) as { status: string }).status === 'running' || undefined,
    90_000,
  );
  const lease = await query<{ owner: string }>('select owner from run_leases where run_id = $1', [id]);
  assert.ok(lease[0]?.owner.includes(`/${srv.proc.pid}/`), `run ${id} is owned by the replica that started it (${lease[0]?.owner})`);
  return id;
}

/** A raw stream client (protocol/frames.ts), as the web terminal is. */
function openStream(srv: ServerProcess, id: string) {
  const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/runs/${id}/stream?from=0&follow=1`);
  let out = Buffer.alloc(0);
  const statuses: StatusFrame[] = [];
  let closed = false;
  ws.on('message', (m: Buffer) => {
    const f = decodeFrame(m);
    if (f.channel === Channel.stdout || f.channel === Channel.stderr) out = Buffer.concat([out, f.data]);
    else if (f.channel === Channel.status) statuses.push(f.status);
  });
  ws.on('close', () => (closed = true));
  const opened = new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return {
    opened,
    output: () => out.toString('utf8'),
    statuses,
    closed: () => closed,
    send: (data: Buffer) => ws.send(data),
    stdin: (text: string) => ws.send(encodeFrame(Channel.stdin, text)),
    close: () => ws.close(),
  };
}

/** On failure, what the two servers logged (their last lines). */
async function withLogs(f: () => Promise<void>): Promise<void> {
  try {
    await f();
  } catch (err) {
    console.error(`A:\n${tailLines(a.logs(), 30)}\nB:\n${tailLines(b.logs(), 30)}`);
    throw err;
  }
}

describe('control through the replica that does not own the run', { timeout: 150_000 }, () => {
  test('10 MiB of interactive stdin typed through B reaches the run A owns byte-exact, and comes back whole', () =>
    withLogs(async () => {
      const size = 10 << 20;
      // Echoes stdin to stdout until it has seen `size` bytes (end of input is not needed).
      const script = `let n = 0; process.stdin.on('data', (d) => { n += d.length; process.stdout.write(d); if (n >= ${size}) process.stdout.write('', () => process.exit(0)); });`;
      const id = await startRun(a, { command: ['node', '-e', script], interactive: true });
      const input = randomBytes(size);
      const cli = spawn(process.execPath, [BIN, 'attach', id], {
        env: { ...process.env, ODDJOB_SERVER: b.url, ODDJOB_TOKEN: '' },
        stdio: ['pipe', 'pipe', 'pipe'],
      });
      const out: Buffer[] = [];
      let err = '';
      cli.stdout.on('data', (d: Buffer) => out.push(d));
      cli.stderr.on('data', (d) => (err += d));
      cli.stdin.on('error', () => undefined);
      cli.stdin.end(input);
      const code = await new Promise<number | null>((resolve, reject) => {
        const t = setTimeout(() => {
          cli.kill('SIGKILL');
          reject(new Error(`the CLI did not finish in 100 s; it got ${Buffer.concat(out).length} bytes; stderr: ${err}`));
        }, 100_000);
        cli.on('close', (c) => (clearTimeout(t), resolve(c)));
      });
      const got = Buffer.concat(out);
      assert.equal(code, 0, err);
      assert.equal(got.length, size, `echoed ${got.length} of ${size} bytes; stderr: ${err}`);
      assert.equal(createHash('sha256').update(got).digest('hex'), createHash('sha256').update(input).digest('hex'), 'byte-exact, in order');
      assert.doesNotMatch(b.logs(), new RegExp(`"run":"${id}"[^\n]*tracking an active run`), 'B never took the run over');
      assert.equal((await query('select 1 from run_input where run_id = $1', [id])).length, 0, 'no input left behind in the store');
    }));

  test('a terminal size sent through B shows up in `stty size` in the run A owns', () =>
    withLogs(async () => {
      const id = await startRun(a, { command: ['sh'], interactive: true, tty: true });
      const s = openStream(b, id);
      await s.opened;
      s.send(encodeResize({ cols: 123, rows: 45 }));
      await eventually(
        'stty size to report 45 123',
        async () => {
          s.stdin('busybox stty size\n');
          await new Promise((r) => setTimeout(r, 500));
          return /\b45 123\b/.test(s.output()) || undefined;
        },
        30_000,
      );
      s.stdin('exit 7\n');
      const end = await eventually('the end frame', async () => s.statuses.find((f) => f.kind === 'end'), 30_000);
      assert.deepEqual([end.kind === 'end' && end.status, end.kind === 'end' && end.exitCode], ['failed', 7], s.output());
    }));

  test('cancel through B stops the run A owns; the ending is recorded once, as a cancel by the person', () =>
    withLogs(async () => {
      const id = await startRun(a, { command: ['node', 'scripts/sleep.js', '300'] });
      const r = await runCli(['cancel', id], { server: b.url });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout.toString(), new RegExp(`run ${id} cancelled`));
      const trail = ((await (await fetch(`${a.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; actor: { login: string } }[] }).items;
      const endings = trail.filter((e) => ['run.finished', 'run.lost', 'run.cancelled'].includes(e.type));
      assert.deepEqual(
        endings.map((e) => [e.type, e.actor.login]),
        [['run.cancelled', 'alice']],
      );
      await eventually('the Job to be gone', async () => {
        const jobs = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/run-id=${id}` });
        return jobs.items.length === 0 || undefined;
      });
    }));

  // Last: it kills A.
  test('the owner dies mid-session: B adopts the run, and the person typing through B is told their input is gone', () =>
    withLogs(async () => {
      const id = await startRun(a, { command: ['node', 'scripts/echo-stdin.js'], interactive: true });
      const s = openStream(b, id);
      await s.opened;
      s.stdin('one\n');
      await eventually('the first line to come back', async () => s.output().includes('echo: one') || undefined, 30_000);
      await a.kill('SIGKILL');
      s.stdin('two\n');
      const told = await eventually('an end or error frame', async () => s.statuses.find((f) => f.kind === 'end' || f.kind === 'error'), 60_000);
      if (told.kind === 'error') {
        assert.equal(told.code, 'input_closed', JSON.stringify(told));
        assert.match(told.message, /input can no longer reach run .*the oddjob replica that held its interactive session .* stopped/);
      } else {
        assert.equal(told.kind, 'end');
        assert.match(told.message ?? '', /the oddjob replica that held this interactive session .* stopped, and Kubernetes closed the program's input/);
      }
      assert.ok(!s.output().includes('echo: two'), 'input typed after the owner died did not silently reach another attach');
      const endings = await eventually(
        'the ending to be recorded by B',
        async () => {
          const trail = ((await (await fetch(`${b.url}/api/audit?runId=${id}&limit=100`)).json()) as { items: { type: string; message?: string }[] }).items;
          const e = trail.filter((x) => ['run.finished', 'run.lost', 'run.cancelled'].includes(x.type));
          return e.length ? e : undefined;
        },
        60_000,
      );
      assert.equal(endings.length, 1, JSON.stringify(endings));
      assert.match(endings[0]!.message ?? '', /held this interactive session/);
      s.close();
    }));
});
