// Helpers for fault tests (test/integration/faults.test.ts): restarting the
// local cluster's kube-apiserver, following a CLI process while it runs, a
// seeded random source, loopback ports and a small tmpfs that can be filled.
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { REPO_ROOT, eventually, type TestCluster } from './cluster.js';
import { BIN, type CliResult } from './oddjob.js';

const pexecFile = promisify(execFile);
const RESTART_SCRIPT = `${REPO_ROOT}hack/cluster/restart-apiserver.sh`;

export interface ApiServerRestart {
  /** From the signal until the process was gone. */
  stoppedMs: number;
  /** From the signal until /readyz answered 200 again. */
  readyMs: number;
}

/**
 * Crashes (SIGKILL) the local cluster's kube-apiserver, keeps it down for `downSeconds`,
 * starts it again with the same arguments and waits until it is ready.
 */
export async function restartApiServer(downSeconds = 0): Promise<ApiServerRestart> {
  const { stdout } = await pexecFile('bash', [RESTART_SCRIPT, '--signal', 'KILL', '--down', String(downSeconds)], { timeout: 150_000 });
  const m = /stopped_ms=(\d+) ready_ms=(\d+)/.exec(stdout);
  if (!m) throw new Error(`restart-apiserver.sh printed no timings:\n${stdout}`);
  return { stoppedMs: Number(m[1]), readyMs: Number(m[2]) };
}

/** The kube-apiserver answers /readyz (it accepts any TLS cert: this is a probe, not a client). */
export async function apiServerReady(): Promise<boolean> {
  try {
    execFileSync('curl', ['-fsSk', '--max-time', '5', 'https://127.0.0.1:6443/readyz'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** For after-hooks: whatever happened, leave a running kube-apiserver behind. */
export async function ensureApiServerUp(): Promise<void> {
  for (let i = 0; i < 20; i++) {
    if (await apiServerReady()) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  // Not running (a restart was interrupted): start it from the saved command line.
  await pexecFile('bash', [RESTART_SCRIPT, '--down', '0'], { timeout: 150_000 }).catch(() => undefined);
  if (!(await apiServerReady())) throw new Error('the kube-apiserver is not ready after a fault test; run `npm run cluster:up`');
}

/**
 * Waits until the (single) node's kubelet has renewed its Lease after `sinceMs`: the
 * kubelet talks to the restarted API server again, so pods get scheduled and the node
 * stays Ready. Resolves with how long that took after `sinceMs`.
 */
export async function waitForKubeletHeartbeat(cluster: TestCluster, sinceMs: number, timeoutMs = 120_000): Promise<number> {
  const nodes = await cluster.core.listNode();
  const node = nodes.items[0]?.metadata?.name;
  if (!node) throw new Error('the cluster has no node');
  const leases = cluster.kc.makeApiClient(k8s.CoordinationV1Api);
  return eventually(
    `the kubelet of ${node} to renew its lease after the API server restart`,
    async () => {
      const lease = await leases.readNamespacedLease({ name: node, namespace: 'kube-node-lease' });
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime as unknown as string).getTime() : 0;
      return renewed > sinceMs ? renewed - sinceMs : undefined;
    },
    timeoutMs,
  );
}

export interface LiveCli {
  proc: ChildProcess;
  stdout(): string;
  stderr(): string;
  /** When each stdout chunk arrived (ms since the epoch), for finding where a stream stalled. */
  arrivals: number[];
  /** Resolves once stdout matches `re`; rejects if the CLI exits first or time runs out. */
  waitForStdout(re: RegExp, timeoutMs?: number): Promise<void>;
  done: Promise<CliResult>;
}

const spawned = new Set<ChildProcess>();

/** For after-hooks: SIGKILLs every CLI started by spawnCli that is still running. */
export function killSpawnedClis(): void {
  for (const p of spawned) if (p.exitCode === null && p.signalCode === null) p.kill('SIGKILL');
  spawned.clear();
}

/** Starts the CLI and gives access to its output while it runs (runCli only returns at the end). */
export function spawnCli(args: string[], opts: { server: string; env?: NodeJS.ProcessEnv; timeoutMs?: number }): LiveCli {
  const proc = spawn(process.execPath, [BIN, ...args], {
    env: { ...process.env, ODDJOB_SERVER: opts.server, ODDJOB_TOKEN: '', ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  spawned.add(proc);
  proc.on('exit', () => spawned.delete(proc));
  const out: Buffer[] = [];
  let err = '';
  const listeners = new Set<() => void>();
  const arrivals: number[] = [];
  proc.stdout!.on('data', (d: Buffer) => {
    out.push(d);
    arrivals.push(Date.now());
    listeners.forEach((l) => l());
  });
  proc.stderr!.on('data', (d) => (err += d));
  const stdout = () => Buffer.concat(out).toString('utf8');
  const done = new Promise<CliResult>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`oddjob ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000} ms; stderr:\n${err}`));
    }, opts.timeoutMs ?? 120_000);
    proc.on('exit', (code) => {
      clearTimeout(timer);
      listeners.forEach((l) => l());
      setImmediate(() => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
    });
  });
  return {
    proc,
    stdout,
    stderr: () => err,
    arrivals,
    done,
    waitForStdout(re, timeoutMs = 60_000) {
      return new Promise<void>((resolve, reject) => {
        const check = () => {
          if (re.test(stdout())) finish(undefined);
          else if (proc.exitCode !== null || proc.signalCode !== null) {
            finish(new Error(`the CLI exited (${proc.exitCode ?? proc.signalCode}) before printing ${re}; stdout:\n${stdout()}\nstderr:\n${err}`));
          }
        };
        const timer = setTimeout(
          () => finish(new Error(`no ${re} on the CLI's stdout within ${timeoutMs} ms; stdout:\n${stdout()}\nstderr:\n${err}`)),
          timeoutMs,
        );
        const finish = (e: Error | undefined) => {
          clearTimeout(timer);
          listeners.delete(check);
          if (e) reject(e);
          else resolve();
        };
        listeners.add(check);
        check();
      });
    },
  };
}

/** A free loopback port (so a restarted server can come back on the same one). */

/** mulberry32: a small, fast PRNG; the same seed gives the same sequence on every run. */
export function seededRandom(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    pick: <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)]!,
  };
}

/** Mounts a tmpfs of `size` (e.g. "4m") at `dir`: a filesystem the test can fill to the brim. */
export function mountTmpfs(dir: string, size: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size},mode=0700`, 'oddjob-fault-tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    const stderr = (err as { stderr?: Buffer }).stderr?.toString() ?? '';
    throw new Error(`this test needs to mount a tmpfs (root with CAP_SYS_ADMIN): mount failed: ${stderr || (err as Error).message}`, {
      cause: err,
    });
  }
}

export function unmountTmpfs(dir: string): void {
  execFileSync('umount', ['-l', dir], { stdio: 'ignore' });
}

/** The longest pause between two consecutive arrivals, in ms. */
export function longestStall(arrivals: readonly number[]): number {
  let max = 0;
  for (let i = 1; i < arrivals.length; i++) max = Math.max(max, arrivals[i]! - arrivals[i - 1]!);
  return max;
}
