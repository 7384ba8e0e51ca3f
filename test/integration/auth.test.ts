// GitHub sign-in end to end: the real server process with --auth github against a
// fake GitHub Enterprise Server (test/support/fake-github.ts), the real CLI binary,
// and the real cluster. Proves the browser flow and the CLI device flow, the
// allow/deny matrix over HTTP, WebSocket and CLI (each denial audited), and that
// revoked/expired tokens, tampered cookies, cross-origin requests, a GitHub outage
// and a removal from a team all fail closed with clear messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { optedInDeployment, createTestNamespace, eventually, requireCluster, type TestCluster } from '../support/cluster.js';
import { FakeGitHub } from '../support/fake-github.js';
import { BIN, runCli, startServerProcess, type ServerProcess } from '../support/oddjob.js';
import { freePort } from '../support/net.js';

let cluster: TestCluster;
let ns: { name: string; dispose: () => Promise<void> };
let gh: FakeGitHub;
let server: ServerProcess;
let base: string;
let dir: string;
const SESSION_SECRET = 'test-session-secret-0123456789-abcdefghijklmnop';
const REFRESH_S = 3;

before(async () => {
  cluster = await requireCluster();
  ns = await createTestNamespace(cluster, 'auth-e2e');
  await cluster.apps.createNamespacedDeployment({
    namespace: ns.name,
    body: optedInDeployment('api', { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/allowed-users': 'bob' }),
  });
  gh = await new FakeGitHub().start();
  // alice: in acme/payments among enough teams to need several pages.
  gh.addUser('alice', ['acme/platform', 'acme/oncall', 'acme/payments', 'acme/search', 'acme/web']);
  gh.addUser('bob', [], ['acme']); // listed by login, in no team
  gh.addUser('carol', ['other/payments'], ['acme', 'other']); // same slug, another org
  gh.addUser('dave', ['acme/web']); // nobody
  gh.addUser('erin', ['acme/security']); // an auditor
  gh.addUser('mallory', ['evil/payments']); // not in the required org
  dir = mkdtempSync(join(tmpdir(), 'oddjob-auth-'));
  writeFileSync(join(dir, 'session-secret'), `${SESSION_SECRET}\n`, { mode: 0o600 });
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startServerProcess(
    [
      '--port',
      String(port),
      '--auth',
      'github',
      '--public-url',
      base,
      // Enterprise Server shape: only the web URL; the API URL derives as URL/api/v3.
      '--github-url',
      gh.url,
      '--github-client-id',
      gh.clientId,
      '--github-org',
      'acme',
      '--auditors',
      'acme/security',
      '--session-secret-file',
      join(dir, 'session-secret'),
      '--team-refresh',
      `${REFRESH_S}s`,
      '--auth-rate-limit',
      '1000',
      '--namespaces',
      ns.name,
      '--kubeconfig',
      cluster.kubeconfigPath,
      '--db',
      join(dir, 'audit.db'),
    ],
    { ODDJOB_GITHUB_CLIENT_SECRET: gh.clientSecret },
  );
});

after(async () => {
  await server?.kill();
  await gh?.stop();
  await ns?.dispose();
});

// ---- helpers ---------------------------------------------------------------

interface Answer {
  status: number;
  headers: Headers;
  body: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- the tests read many body shapes; the asserts check them
  json(): any;
}
async function http(
  method: string,
  path: string,
  opts: { token?: string; cookie?: string; body?: unknown; origin?: string; headers?: Record<string, string> } = {},
): Promise<Answer> {
  const headers: Record<string, string> = { ...opts.headers };
  if (opts.token) headers.authorization = `Bearer ${opts.token}`;
  if (opts.cookie) headers.cookie = opts.cookie;
  if (opts.origin) headers.origin = opts.origin;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${base}${path}`, { method, headers, body: opts.body === undefined ? undefined : JSON.stringify(opts.body), redirect: 'manual' });
  const body = await res.text();
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body) };
}

function setCookies(res: { headers: Headers }): Map<string, string> {
  const out = new Map<string, string>();
  for (const c of res.headers.getSetCookie()) out.set(c.slice(0, c.indexOf('=')), c);
  return out;
}
const cookieValue = (setCookie: string) => setCookie.slice(0, setCookie.indexOf(';'));

/** The browser flow, step by step, as a browser follows it. Returns the session cookie. */
async function browserSignIn(login: string, next?: string): Promise<{ cookie: string; setCookie: string; location: string }> {
  gh.actAs = login;
  const start = await http('GET', `/auth/github${next ? `?next=${encodeURIComponent(next)}` : ''}`);
  assert.equal(start.status, 302, start.body);
  const authorize = new URL(start.headers.get('location')!);
  assert.equal(authorize.origin + authorize.pathname, `${gh.url}/login/oauth/authorize`);
  assert.equal(authorize.searchParams.get('scope'), 'read:org');
  assert.equal(authorize.searchParams.get('redirect_uri'), `${base}/auth/github/callback`);
  const state = setCookies(start).get('oddjob_oauth_state')!;
  assert.ok(state, 'a state cookie is set');
  const atGitHub = await fetch(authorize, { redirect: 'manual' });
  assert.equal(atGitHub.status, 302);
  const callback = new URL(atGitHub.headers.get('location')!);
  const done = await http('GET', callback.pathname + callback.search, { cookie: cookieValue(state) });
  assert.equal(done.status, 303, done.body);
  const session = setCookies(done).get('oddjob_session');
  assert.ok(session, 'a session cookie is set');
  return { cookie: cookieValue(session), setCookie: session, location: done.headers.get('location')! };
}

/** The device flow over HTTP (what `oddjob login` does). Returns the oddjob token. */
async function deviceSignIn(login: string): Promise<string> {
  const start = await http('POST', '/auth/device');
  assert.equal(start.status, 200, start.body);
  const { deviceCode, userCode } = start.json();
  const pending = await http('POST', '/auth/device/token', { body: { deviceCode } });
  assert.equal(pending.status, 202);
  assert.equal(pending.json().status, 'pending');
  gh.approveDevice(userCode, login);
  const done = await http('POST', '/auth/device/token', { body: { deviceCode } });
  assert.equal(done.status, 200, done.body);
  return done.json().token as string;
}

function cli(args: string[], env: NodeJS.ProcessEnv = {}) {
  return runCli(args, { server: base, env: { XDG_CONFIG_HOME: join(dir, 'nobody'), ...env } });
}

async function wsOpen(path: string, headers: Record<string, string>): Promise<{ status: number; body?: string }> {
  return new Promise((resolve) => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}${path}`, { headers });
    ws.on('open', () => {
      ws.close();
      resolve({ status: 101 });
    });
    ws.on('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    ws.on('error', () => undefined);
  });
}

