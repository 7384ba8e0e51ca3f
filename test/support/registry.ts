// A real image registry on loopback for tests that need the kubelet to really pull:
// the local cluster has every image imported, so without one no run ever shows
// Pulling. distribution's `registry` (built from the Go module proxy into the
// version-keyed cache by hack/cluster/build-registry.sh, built here when missing)
// serves the demo image under a fresh tag per test, pushed from containerd's own copy.
//
// containerd (1.6, no registry config) speaks plain HTTP to a registry on
// localhost/127.0.0.1 by default, so the cluster needs no change to pull from it.
//
// In front of it sits a gate: a pass-through proxy that can hold manifest requests,
// so a test sees the pull in progress (Pulling shown, Pulled not yet) before it lets
// the pull finish. The kubelet pulls through the gate; the test pushes directly.
import { execFile, execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { REPO_ROOT, DEMO_IMAGE } from './cluster.js';

const pexecFile = promisify(execFile);
const NAMESPACE = 'k8s.io'; // the kubelet's containerd namespace

/** Where hack/cluster/build-registry.sh puts the binary (same variables as the script). */
function registryBinary(): string {
  const r = spawnSync('bash', ['-c', `. "${REPO_ROOT}hack/cluster/versions.sh" && echo "$REGISTRY_BIN/registry"`], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`could not read hack/cluster/versions.sh: ${r.stderr}`);
  return r.stdout.trim();
}

/** The cached registry binary, built first when missing (cold: ~10 min; later: instant). */
export function ensureRegistryBinary(): string {
  const bin = registryBinary();
  if (existsSync(bin)) return bin;
  const built = spawnSync('bash', [`${REPO_ROOT}hack/cluster/build-registry.sh`], { stdio: ['ignore', 'inherit', 'inherit'] });
  if (built.status !== 0 || !existsSync(bin)) throw new Error(`building the local registry failed (bash hack/cluster/build-registry.sh): exit ${built.status}`);
  return bin;
}

export interface RegistryRequest {
  method: string;
  path: string;
}

export interface LocalRegistry {
  /** host:port the cluster pulls from (the gate). */
  pullHost: string;
  /** Every request that reached the gate, in order. */
  requests: RegistryRequest[];
  /** Copies the demo image to a new, never-used tag; returns the reference to pull. */
  pushDemo(repo: string): Promise<string>;
  /** Holds manifest requests until release() (the pull stays in progress). */
  hold(): void;
  release(): void;
  /** Removes images pulled from it from the node, stops the gate and the registry. */
  close(): Promise<void>;
}

export async function startLocalRegistry(): Promise<LocalRegistry> {
  const bin = ensureRegistryBinary();
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-registry-'));
  writeFileSync(
    join(dir, 'config.yml'),
    [
      'version: 0.1',
      'log: { level: info }',
      `storage: { filesystem: { rootdirectory: ${join(dir, 'data')} } }`,
      `http: { addr: "127.0.0.1:0", secret: "${randomBytes(16).toString('hex')}" }`,
      '',
    ].join('\n'),
  );
  const proc: ChildProcess = spawn(bin, ['serve', join(dir, 'config.yml')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  proc.stdout!.on('data', (d) => (log += d));
  proc.stderr!.on('data', (d) => (log += d));
  const registryHost = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the registry did not listen within 20 s:\n${log}`)), 20_000);
    const onData = () => {
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(log);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]!);
      }
    };
    proc.stderr!.on('data', onData);
    proc.stdout!.on('data', onData);
    proc.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the registry exited with ${code}:\n${log}`));
    });
  });

  const requests: RegistryRequest[] = [];
  let held: (() => void)[] | undefined;
  const [upHost, upPort] = registryHost.split(':') as [string, string];
  const gate = http.createServer((req, res) => {
    requests.push({ method: req.method!, path: req.url! });
    const forward = () => {
      const up = http.request({ host: upHost, port: Number(upPort), method: req.method, path: req.url, headers: req.headers }, (upRes) => {
        res.writeHead(upRes.statusCode!, upRes.headers);
        upRes.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (held && req.url!.includes('/manifests/')) held.push(forward);
    else forward();
  });
  await new Promise<void>((r) => gate.listen(0, '127.0.0.1', r));
  const pullHost = `127.0.0.1:${(gate.address() as { port: number }).port}`;

  const release = () => {
    const waiting = held ?? [];
    held = undefined;
    for (const go of waiting) go();
  };
  return {
    pullHost,
    requests,
    async pushDemo(repo) {
      const tag = `pull-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
      // Pushed from containerd's copy of the demo image without tagging it there, so
      // the node does not have the new reference: the kubelet has to pull it.
      await pexecFile('ctr', ['-n', NAMESPACE, 'images', 'push', '--plain-http', `${registryHost}/${repo}:${tag}`, DEMO_IMAGE], { timeout: 60_000 });
      const ref = `${pullHost}/${repo}:${tag}`;
      return ref;
    },
    hold() {
      held ??= [];
    },
    release,
    async close() {
      release();
      // The node keeps what it pulled, by tag and by digest; remove both (the layers are
      // the demo image's, so they stay).
      const refs = execFileSync('ctr', ['-n', NAMESPACE, 'images', 'ls', '-q'], { encoding: 'utf8' })
        .split('\n')
        .filter((ref) => ref.startsWith(`${pullHost}/`));
      if (refs.length) execFileSync('ctr', ['-n', NAMESPACE, 'images', 'rm', ...refs], { stdio: 'ignore' });
      gate.closeAllConnections();
      await new Promise<void>((r) => gate.close(() => r()));
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once('exit', r));
        proc.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Whether containerd holds `ref` (the kubelet's namespace). */
export async function nodeHasImage(ref: string): Promise<boolean> {
  const { stdout } = await pexecFile('ctr', ['-n', NAMESPACE, 'images', 'ls', '-q', `name==${ref}`]);
  return stdout.trim() === ref;
}
