// Runs the real oddjob binaries for end-to-end tests: the server as a child
// process (as users run it) and the CLI as a process whose exit code, stdout
// and stderr we read byte for byte.
import { spawn, type ChildProcess } from 'node:child_process';
import { after, afterEach } from 'node:test';
import { REPO_ROOT } from './cluster.js';

// The crash detector: a server that exits while a test is using it fails that test,
// with its exit code and last log lines, even when every assertion passed (a client
// that reconnects can hide a crash). Registered once per test file, at its root.
const unexpectedExits: string[] = [];
function checkNoServerCrashed() {
  if (unexpectedExits.length === 0) return;
  const report = `an oddjob server exited unexpectedly during this test:\n${unexpectedExits.splice(0).join('\n\n')}`;
  // Also on stderr: node:test keeps only a test's first error, and an assertion that
  // failed because of the crash would otherwise hide the crash itself.
  console.error(report);
  throw new Error(report);
}
afterEach(checkNoServerCrashed);
after(checkNoServerCrashed);

// A failed test prints the log tail of every server it had running: in CI that log is
// all there is to learn why (the harness keeps no other copy).
const liveServers = new Set<{ label: string; logs: () => string }>();
afterEach((t) => {
  // `passed` is there on Node 22+ (our @types/node predates it).
  if ((t as { passed?: boolean }).passed !== false || liveServers.size === 0) return;
  for (const s of liveServers) console.error(`--- ${t.name} failed; the last log lines of ${s.label}:\n${tailLines(s.logs(), 80)}\n---`);
});

/** The last `n` lines of a log, for failure messages. */
export function tailLines(text: string, n = 40): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}

export const BIN = `${REPO_ROOT}bin/oddjob.mjs`;

export interface ServerProcess {
  url: string;
  proc: ChildProcess;
  logs(): string;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `oddjob server` (the repo's, or `bin` from an installed package) on a random loopback port and waits until /readyz answers 200. */
export async function startServerProcess(args: string[], env: NodeJS.ProcessEnv = {}, bin = BIN): Promise<ServerProcess> {
  // ODDJOB_SERVER_CPU_PROF=DIR writes a V8 CPU profile of each server to DIR when it exits
  // (how the benchmark numbers in docs/benchmarks.md were explained).
  const prof = process.env.ODDJOB_SERVER_CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.ODDJOB_SERVER_CPU_PROF}`] : [];
  const proc = spawn(process.execPath, [...prof, bin, 'server', '--host', '127.0.0.1', '--port', '0', ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => (out += d));
  proc.stderr!.on('data', (d) => (out += d));
  // A server that fails to start is killed, not left behind: its open pipes would keep
  // the test process (and the whole suite) from ever exiting.
  const started = waitForReady(proc, () => out);
  started.catch(() => proc.kill('SIGKILL'));
  const url = await started;
  let stopping = false;
  const live = { label: `server ${url} (oddjob server ${args.join(' ')})`, logs: () => out };
  liveServers.add(live);
  proc.on('exit', (code, signal) => {
    liveServers.delete(live);
    if (stopping) return;
    unexpectedExits.push(`server ${url} (oddjob ${args.join(' ')}) exited with ${signal ?? `code ${code}`}; its last log lines:\n${tailLines(out)}`);
  });
  return {
    url,
    proc,
    logs: () => out,
    kill: (signal = 'SIGTERM') =>
      new Promise<void>((resolve) => {
        stopping = true;
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill(signal);
      }),
  };
}

/** The server's URL once it listens and answers /readyz with 200. */
async function waitForReady(proc: ReturnType<typeof spawn>, logs: () => string): Promise<string> {
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start in 30 s:\n${logs()}`)), 30_000);
    const onData = () => {
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(logs());
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stdout!.on('data', onData);
    proc.stderr!.on('data', onData);
    proc.on('exit', (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`server exited with ${signal ?? `code ${code}`} before listening:\n${logs()}`));
    });
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    const r = await fetch(`${url}/readyz`).catch(() => undefined);
    if (r?.status === 200) return url;
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error(`server exited before it was ready:\n${logs()}`);
    if (Date.now() > deadline) throw new Error(`server at ${url} never became ready:\n${logs()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface CliResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs the CLI to completion. `input` is written to its stdin (then closed). */
export function runCli(args: string[], opts: { server: string; env?: NodeJS.ProcessEnv; input?: string; timeoutMs?: number }): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [BIN, ...args], {
      env: { ...process.env, ODDJOB_SERVER: opts.server, ODDJOB_TOKEN: '', ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    let err = '';
    proc.stdout.on('data', (d: Buffer) => out.push(d));
    proc.stderr.on('data', (d) => (err += d));
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`oddjob ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 120_000} ms; stderr:\n${err}`));
    }, opts.timeoutMs ?? 120_000);
    if (opts.input !== undefined) proc.stdin.end(opts.input);
    else proc.stdin.end();
    // 'close', not 'exit': 'exit' can come before the pipes are drained, and a large
    // output's last bytes would be missing from the result.
    proc.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}
