// Benchmark 5: footprint. A fresh server's RSS idle (nothing run yet) and after the
// other benchmarks (what a used server keeps), then with V concurrent live WebSocket
// streams (V/4 viewers on each of 4 runs that print a line every 100 ms).
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import type { ServerProcess } from '../test/support/oddjob.js';
import { type ClusterEnv, clearJobs } from './env.js';
import { type BenchOptions, type BenchResult, mib, procStats, sampleProcess, sleep } from './lib.js';

export async function footprintBench(env: ClusterEnv, opts: BenchOptions): Promise<BenchResult> {
  const viewers = opts.quick ? 20 : 100;
  const runsN = 4;
  await clearJobs(env, env.ns);
  const usedIdle = procStats(env.server.proc.pid!).rssBytes;
  const srv = await env.startServer();
  try {
    await sleep(3000);
    return await measure(env, srv, viewers, runsN, usedIdle, opts);
  } finally {
    await srv.kill();
  }
}

async function measure(env: ClusterEnv, srv: ServerProcess, viewers: number, runsN: number, usedIdle: number, opts: BenchOptions): Promise<BenchResult> {
  const pid = srv.proc.pid!;
  const idle = procStats(pid).rssBytes;

  const ids: string[] = [];
  for (let i = 0; i < runsN; i++) {
    const r = await fetch(`${srv.url}/api/runs`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        namespace: env.ns,
        deployment: 'api',
        command: ['sh', '-c', 'i=0; while [ $i -lt 600 ]; do echo "tick $i"; i=$((i+1)); sleep 0.1; done'],
      }),
    });
    if (r.status !== 201) throw new Error(`run not created: ${r.status} ${await r.text()}`);
    ids.push(((await r.json()) as { id: string }).id);
  }
  const sockets: WebSocket[] = [];
  const received = new Array<number>(viewers).fill(0);
  const t0 = performance.now();
  await Promise.all(
    Array.from(
      { length: viewers },
      (_, v) =>
        new Promise<void>((resolve, reject) => {
          const ws = new WebSocket(`${srv.url.replace('http', 'ws')}/api/runs/${ids[v % runsN]}/stream?from=0&follow=1`);
          ws.on('message', (d: Buffer) => (received[v]! += d.length));
          ws.once('open', () => resolve());
          ws.once('error', reject);
          sockets.push(ws);
        }),
    ),
  );
  const connectMs = performance.now() - t0;
  const sampler = sampleProcess(pid, 200);
  await sleep(opts.quick ? 5000 : 15_000);
  const live = sampler.stop();
  const silent = received.filter((b) => b === 0).length;
  for (const ws of sockets) ws.terminate();
  for (const id of ids) await fetch(`${srv.url}/api/runs/${id}/cancel`, { method: 'POST' });
  await clearJobs(env, env.ns);
  const data = { idleRssBytes: idle, usedIdleRssBytes: usedIdle, viewers, runs: runsN, connectMs, live, viewersWithoutData: silent };
  return {
    name: 'footprint',
    rows: [
      { benchmark: 'footprint', metric: 'server RSS idle', oddjob: `${mib(idle)} fresh`, note: `${mib(usedIdle)} after the benchmarks before it` },
      {
        benchmark: 'footprint',
        metric: `server with ${viewers} live streams`,
        oddjob: `peak RSS ${mib(live.peakRssBytes)}, CPU ${live.cpuPercent.toFixed(0)}% of a core`,
        note: `${runsN} runs × ${viewers / runsN} viewers; all connected in ${connectMs.toFixed(0)} ms; ${silent} viewers got no data`,
      },
    ],
    data,
  };
}
