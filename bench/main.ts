// npm run bench [-- --quick] [-- --only latency,launch,stream,audit,writers,footprint,failover,fanout,schedules]
// Measured side by side in one run on the real local cluster, reported as ratios:
//   latency    time to first output / exit: oddjob run vs the best raw kubectl sequence
//   launch     N concurrent runs through the API vs the same Jobs created with client-node
//   stream     M MiB read live: oddjob run vs kubectl logs -f on the same pod; server CPU/RSS
//   audit      append rate, query p50/p99 and verify time on 1M events (no cluster)
//   writers    audit appends/s with 1, 2, 4 writer processes, SQLite vs PostgreSQL (no cluster)
//   footprint  server RSS idle and with 100 live streams
//   failover   leader killed / stopped → another replica leads (p50/p99)
//   fanout     line latency for a viewer on the other replica vs the owner (PostgreSQL)
//   schedules  slot → Job created p50/p99 at 1, 100, 1,000 every-minute schedules; scheduler CPU per tick
// Results: a table on stdout and JSON in bench/results/. Details: docs/benchmarks.md.
import { auditBench } from './audit.js';
import { auditWritersBench } from './audit-writers.js';
import { type ClusterEnv, startClusterEnv } from './env.js';
import { fanoutBench } from './fanout.js';
import { failoverBench } from './failover.js';
import { footprintBench } from './footprint.js';
import { latencyBench } from './latency.js';
import { launchBench } from './launch.js';
import { type BenchOptions, type BenchResult, machine, printTable, writeResults } from './lib.js';
import { schedulesBench } from './schedules.js';
import { streamBench } from './stream.js';

const ALL = ['latency', 'launch', 'stream', 'audit', 'writers', 'footprint', 'failover', 'fanout', 'schedules'] as const;
type Name = (typeof ALL)[number];

function parseArgs(argv: string[]): { opts: BenchOptions; only: Name[] } {
  const opts = { quick: false };
  let only: Name[] = [...ALL];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--quick') opts.quick = true;
    else if (a === '--only' || a.startsWith('--only=')) {
      const v = a.includes('=') ? a.slice(7) : argv[++i];
      const names = (v ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean);
      const unknown = names.filter((n) => !ALL.includes(n as Name));
      if (names.length === 0 || unknown.length)
        throw new Error(`--only takes a comma-separated list of ${ALL.join(', ')}${unknown.length ? `; unknown: ${unknown.join(', ')}` : ''}`);
      only = names as Name[];
    } else if (a === '--help' || a === '-h') {
      console.log(`usage: npm run bench [-- --quick] [-- --only ${ALL.join(',')}]`);
      process.exit(0);
    } else throw new Error(`unknown option ${a} (try --help)`);
  }
  return { opts, only };
}

async function main() {
  const { opts, only } = parseArgs(process.argv.slice(2));
  const results: BenchResult[] = [];
  const needsCluster = only.some((n) => n !== 'audit' && n !== 'writers');
  let env: ClusterEnv | undefined;
  try {
    if (needsCluster) env = await startClusterEnv();
    for (const name of only) {
      process.stderr.write(`\n== ${name}${opts.quick ? ' (quick)' : ''} ==\n`);
      if (name === 'audit') results.push(await auditBench(opts));
      else if (name === 'writers') results.push(await auditWritersBench(opts));
      else if (name === 'latency') results.push(await latencyBench(env!, opts));
      else if (name === 'launch') results.push(await launchBench(env!, opts));
      else if (name === 'stream') results.push(await streamBench(env!, opts));
      else if (name === 'failover') results.push(await failoverBench(env!, opts));
      else if (name === 'fanout') results.push(await fanoutBench(env!, opts));
      else if (name === 'schedules') results.push(await schedulesBench(env!, opts));
      else results.push(await footprintBench(env!, opts));
    }
  } finally {
    await env?.dispose();
  }
  const m = machine();
  console.log(`\noddjob benchmarks${opts.quick ? ' (--quick)' : ''} on ${m.cpus} × ${m.cpu ?? 'cpu'}, Node ${m.node}`);
  printTable(results.flatMap((r) => r.rows));
  console.log(`\nJSON: ${writeResults(results, opts)}`);
}

main().catch((err) => {
  console.error(`bench failed: ${(err as Error).message}`);
  process.exit(1);
});
