// Benchmark 4: the audit store at scale, on a real SQLite file (writers on both engines: audit-writers.ts).
//   - append rate one event at a time (one durable transaction per event)
//   - bulk seeding of N synthetic events (batched), for the query and verify numbers
//   - p50/p99 of the common queries: user + time range, deployment, status
//   - `audit verify` time, in-process and in the worker thread the server uses,
//     and how long the event loop stalls meanwhile (the worker must keep it free)
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { AuditEventInput, AuditQuery } from '../protocol/api.js';
import { openStore } from '../server/store/index.js';
import type { DbTarget } from '../server/store/target.js';
import { verifyInWorker } from '../server/store/verify-worker.js';
import { type BenchOptions, type BenchResult, mib, ms, quantile } from './lib.js';

const USERS = 200;
const DEPLOYMENTS = 50;
const STATUSES = ['succeeded', 'failed', 'deadline', 'cancelled', 'lost'] as const;
/** Share of each status among finished runs: mostly successes, a few rare outcomes. */
const STATUS_WEIGHTS = [0.85, 0.1, 0.02, 0.02, 0.01];

/** A deterministic 32-bit mix (so runs are reproducible without a stored seed). */
function mix(x: number, salt: number): number {
  let h = Math.imul(x ^ salt, 0x9e3779b1);
  h ^= h >>> 15;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  return (h >>> 0) / 2 ** 32;
}

/**
 * Event i of a synthetic log: runs of four events (requested, created, started,
 * finished) that share their user, deployment and namespace, as real ones do; users and
 * deployments drawn independently, statuses weighted (85% succeeded … 1% lost).
 */
function synthetic(i: number): AuditEventInput {
  const run = Math.floor(i / 4);
  const kind = i % 4;
  const user = Math.floor(mix(run, 1) * USERS);
  const dep = Math.floor(mix(run, 2) * DEPLOYMENTS);
  const base = {
    actor: { login: `user${user}`, teams: [`acme/team${user % 20}`] },
    client: { kind: 'cli' as const, address: '10.0.0.7', agent: 'oddjob-cli/0.1.0' },
    runId: `r${String(run).padStart(11, '0')}`,
    namespace: `ns${dep % 5}`,
    deployment: `app${dep}`,
    container: 'app',
    command: ['node', 'scripts/backfill.js', String(run)],
    reason: `INC-${run % 9000}`,
  };
  if (kind === 0) return { ...base, type: 'run.requested' };
  if (kind === 1) return { ...base, type: 'run.created', message: `job app-oddjob-${run}` };
  if (kind === 2) return { ...base, type: 'run.started' };
  let r = mix(run, 3);
  let s = 0;
  while (s < STATUSES.length - 1 && r >= STATUS_WEIGHTS[s]!) r -= STATUS_WEIGHTS[s++]!;
  return { ...base, type: 'run.finished', status: STATUSES[s], exitCode: s === 0 ? 0 : 1, durationMs: 1000 + Math.floor(mix(run, 4) * 60_000) };
}

