// One writer process of the audit chain (several run at once in tests and the bench,
// standing in for server replicas): appends COUNT events, CONCURRENCY in flight at a
// time (the group commit sees them as one server's concurrent runs), then prints
// {"appended":N,"ms":T} on stdout. The target comes from ODDJOB_WRITER_TARGET (JSON).
import { openStore } from '../../server/store/index.js';
import type { DbTarget } from '../../server/store/target.js';

const target = JSON.parse(process.env.ODDJOB_WRITER_TARGET!) as DbTarget;
const name = process.env.ODDJOB_WRITER_NAME ?? `w${process.pid}`;
const count = Number(process.env.ODDJOB_WRITER_COUNT ?? 100);
const concurrency = Number(process.env.ODDJOB_WRITER_CONCURRENCY ?? 8);
const store = await openStore(target, { maxConnections: 2 });
// Start together: the parent releases every writer at once through stdin.
process.stdout.write('ready\n');
await new Promise((r) => process.stdin.once('data', r));
const t0 = performance.now();
let next = 0;
const lane = async () => {
  while (next < count) {
    const i = next++;
    await store.audit.append({
      type: 'run.requested',
      actor: { login: name, teams: [] },
      client: { kind: 'server' },
      runId: `${name}${String(i).padStart(6, '0')}`.slice(0, 12),
      reason: `${name}/${i}`,
    });
  }
};
await Promise.all(Array.from({ length: concurrency }, lane));
const ms = performance.now() - t0;
await store.close();
process.stdout.write(`${JSON.stringify({ appended: count, ms })}\n`);
process.stdin.destroy();
