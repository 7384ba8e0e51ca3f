// Benchmark 8: output fan-out across replicas. Two servers share one real PostgreSQL.
// A run is started through replica A (its CLI follows it there: the owner's viewer)
// while a second CLI follows the same run through replica B (`oddjob logs -f`), which
// sees the output only through the store and its NOTIFY. The command prints a line
// with its own clock every 20 ms; pod, servers and CLIs share this machine's clock,
// so each line's latency is its arrival at the CLI minus the time it carries.
// Reported: p50/p99 per viewer and the ratio B/A (the price of being on the other replica).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { REPO_ROOT } from '../test/support/cluster.js';
import type { ServerProcess } from '../test/support/oddjob.js';
import { startPostgres } from '../test/support/postgres.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, ms, quantile, sleep } from './lib.js';

export async function fanoutBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const lines = opts.quick ? 300 : 1500;
  const pg = await startPostgres();
  let a: ServerProcess | undefined;
  let b: ServerProcess | undefined;
  try {
    const url = await pg.createDatabase('oddjob');
    const passwordFile = path.join(pg.dir, 'client-password');
    fs.writeFileSync(passwordFile, pg.password);
    const db = ['--db', url.replace(`:${encodeURIComponent(pg.password)}@`, '@'), '--db-password-file', passwordFile];
    [a, b] = await Promise.all([env.startServer(...db), env.startServer(...db)]);
    await clearJobs(env, env.ns);
    const script = `for (let i = 0; i < ${lines}; i++) { console.log(Date.now() + ' ' + i + ' ' + 'x'.repeat(80)); await new Promise((r) => setTimeout(r, 20)); }`;
    const owner = follow(a, ['run', '-n', env.ns, 'deploy/api', '--', 'node', '--input-type=module', '-e', script]);
    const id = await runId(b);
    const other = follow(b, ['logs', '-f', id]);
    const [ra, rb] = await Promise.all([owner.done, other.done]);
    for (const [name, r] of [
      ['A', ra],
      ['B', rb],
    ] as const) {
      if (r.code !== 0) throw new Error(`fan-out: viewer ${name} exited ${r.code}: ${r.stderr.slice(-2000)}`);
    }
    // B joins a moment after the start and replays what it missed: only lines that
    // were printed after B's first live line count, for both viewers alike.
    const firstLive = rb.latencies.findIndex((l) => l.latency < 1000);
    const from = Math.max(0, firstLive);
    const la = ra.latencies.filter((l) => l.i >= from).map((l) => l.latency);
    const lb = rb.latencies.filter((l) => l.i >= from).map((l) => l.latency);
    const complete = ra.latencies.length === lines && rb.latencies.length === lines;
    const p = (xs: number[], q: number) => ms(quantile(xs, q));
    process.stderr.write(`fanout: A p50 ${p(la, 0.5)} p99 ${p(la, 0.99)}; B p50 ${p(lb, 0.5)} p99 ${p(lb, 0.99)} over ${lb.length} lines\n`);
    return {
      name: 'fanout',
      rows: [
        {
          benchmark: 'fanout',
          metric: `line latency (printed → CLI), ${la.length} lines at 50/s, viewer on the other replica vs the owner`,
          oddjob: `other replica (B): p50 ${p(lb, 0.5)}, p99 ${p(lb, 0.99)}`,
          baseline: `owner replica (A): p50 ${p(la, 0.5)}, p99 ${p(la, 0.99)}`,
          ratio: quantile(la, 0.5) / quantile(lb, 0.5),
          note: `PostgreSQL NOTIFY; ${complete ? 'both viewers got every line' : 'INCOMPLETE'}; ratio < 1: B slower`,
        },
      ],
      data: { lines, owner: la, other: lb, complete },
    };
  } finally {
    await Promise.all([a?.kill(), b?.kill()]);
    await pg.destroy();
  }
}

/** The id of the newest run, once it is running. */
async function runId(srv: ServerProcess): Promise<string> {
  const deadline = Date.now() + 120_000;
  for (;;) {
    const res = await fetch(`${srv.url}/api/runs?limit=1`);
    const body = (await res.json()) as { items?: { id: string; status: string }[] };
    const run = body.items?.[0];
    if (run && run.status === 'running') return run.id;
    if (Date.now() > deadline) throw new Error(`fan-out: no running run after 120 s (${res.status} ${JSON.stringify(body).slice(0, 300)})`);
    await sleep(100);
  }
}

function follow(srv: ServerProcess, args: string[]) {
  const latencies: { i: number; latency: number }[] = [];
  let stderr = '';
  let partial = '';
  const p = spawn(process.execPath, [`${REPO_ROOT}bin/oddjob.mjs`, ...args], { env: { ...process.env, ODDJOB_SERVER: srv.url } });
  p.stdout.on('data', (d: Buffer) => {
    const now = Date.now();
    const text = partial + d.toString();
    const parts = text.split('\n');
    partial = parts.pop()!;
    for (const line of parts) {
      const [t, i] = line.split(' ');
      latencies.push({ i: Number(i), latency: now - Number(t) });
    }
  });
  p.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number; stderr: string; latencies: typeof latencies }>((resolve) =>
    p.on('close', (code) => resolve({ code: code ?? -1, stderr, latencies })),
  );
  return { done };
}