export async function auditBench(opts: BenchOptions): Promise<BenchResult> {
  const n = opts.quick ? 100_000 : 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-bench-audit-'));
  const file = join(dir, 'audit.db');
  try {
    const target: DbTarget = { engine: 'sqlite', path: file };
    const store = await openStore(target);
    const log = store.audit;
    // Times spread over 30 days, non-decreasing like real appends.
    const t0 = Date.now() - 30 * 86400_000;
    const at = (i: number) => new Date(t0 + Math.floor((i / n) * 30 * 86400_000));

    // 1. The server's path: each append is its own fsync'd transaction (synchronous=FULL).
    const durable = opts.quick ? 300 : 2000;
    let t = performance.now();
    for (let i = 0; i < durable; i++) await log.append(synthetic(i), at(i));
    const durablePerSec = durable / ((performance.now() - t) / 1000);
    process.stderr.write(`audit: ${durable} durable appends at ${durablePerSec.toFixed(0)}/s\n`);

    // 2. Seeding: the same append(), 10,000 per group commit.
    t = performance.now();
    for (let i = durable; i < n; i += 10_000) {
      const batch = [];
      for (let j = i; j < Math.min(n, i + 10_000); j++) batch.push(log.append(synthetic(j), at(j)));
      await Promise.all(batch);
      if ((i - durable) % 200_000 < 10_000) process.stderr.write(`audit: seeded ${i}/${n}\n`);
    }
    const seededPerSec = (n - durable) / ((performance.now() - t) / 1000);

    // 3. Queries as /api/audit runs them (page of 100, newest first).
    const rounds = opts.quick ? 200 : 500;
    const day = (d: number) => new Date(t0 + d * 86400_000).toISOString();
    const queries: Record<string, (k: number) => Partial<AuditQuery>> = {
      'user + 7-day range': (k) => ({ user: `user${k % USERS}`, since: day(k % 20), until: day((k % 20) + 7) }),
      deployment: (k) => ({ deployment: `app${k % DEPLOYMENTS}` }),
      'status (rare: lost, 1%)': () => ({ status: 'lost' }),
      'deployment + status (lost)': (k) => ({ deployment: `app${k % DEPLOYMENTS}`, status: 'lost' }),
      'deployment + status (failed), page 5': (k) => ({ deployment: `app${k % DEPLOYMENTS}`, status: 'failed', limit: 20 }),
      'user + status': (k) => ({ user: `user${k % USERS}`, status: 'failed' }),
      'namespace + user': (k) => ({ namespace: `ns${k % 5}`, user: `user${k % USERS}` }),
      'user + deployment': (k) => ({ user: `user${k % USERS}`, deployment: `app${(k * 7) % DEPLOYMENTS}` }),
      "run id (one run's trail)": (k) => ({ runId: `r${String((k * 7919) % Math.floor(n / 4)).padStart(11, '0')}` }),
    };
    const queryStats: Record<string, { p50: number; p99: number; rows: number; shallowestPage?: number }> = {};
    for (const [name, make] of Object.entries(queries)) {
      const times: number[] = [];
      let rows = 0;
      let shallowest = Infinity;
      for (let k = 0; k < rounds; k++) {
        const q = { limit: 100, ...make(k) } as AuditQuery;
        // "page 5": follow the cursor the way a person pages back through results, and
        // time the request for page 5 alone (each page is its own request).
        let cursor: string | undefined;
        let page = 1;
        if (name.endsWith('page 5')) {
          for (; page < 5; page++) {
            const next: string | undefined = (await log.query({ ...q, cursor })).nextCursor;
            if (!next) break;
            cursor = next;
          }
        }
        shallowest = Math.min(shallowest, page);
        const s = performance.now();
        const items = (await log.query({ ...q, cursor })).items.length;
        times.push(performance.now() - s);
        rows += items;
      }
      queryStats[name] = {
        p50: quantile(times, 0.5),
        p99: quantile(times, 0.99),
        rows: rows / rounds,
        ...(name.endsWith('page 5') ? { shallowestPage: shallowest } : {}),
      };
    }

    // 4. Verify: in-process (what blocks a server) and in the worker (what the server does).
    t = performance.now();
    const inProcess = await log.verify();
    const verifyInProcessMs = performance.now() - t;
    if (!inProcess.ok || inProcess.checked !== n) throw new Error(`verify failed: ${JSON.stringify(inProcess)}`);
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    t = performance.now();
    const worker = await verifyInWorker(target);
    const verifyWorkerMs = performance.now() - t;
    delay.disable();
    if (!worker.ok || worker.checked !== n) throw new Error(`worker verify failed: ${JSON.stringify(worker)}`);
    const maxLoopStallMs = delay.max / 1e6;
    await store.close();
    const sizeBytes = statSync(file).size;

    const rows = [
      {
        benchmark: 'audit',
        metric: 'append, durable (server path)',
        oddjob: `${durablePerSec.toFixed(0)} events/s`,
        note: 'one fsync per event (synchronous=FULL)',
      },
      {
        benchmark: 'audit',
        metric: `seed ${n.toLocaleString('en')} events (batched)`,
        oddjob: `${seededPerSec.toFixed(0)} events/s`,
        note: `file ${mib(sizeBytes)}`,
      },
      ...Object.entries(queryStats).map(([name, s]) => ({
        benchmark: 'audit',
        metric: `query: ${name}`,
        oddjob: `p50 ${ms(s.p50)}, p99 ${ms(s.p99)}`,
        note: `target p99 < 20 ms; ${s.rows.toFixed(0)} rows/page${s.shallowestPage !== undefined && s.shallowestPage < 5 ? ` (some had only ${s.shallowestPage} pages)` : ''}`,
      })),
      {
        benchmark: 'audit',
        metric: 'verify, worker thread',
        oddjob: `${(verifyWorkerMs / 1000).toFixed(1)} s`,
        baseline: `${(verifyInProcessMs / 1000).toFixed(1)} s in-process`,
        ratio: verifyWorkerMs / verifyInProcessMs,
        note: `target < 10 s; event loop max stall ${ms(maxLoopStallMs)}`,
      },
    ];
    return {
      name: 'audit',
      rows,
      data: { events: n, durablePerSec, seededPerSec, sizeBytes, queries: queryStats, verifyInProcessMs, verifyWorkerMs, maxLoopStallMs },
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
