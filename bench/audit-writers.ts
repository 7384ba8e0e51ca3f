// Benchmark: audit appends/s with 1, 2 and 4 writer processes (standing in for server
// replicas) on one chain, per engine, side by side in one run: SQLite (one file, FULL
// sync) and PostgreSQL 15 (a real server started for the run, default durability).
// Each writer keeps 8 appends in flight, as a busy replica would; after each round the
// chain is verified (linear, no gap, no duplicate).
import { openStore } from '../server/store/index.js';
import type { DbTarget } from '../server/store/target.js';
import { runWriters } from '../test/support/audit-writers.js';
import { startPostgres } from '../test/support/postgres.js';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { BenchOptions, BenchResult } from './lib.js';

export async function auditWritersBench(opts: BenchOptions): Promise<BenchResult> {
  const perWriter = opts.quick ? 300 : 1500;
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-bench-writers-'));
  const pg = await startPostgres();
  const rows: BenchResult['rows'] = [];
  const data: Record<string, Record<number, number>> = { sqlite: {}, postgres: {} };
  try {
    for (const engine of ['sqlite', 'postgres'] as const) {
      for (const writers of [1, 2, 4]) {
        const target: DbTarget =
          engine === 'sqlite'
            ? { engine, path: join(dir, `w${writers}.db`) }
            : { engine, url: (await pg.createDatabase()).replace(`:${encodeURIComponent(pg.password)}@`, '@'), password: pg.password };
        const store = await openStore(target);
        const { total, wallMs } = await runWriters(target, writers, perWriter);
        const v = await store.audit.verify();
        await store.close();
        if (!v.ok || v.checked !== total) throw new Error(`${engine} with ${writers} writers: chain did not verify: ${JSON.stringify(v)}`);
        const rate = total / (wallMs / 1000);
        data[engine]![writers] = rate;
        process.stderr.write(`writers: ${engine} ${writers} × ${perWriter}: ${rate.toFixed(0)} appends/s\n`);
      }
    }
    for (const writers of [1, 2, 4]) {
      const s = data.sqlite![writers]!;
      const p = data.postgres![writers]!;
      rows.push({
        benchmark: 'audit-writers',
        metric: `appends/s, ${writers} writer process${writers > 1 ? 'es' : ''} (8 in flight each)`,
        oddjob: `PostgreSQL ${p.toFixed(0)}/s`,
        baseline: `SQLite ${s.toFixed(0)}/s`,
        ratio: p / s,
        note: `chain verified; vs 1 writer: PostgreSQL ×${(p / data.postgres![1]!).toFixed(2)}, SQLite ×${(s / data.sqlite![1]!).toFixed(2)}`,
      });
    }
    return { name: 'audit-writers', rows, data: { perWriter, appendsPerSec: data } };
  } finally {
    await pg.destroy();
    rmSync(dir, { recursive: true, force: true });
  }
}
