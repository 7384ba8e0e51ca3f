// Shared pieces of the benchmarks: timing a process, quantiles, sampling a
// process's CPU and RSS from /proc, and writing results (JSON + table rows).
import { spawn } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { REPO_ROOT } from '../test/support/cluster.js';

export const KUBECTL = `${process.env.ODDJOB_CACHE ?? '/var/cache/oddjob'}/k8s/v1.34.4/bin/kubectl`;

export interface BenchOptions {
  quick: boolean;
}

/** One line of the summary table every benchmark contributes to. */
export interface Row {
  benchmark: string;
  metric: string;
  oddjob: string;
  baseline?: string;
  ratio?: number;
  note?: string;
}

export interface BenchResult {
  name: string;
  rows: Row[];
  data: unknown;
}

export function quantile(xs: number[], q: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const i = (s.length - 1) * q;
  return s[Math.floor(i)]! + (s[Math.ceil(i)]! - s[Math.floor(i)]!) * (i - Math.floor(i));
}
export const median = (xs: number[]) => quantile(xs, 0.5);

export const ms = (x: number) => `${x.toFixed(x < 10 ? 2 : 0)} ms`;
export const mib = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(1)} MiB`;

/** Runs a process; records when its first stdout byte and its exit arrive. */
export function timed(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv = {},
  opts: { keepOutput?: boolean } = {},
): Promise<{ startAt: number; firstMs: number; lastMs: number; endMs: number; code: number; out: string; bytes: number; err: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    let firstMs = -1;
    let lastMs = -1;
    let out = '';
    let bytes = 0;
    let err = '';
    const p = spawn(cmd, args, { env: { ...process.env, ...env } });
    p.stdout.on('data', (d: Buffer) => {
      if (firstMs < 0) firstMs = performance.now() - t0;
      bytes += d.length;
      lastMs = performance.now() - t0;
      if (opts.keepOutput !== false) out += d;
    });
    p.stderr.on('data', (d) => (err += d));
    p.on('close', (code) => resolve({ startAt: t0, firstMs, lastMs, endMs: performance.now() - t0, code: code ?? -1, out, bytes, err }));
  });
}

const TICK_MS = 10; // USER_HZ is 100 on Linux

/** CPU time (user+system, ms) and RSS (bytes) of a process, from /proc. */
export function procStats(pid: number): { cpuMs: number; rssBytes: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const cpuMs = (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  const rss = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return { cpuMs, rssBytes: Number(rss?.[1] ?? 0) * 1024 };
}

/** Samples a process every `everyMs` until stopped: peak RSS and CPU used in the window. */
export function sampleProcess(pid: number, everyMs = 100) {
  const start = procStats(pid);
  const t0 = performance.now();
  let peakRss = start.rssBytes;
  const timer = setInterval(() => {
    try {
      peakRss = Math.max(peakRss, procStats(pid).rssBytes);
    } catch {
      // the process ended
    }
  }, everyMs);
  return {
    stop() {
      clearInterval(timer);
      const end = procStats(pid);
      const wallMs = performance.now() - t0;
      return { peakRssBytes: Math.max(peakRss, end.rssBytes), cpuMs: end.cpuMs - start.cpuMs, wallMs, cpuPercent: ((end.cpuMs - start.cpuMs) / wallMs) * 100 };
    },
  };
}

export function machine() {
  return { cpus: cpus().length, cpu: cpus()[0]?.model, node: process.version };
}

export function writeResults(all: BenchResult[], opts: BenchOptions): string {
  mkdirSync(`${REPO_ROOT}bench/results`, { recursive: true });
  const file = `${REPO_ROOT}bench/results/bench-${new Date().toISOString().replace(/[:.]/g, '-')}.json`;
  writeFileSync(file, JSON.stringify({ quick: opts.quick, machine: machine(), results: all }, null, 2));
  return file;
}

export function printTable(rows: Row[]): void {
  const cols = ['benchmark', 'metric', 'oddjob', 'baseline', 'ratio', 'note'] as const;
  const cells = rows.map((r) => [r.benchmark, r.metric, r.oddjob, r.baseline ?? '', r.ratio === undefined ? '' : r.ratio.toFixed(2), r.note ?? '']);
  const widths = cols.map((c, i) => Math.max(c.length, ...cells.map((row) => row[i]!.length)));
  const line = (xs: readonly string[]) =>
    xs
      .map((x, i) => x.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  console.log(`\n${line(cols)}\n${line(widths.map((w) => '-'.repeat(w)))}`);
  for (const c of cells) console.log(line(c));
}

export const sleep = (msTime: number) => new Promise((r) => setTimeout(r, msTime));