const runBody = (command: string[] = ['sh', '-c', 'echo ran']) => ({ namespace: ns.name, deployment: 'api', command });

// ---- tests -----------------------------------------------------------------

describe('GitHub sign-in', () => {
  const tokens: Record<string, string> = {};

  test('browser: redirect → GitHub → callback → session; whoami has every team (paginated)', async () => {
    const { cookie, setCookie, location } = await browserSignIn('alice', '/runs');
    assert.equal(location, '/runs', 'returns to where sign-in started');
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Lax/i);
    assert.match(setCookie, /Path=\//);
    assert.doesNotMatch(setCookie, /Secure/, 'plain http public URL: no Secure flag (it would break the cookie)');
    const me = await http('GET', '/api/whoami', { cookie });
    assert.equal(me.status, 200, me.body);
    assert.deepEqual(me.json(), {
      login: 'alice',
      id: gh.users.get('alice')!.id, // GitHub's numeric user id: what identity is keyed by
      name: 'Alice Example',
      teams: ['acme/oncall', 'acme/payments', 'acme/platform', 'acme/search', 'acme/web'],
      auditor: false,
      auth: 'session',
    });
    // Teams came in pages of 2 through the Link header, all from the Enterprise API path.
    const teamCalls = gh.requests.filter((r) => r.path.startsWith('/api/v3/user/teams'));
    assert.ok(teamCalls.length >= 3, `expected >= 3 pages, got ${teamCalls.map((r) => r.path)}`);
    assert.ok(
      gh.requests.every((r) => !r.path.startsWith('/api/v3') || r.headers['user-agent']),
      'every API call has a User-Agent',
    );
    tokens.aliceCookie = cookie;
  });

  test('browser: state mismatch, missing state cookie, a bad code and a non-member are refused with clear pages', async () => {
    gh.actAs = 'alice';
    const start = await http('GET', '/auth/github');
    const state = cookieValue(setCookies(start).get('oddjob_oauth_state')!);
    const atGitHub = await fetch(start.headers.get('location')!, { redirect: 'manual' });
    const cb = new URL(atGitHub.headers.get('location')!);
    const noCookie = await http('GET', cb.pathname + cb.search);
    assert.equal(noCookie.status, 403);
    assert.match(noCookie.body, /started in another browser|could not be verified/);
    assert.equal(setCookies(noCookie).get('oddjob_session'), undefined);
    const forged = new URL(cb);
    forged.searchParams.set('state', 'forged-state');
    const mismatch = await http('GET', forged.pathname + forged.search, { cookie: state });
    assert.equal(mismatch.status, 403);
    assert.match(mismatch.body, /state mismatch/);
    const tampered = await http('GET', cb.pathname + cb.search, { cookie: state.replace(/.$/, (c) => (c === 'A' ? 'B' : 'A')) });
    assert.equal(tampered.status, 403);
    assert.match(tampered.body, /tampered/);

    // Fresh flow with a code GitHub never issued.
    const again = await http('GET', '/auth/github');
    const state2 = cookieValue(setCookies(again).get('oddjob_oauth_state')!);
    const st = new URL(again.headers.get('location')!).searchParams.get('state')!;
    const bad = await http('GET', `/auth/github/callback?code=not-a-real-code&state=${st}`, { cookie: state2 });
    assert.equal(bad.status, 400, bad.body);
    assert.match(bad.body, /GitHub did not accept the sign-in code: it may have expired or been used already/);
    assert.doesNotMatch(bad.body, /at .*\.js:\d+/, 'no stack trace');

    // mallory is not a member of the required org acme.
    gh.actAs = 'mallory';
    const m = await http('GET', '/auth/github');
    const mState = cookieValue(setCookies(m).get('oddjob_oauth_state')!);
    const mGh = await fetch(m.headers.get('location')!, { redirect: 'manual' });
    const mCb = new URL(mGh.headers.get('location')!);
    const refused = await http('GET', mCb.pathname + mCb.search, { cookie: mState });
    assert.equal(refused.status, 403);
    assert.match(refused.body, /mallory is not a member of the GitHub organization acme/);
    assert.equal(setCookies(refused).get('oddjob_session'), undefined);
  });

  test('CLI: oddjob login (device flow) saves a 0600 token; whoami and tokens work; logout revokes', async () => {
    const home = mkdtempSync(join(tmpdir(), 'oddjob-cli-home-'));
    const env = { XDG_CONFIG_HOME: home, ODDJOB_SERVER: base, ODDJOB_TOKEN: '' };
    const p = spawn(process.execPath, [BIN, 'login', '--description', 'laptop'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d) => (err += d));
    const code = await eventually('the one-time code', async () => /one-time code: (\S+)/.exec(err)?.[1], 30_000);
    assert.match(err, new RegExp(`open ${gh.url}/login/device`));
    gh.approveDevice(code, 'bob');
    const exit = await new Promise<number | null>((r) => p.on('exit', r));
    assert.equal(exit, 0, err);
    assert.match(err, /Signed in to .* as bob \(teams: \(none\)\)/);
    const file = join(home, 'oddjob', 'config.json');
    assert.equal(statSync(file).mode & 0o777, 0o600);
    // Saved as the current context of this server (cli/config.ts).
    const file_ = JSON.parse(readFileSync(file, 'utf8'));
    const saved = file_.contexts[file_.currentContext];
    assert.equal(saved.server, base);
    assert.match(saved.token, /^odjt_/);

    const who = await runCli(['whoami'], { server: '', env: { ...env, ODDJOB_SERVER: '' } });
    assert.equal(who.code, 0, who.stderr);
    assert.match(who.stdout.toString(), /login:\s+bob\n[\s\S]*via:\s+token/);
    const list = await runCli(['tokens'], { server: base, env });
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout.toString(), /\*[0-9a-f]{12}\s+token\s+laptop/);

    const out = await runCli(['logout'], { server: base, env });
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stderr, /Signed out .* the token is revoked/);
    assert.equal(JSON.parse(readFileSync(file, 'utf8')).contexts[file_.currentContext].token, undefined, 'token forgotten locally');
    const denied = await http('GET', '/api/whoami', { token: saved.token });
    assert.equal(denied.status, 401);
    assert.match(denied.json().error.message, /not valid \(unknown, expired or revoked\)/);
    const cliDenied = await runCli(['whoami'], { server: base, env: { ...env, ODDJOB_TOKEN: saved.token } });
    assert.equal(cliDenied.code, 1);
    assert.match(cliDenied.stderr, /oddjob login/);
  });

  test('unauthenticated: 401 with a hint to oddjob login, on HTTP and WebSocket', async () => {
    const r = await http('GET', '/api/runs');
    assert.equal(r.status, 401);
    assert.match(r.json().error.hint, /oddjob login/);
    const garbage = await http('GET', '/api/runs', { headers: { authorization: 'Basic Zm9vOmJhcg==' } });
    assert.equal(garbage.status, 401);
    const ws = await wsOpen('/api/runs/aaaaaaaaaaaa/stream', {});
    assert.equal(ws.status, 401);
  });

  test('matrix: listed user, team member, same slug in another org, nobody — over HTTP, WebSocket and CLI; denials audited', async () => {
    for (const who of ['alice', 'bob', 'carol', 'dave', 'erin']) tokens[who] = await deviceSignIn(who);
    const expected: Record<string, boolean> = { alice: true, bob: true, carol: false, dave: false };
    // HTTP
    const created: Record<string, string> = {};
    for (const [who, allowed] of Object.entries(expected)) {
      const r = await http('POST', '/api/runs', { token: tokens[who], body: runBody() });
      if (allowed) {
        assert.equal(r.status, 201, `${who}: ${r.body}`);
        created[who] = r.json().id;
      } else {
        assert.equal(r.status, 403, `${who}: ${r.body}`);
        assert.match(r.json().error.message, new RegExp(`you \\(${who}\\) are not in acme/payments or the allowed users of ${ns.name}/api`));
      }
    }
    // WebSocket: a stream of alice's run, opened by each user with their token.
    for (const [who, allowed] of Object.entries(expected)) {
      const r = await wsOpen(`/api/runs/${created.alice}/stream?follow=0`, { authorization: `Bearer ${tokens[who]}` });
      if (allowed) assert.equal(r.status, 101, `${who}: ${r.status} ${r.body}`);
      else assert.ok(r.status === 403 || r.status === 404, `${who} must not see alice's run: ${r.status} ${r.body}`);
    }
    // CLI: exit code of the command, or 125 with the reason.
    for (const [who, allowed] of Object.entries(expected)) {
      const r = await cli(['run', '-n', ns.name, 'deploy/api', '--', 'sh', '-c', 'echo hello from $0', who], { ODDJOB_TOKEN: tokens[who] });
      if (allowed) {
        assert.equal(r.code, 0, `${who}: ${r.stderr}`);
        assert.equal(r.stdout.toString(), `hello from ${who}\n`);
      } else {
        assert.equal(r.code, 125, `${who}: ${r.stderr}`);
        assert.match(r.stderr, new RegExp(`you \\(${who}\\) are not in acme/payments or the allowed users`));
      }
    }
    // Each denial (2 users × HTTP + CLI) is in the audit log, readable by the auditor.
    const denied = await http('GET', '/api/audit?type=run.denied&limit=100', { token: tokens.erin });
    assert.equal(denied.status, 200, denied.body);
    const byUser = (u: string) => denied.json().items.filter((e: { actor: { login: string } }) => e.actor.login === u).length;
    assert.equal(byUser('carol'), 2);
    assert.equal(byUser('dave'), 2);
    assert.equal(byUser('alice') + byUser('bob'), 0);
    // A non-auditor sees only their own events, and may not ask for another's.
    const own = await http('GET', '/api/audit?limit=100', { token: tokens.dave });
    assert.ok(own.json().items.length >= 2 && own.json().items.every((e: { actor: { login: string } }) => e.actor.login === 'dave'));
    assert.equal((await http('GET', '/api/audit?user=carol', { token: tokens.dave })).status, 403);
    assert.equal((await http('GET', '/api/audit/verify', { token: tokens.dave })).status, 403);
    assert.equal((await http('GET', '/api/audit/verify', { token: tokens.erin })).json().ok, true);
  });

  test('cookie sessions: CSRF-safe mutations, cross-origin WebSocket refused, tampered cookie refused', async () => {
    const cookie = tokens.aliceCookie!;
    const cross = await http('POST', '/api/runs', { cookie, origin: 'http://evil.example', body: runBody() });
    assert.equal(cross.status, 403);
    assert.match(cross.json().error.message, /requests from http:\/\/evil\.example are not accepted/);
    const noOrigin = await http('POST', '/api/runs', { cookie, body: runBody() });
    assert.equal(noOrigin.status, 403);
    assert.match(noOrigin.json().error.message, /did not come from an oddjob page/);
    const same = await http('POST', '/api/runs', { cookie, origin: base, body: runBody() });
    assert.equal(same.status, 201, same.body);
    const id = same.json().id;
    assert.equal((await wsOpen(`/api/runs/${id}/stream?follow=0`, { cookie, origin: 'http://evil.example' })).status, 403);
    assert.equal((await wsOpen(`/api/runs/${id}/stream?follow=0`, { cookie })).status, 403, 'a cookie without Origin is not a browser we trust');
    assert.equal((await wsOpen(`/api/runs/${id}/stream?follow=0`, { cookie, origin: base })).status, 101);
    // Flip one character of the session secret: unknown credential.
    const tampered = cookie.replace(/.$/, (c) => (c === 'x' ? 'y' : 'x'));
    const t = await http('GET', '/api/whoami', { cookie: tampered });
    assert.equal(t.status, 401);
    assert.match(t.json().error.message, /session has ended/);
    // Sign-out from the page ends the session.
    const { cookie: c2 } = await browserSignIn('alice');
    assert.equal((await http('POST', '/auth/logout', { cookie: c2, origin: 'http://evil.example' })).status, 403);
    const out = await http('POST', '/auth/logout', { cookie: c2, origin: base });
    assert.equal(out.status, 204);
    assert.match(out.headers.getSetCookie().join(), /oddjob_session=;.*Max-Age=0/);
    assert.equal((await http('GET', '/api/whoami', { cookie: c2 })).status, 401);
  });

  test('tokens: create for automation, expire, revoke — each fails closed afterwards', async () => {
    const mk = await http('POST', '/auth/tokens', { token: tokens.bob, body: { description: 'ci', expiresIn: '2s' } });
    assert.equal(mk.status, 201, mk.body);
    const short = mk.json().token;
    assert.equal((await http('GET', '/api/whoami', { token: short })).status, 200);
    const tooLong = await http('POST', '/auth/tokens', { token: tokens.bob, body: { description: 'ci', expiresIn: '400d' } });
    assert.equal(tooLong.status, 400);
    assert.match(tooLong.json().error.message, /at most/);
    await new Promise((r) => setTimeout(r, 2200));
    const expired = await http('GET', '/api/whoami', { token: short });
    assert.equal(expired.status, 401);
    assert.match(expired.json().error.message, /expired or revoked/);

    const mk2 = await http('POST', '/auth/tokens', { token: tokens.bob, body: { description: 'to revoke' } });
    const { id, token } = mk2.json();
    // Someone else cannot revoke it (and cannot learn it exists).
    assert.equal((await http('DELETE', `/auth/tokens/${id}`, { token: tokens.dave })).status, 404);
    assert.equal((await http('DELETE', `/auth/tokens/${id}`, { token: tokens.bob })).status, 204);
    assert.equal((await http('GET', '/api/whoami', { token })).status, 401);
    const r = await cli(['runs'], { ODDJOB_TOKEN: token });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /not valid[\s\S]*oddjob login/);
  });

  test('team freshness: removed from a team → denied within the refresh bound; GitHub outage and rate limit fail closed; revoked at GitHub → signed out', async () => {
    const alice = gh.users.get('alice')!;
    alice.teams = alice.teams.filter((t) => t !== 'acme/payments');
    try {
      // Within the bound the old teams may still count; after it, they must not.
      await new Promise((r) => setTimeout(r, REFRESH_S * 1000 + 200));
      const r = await http('POST', '/api/runs', { token: tokens.alice, body: runBody() });
      assert.equal(r.status, 403, r.body);
      assert.match(r.json().error.message, /you \(alice\) are not in acme\/payments/);
    } finally {
      alice.teams.push('acme/payments');
    }
    await new Promise((r) => setTimeout(r, REFRESH_S * 1000 + 200));
    // Every failed GitHub call is counted by kind, for the operator's alert.
    const githubErrors = async (kind: string) => {
      const m = new RegExp(`^oddjob_github_api_errors_total\\{kind="${kind}"\\} (\\d+)$`, 'm').exec(await (await fetch(`${base}/metrics`)).text());
      return m ? Number(m[1]) : 0;
    };
    const [unavailableBefore, rateLimitedBefore] = [await githubErrors('unavailable'), await githubErrors('rate_limited')];
    gh.outage = 502;
    try {
      const down = await http('POST', '/api/runs', { token: tokens.alice, body: runBody() });
      assert.equal(down.status, 503, down.body);
      assert.match(down.json().error.message, /GitHub cannot answer right now \(GitHub answered 502/);
      const wsDown = await wsOpen('/api/runs/aaaaaaaaaaaa/stream', { authorization: `Bearer ${tokens.alice}` });
      assert.equal(wsDown.status, 503);
    } finally {
      gh.outage = undefined;
    }
    assert.ok((await githubErrors('unavailable')) > unavailableBefore, 'the outage is counted');
    gh.rateLimited = true;
    try {
      const limited = await http('GET', '/api/whoami', { token: tokens.alice });
      assert.equal(limited.status, 503);
      assert.match(limited.json().error.message, /rate-limiting/);
    } finally {
      gh.rateLimited = false;
    }
    assert.ok((await githubErrors('rate_limited')) > rateLimitedBefore, 'the rate limit is counted');
    assert.equal((await http('GET', '/api/whoami', { token: tokens.alice })).status, 200, 'back once GitHub is');

    gh.revoke('dave');
    await new Promise((r) => setTimeout(r, REFRESH_S * 1000 + 200));
    const gone = await http('GET', '/api/whoami', { token: tokens.dave });
    assert.equal(gone.status, 401);
    assert.match(gone.json().error.message, /GitHub no longer accepts your sign-in/);
    const revocations = await http('GET', '/api/audit?type=token.revoked&user=dave', { token: tokens.erin });
    assert.match(JSON.stringify(revocations.json().items), /revoked by the server: GitHub no longer accepts/);
  });

  test('device flow: expired and denied codes end with clear errors', async () => {
    const a = (await http('POST', '/auth/device')).json();
    gh.expireDevice(a.userCode);
    const expired = await http('POST', '/auth/device/token', { body: { deviceCode: a.deviceCode } });
    assert.equal(expired.status, 410);
    assert.match(expired.json().error.hint, /oddjob login/);
    const b = (await http('POST', '/auth/device')).json();
    gh.denyDevice(b.userCode);
    const denied = await http('POST', '/auth/device/token', { body: { deviceCode: b.deviceCode } });
    assert.equal(denied.status, 403);
    const bad = await http('POST', '/auth/device/token', { body: { deviceCode: 5 } });
    assert.equal(bad.status, 400);
  });

  test('no secret ever reaches the logs, the audit log or the database in the clear', async () => {
    const read = (f: string) => (existsSync(f) ? readFileSync(f).toString('latin1') : '');
    const db = read(join(dir, 'audit.db')) + read(join(dir, 'audit.db-wal'));
    const logs = server.logs();
    const exportAll = (await http('GET', '/api/audit/export', { token: tokens.erin })).body;
    const secrets = [gh.clientSecret, SESSION_SECRET, ...Object.values(tokens).map((t) => t.replace(/^oddjob_session=/, ''))];
    const githubTokens = gh.requests.flatMap((r) => /^Bearer (gho_\S+)/.exec(String(r.headers.authorization ?? ''))?.[1] ?? []);
    assert.ok(githubTokens.length > 0);
    for (const s of [...secrets, ...githubTokens]) {
      assert.ok(!logs.includes(s), `a secret is in the server log: ${s.slice(0, 6)}…`);
      assert.ok(!exportAll.includes(s), `a secret is in the audit log: ${s.slice(0, 6)}…`);
      assert.ok(!db.includes(s), `a secret is in the database file: ${s.slice(0, 6)}…`);
    }
  });
});
