// A local HTTPS server that answers like the Kubernetes API server, from bodies
// recorded on the real cluster (test/fixtures/k8s/, see its README), so unit
// tests can drive the watch and log readers' failure paths on purpose (the way
// client-node tests its own Watch). What the readers do against a real API
// server stays proven by the integration tests.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import type http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';

export interface Call {
  path: string;
  query: URLSearchParams;
  req: http.IncomingMessage;
  res: http.ServerResponse;
}

export interface KubeReplay {
  kc: k8s.KubeConfig;
  /** Every request so far, in order. */
  calls: Call[];
  /** Resolves when the n-th request (1-based) has arrived. */
  call(n: number): Promise<Call>;
  close(): Promise<void>;
}

const FIXTURES = new URL('../fixtures/k8s/', import.meta.url);

export function fixture(name: string): string {
  return readFileSync(new URL(name, FIXTURES), 'utf8');
}

/** A Status answer exactly as the API server sends one: JSON with a Content-Length. */
export function sendStatus(res: http.ServerResponse, code: number, body: string): void {
  res.writeHead(code, {
    'Audit-Id': 'replay',
    'Cache-Control': 'no-cache, private',
    'Content-Type': 'application/json',
    'Content-Length': Buffer.byteLength(body),
  });
  res.end(body);
}

/** The head of a streamed answer (watch: application/json, log: text/plain), chunked. */
export function startStream(res: http.ServerResponse, contentType: 'application/json' | 'text/plain'): void {
  res.writeHead(200, { 'Audit-Id': 'replay', 'Cache-Control': 'no-cache, private', 'Content-Type': contentType, 'Transfer-Encoding': 'chunked' });
  res.flushHeaders();
}

let tls: { key: string; cert: string } | undefined;
/** A throwaway certificate for 127.0.0.1: client-node refuses plain HTTP, as it should. */
function certificate(): { key: string; cert: string } {
  if (tls) return tls;
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-kube-replay-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:P-256',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=127.0.0.1',
        '-addext',
        'subjectAltName=IP:127.0.0.1',
        '-keyout',
        join(dir, 'key.pem'),
        '-out',
        join(dir, 'cert.pem'),
      ],
      { stdio: 'pipe' },
    );
    tls = { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
    return tls;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function startKubeReplay(handle: (call: Call) => void): Promise<KubeReplay> {
  const { key, cert } = certificate();
  const calls: Call[] = [];
  const waiters: Array<{ n: number; resolve: (c: Call) => void }> = [];
  const server = https.createServer({ key, cert }, (req, res) => {
    const url = new URL(req.url ?? '/', 'https://x');
    const call = { path: url.pathname, query: url.searchParams, req, res };
    calls.push(call);
    for (const w of waiters.filter((w) => w.n === calls.length)) w.resolve(call);
    handle(call);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ name: 'replay', server: `https://127.0.0.1:${port}`, caData: Buffer.from(cert).toString('base64') }],
    users: [{ name: 'replay', token: 'replay-token' }],
    contexts: [{ name: 'replay', cluster: 'replay', user: 'replay' }],
    currentContext: 'replay',
  });
  return {
    kc,
    calls,
    call: (n) => (calls.length >= n ? Promise.resolve(calls[n - 1]!) : new Promise((resolve) => waiters.push({ n, resolve }))),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
