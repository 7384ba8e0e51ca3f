// Signing in to a real oddjob server (--auth github) through the fake GitHub, the way
// `oddjob login` does it (the device flow), for tests that need several people.
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FakeGitHub } from './fake-github.js';
import { startServerProcess, type ServerProcess } from './oddjob.js';

/** The device flow over HTTP. Returns the oddjob token the server issued to `login`. */
export async function deviceToken(base: string, gh: FakeGitHub, login: string): Promise<string> {
  const post = async (path: string, body?: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await res.text();
    return { status: res.status, text, json: () => JSON.parse(text) };
  };
  const start = await post('/auth/device');
  if (start.status !== 200) throw new Error(`POST /auth/device answered ${start.status}: ${start.text}`);
  const { deviceCode, userCode } = start.json() as { deviceCode: string; userCode: string };
  gh.approveDevice(userCode, login);
  const done = await post('/auth/device/token', { deviceCode });
  if (done.status !== 200) throw new Error(`device sign-in of ${login} answered ${done.status}: ${done.text}`);
  return (done.json() as { token: string }).token;
}

/**
 * Starts `oddjob server --auth github` against the fake GitHub (org `acme`) on `port`,
 * its session secret and store in `dir`; `extra` adds the flags a test needs.
 */
export async function startGitHubServer(opts: {
  port: number;
  gh: FakeGitHub;
  dir: string;
  namespaces: readonly string[];
  kubeconfig: string;
  db?: string;
  extra?: string[];
}): Promise<ServerProcess> {
  const secretFile = join(opts.dir, 'session-secret');
  if (!existsSync(secretFile)) writeFileSync(secretFile, `${randomBytes(36).toString('base64url')}\n`, { mode: 0o600 });
  const base = `http://127.0.0.1:${opts.port}`;
  return startServerProcess(
    [
      ...['--port', String(opts.port), '--auth', 'github', '--public-url', base],
      ...['--github-url', opts.gh.url, '--github-client-id', opts.gh.clientId, '--github-org', 'acme'],
      ...['--session-secret-file', secretFile, '--namespaces', opts.namespaces.join(','), '--kubeconfig', opts.kubeconfig],
      ...['--db', join(opts.dir, opts.db ?? 'audit.db'), ...(opts.extra ?? [])],
    ],
    { ODDJOB_GITHUB_CLIENT_SECRET: opts.gh.clientSecret },
  );
}
