// The sign-in pieces on their own: config rules, the GitHub client against the
// fake GitHub (pagination, every failure kind), the credential store on a real
// SQLite file, the authenticator's freshness and fail-closed rules, and the
// sign-in routes' rate limit and cookie flags.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import { CredentialStore } from '../../server/auth/credentials.js';
import { GitHubAuthenticator, presentedCredential } from '../../server/auth/github.js';
import { GitHubClient, GitHubError, nextLink } from '../../server/auth/github-api.js';
import { cookieOptions, createAuthRouter } from '../../server/auth/routes.js';
import { ConfigError, loadConfig } from '../../server/config.js';
import type { ServiceError } from '../../server/errors.js';
import { toApiError } from '../../server/http/errors.js';
import { createLogger } from '../../server/logger.js';
import { isAuditor, parseAuditors } from '../../server/policy/auditors.js';
import { FakeGitHub } from '../support/fake-github.js';
import { intruder } from '../support/intruder.js';
import { ENGINES, testStores } from '../support/stores.js';

const SECRET = 's'.repeat(40);
const logger = createLogger('fatal');
const stores = testStores('auth');
let gh: FakeGitHub;
before(async () => {
  gh = await new FakeGitHub().start();
  gh.addUser('alice', ['acme/a', 'acme/b', 'acme/c', 'Acme/D', 'other/a']);
  gh.addUser('bob', [], ['acme']);
});
after(() => gh.stop());

const client = () => new GitHubClient({ webUrl: gh.url, apiUrl: gh.apiUrl }, { clientId: gh.clientId, timeoutMs: 2000 });

describe('config: --auth github', () => {
  const base = ['--namespaces', 'demo', '--auth', 'github', '--github-org', 'acme'];
  const env = {
    ODDJOB_GITHUB_CLIENT_ID: 'Iv1.abc',
    ODDJOB_GITHUB_CLIENT_SECRET: 'client-secret-value',
    ODDJOB_SESSION_SECRET: SECRET,
    ODDJOB_PUBLIC_URL: 'https://oddjob.example.com',
  };
  const fails = (argv: string[], e: Record<string, string>, msg: RegExp) =>
    assert.throws(
      () => loadConfig([...base, ...argv], e),
      (err: Error) => err instanceof ConfigError && msg.test(err.message) && !err.message.includes('client-secret-value') && !err.message.includes(SECRET),
    );

  test('a complete config starts; the Enterprise API URL derives from --github-url', () => {
    const c = loadConfig([...base, '--github-url', 'https://ghe.example.com/'], env);
    assert.equal(c.githubApiUrl, 'https://ghe.example.com/api/v3');
    assert.equal(c.githubUrl, 'https://ghe.example.com');
    assert.equal(loadConfig(base, env).githubApiUrl, 'https://api.github.com');
    assert.equal(c.teamRefresh, 600, 'default ≤ 15 min');
  });
  test('each missing piece is named, with how to get it, and no secret is echoed', () => {
    fails([], { ...env, ODDJOB_PUBLIC_URL: '' }, /--public-url \(ODDJOB_PUBLIC_URL\) is required with --auth github: the GitHub OAuth callback/);
    fails([], { ...env, ODDJOB_GITHUB_CLIENT_ID: '' }, /--github-client-id .* is required/);
    fails([], { ...env, ODDJOB_GITHUB_CLIENT_SECRET: '' }, /--github-client-secret .* is required/);
    fails([], { ...env, ODDJOB_SESSION_SECRET: '' }, /--session-secret .* is required.*openssl rand/);
    fails([], { ...env, ODDJOB_SESSION_SECRET: 'short' }, /at least 32 bytes/);
    fails(['--public-url', 'ftp://x'], env, /--public-url .*http\(s\) URL/);
    fails(['--public-url', 'https://user:pw@x'], env, /without credentials/);
    fails(['--team-refresh', '1h'], env, /at most 15m/);
    fails(['--auditors', 'not a login!'], env, /--auditors .*neither a GitHub login nor an org\/team/);
    fails(['--trust-proxy', 'sometimes'], env, /--trust-proxy .*not an address/);
  });
  test('secrets come from files too (trimmed), but not from both places', () => {
    const dir = mkdtempSync(join(tmpdir(), 'oddjob-cfg-'));
    writeFileSync(join(dir, 'cs'), 'from-file\n');
    writeFileSync(join(dir, 'empty'), '\n');
    const c = loadConfig([...base, '--github-client-secret-file', join(dir, 'cs')], { ...env, ODDJOB_GITHUB_CLIENT_SECRET: '' });
    assert.equal(c.githubClientSecret, 'from-file');
    fails(['--github-client-secret-file', join(dir, 'cs')], env, /give --github-client-secret or --github-client-secret-file, not both/);
    fails(['--session-secret-file', join(dir, 'nope')], { ...env, ODDJOB_SESSION_SECRET: '' }, /cannot read .*no such file/);
    fails(['--session-secret-file', join(dir, 'empty')], { ...env, ODDJOB_SESSION_SECRET: '' }, /the file is empty/);
  });
  test('--trust-proxy accepts false, hop counts and address lists', () => {
    assert.equal(loadConfig([...base, '--trust-proxy', 'false'], env).trustProxy, false);
    assert.equal(loadConfig([...base, '--trust-proxy', '2'], env).trustProxy, 2);
    assert.deepEqual(loadConfig([...base, '--trust-proxy', '10.0.0.0/8, loopback'], env).trustProxy, ['10.0.0.0/8', 'loopback']);
  });
  test('--trust-proxy true is refused in favour of a hop count or addresses', () => {
    fails(['--trust-proxy', 'true'], env, /--trust-proxy \(ODDJOB_TRUST_PROXY\): true would believe any client's X-Forwarded-For.*number of proxies/);
    fails([], { ...env, ODDJOB_TRUST_PROXY: 'true' }, /--trust-proxy .*hop|number of proxies/);
  });
  test('without --github-org, GitHub mode refuses to start unless any GitHub user is explicitly allowed', () => {
    const noOrg = ['--namespaces', 'demo', '--auth', 'github'];
    assert.throws(
      () => loadConfig(noOrg, env),
      (err: Error) =>
        err instanceof ConfigError && /--github-org \(ODDJOB_GITHUB_ORG\) is not set, so every GitHub account .*--allow-any-github-user/.test(err.message),
    );
    assert.throws(() => loadConfig([...noOrg, '--allow-any-github-user', 'false'], env), /every GitHub account/);
    assert.equal(loadConfig([...noOrg, '--allow-any-github-user'], env).allowAnyGithubUser, true);
    assert.equal(loadConfig([...noOrg, '--allow-any-github-user', '--log-level', 'warn'], env).githubOrg, undefined);
    assert.equal(loadConfig(noOrg, { ...env, ODDJOB_ALLOW_ANY_GITHUB_USER: 'true' }).allowAnyGithubUser, true);
    assert.throws(() => loadConfig(noOrg, { ...env, ODDJOB_ALLOW_ANY_GITHUB_USER: 'yes' }), /--allow-any-github-user .*must be true or false/);
    // --auth dev has no GitHub accounts to worry about.
    assert.equal(loadConfig(['--namespaces', 'demo', '--auth', 'dev'], {}).githubOrg, undefined);
  });
  test('--api-rate-limit and --output-retention', () => {
    const c = loadConfig(base, env);
    assert.equal(c.apiRateLimit, 600);
    assert.equal(c.outputRetention, 30 * 86400);
    assert.equal(loadConfig([...base, '--api-rate-limit', '5', '--output-retention', '7d'], env).outputRetention, 7 * 86400);
    fails(['--api-rate-limit', '0'], env, /--api-rate-limit .*at least 1/);
    fails(['--output-retention', 'forever'], env, /--output-retention .*not a duration/);
  });
  test('--metrics-port', () => {
    assert.equal(loadConfig(base, env).metricsPort, undefined);
    assert.equal(loadConfig([...base, '--metrics-port', '9090'], env).metricsPort, 9090);
    fails(['--metrics-port', '70000'], env, /--metrics-port .*1 to 65535/);
    fails(['--metrics-port', '8080', '--port', '8080'], env, /must differ from --port/);
  });
  test('--auth dev still refuses non-loopback addresses', () => {
    assert.throws(() => loadConfig(['--namespaces', 'demo', '--auth', 'dev', '--host', '0.0.0.0'], {}), /only listens on a loopback address/);
  });
});

describe('auditors', () => {
  test('logins and org/team slugs, case-insensitive', () => {
    const list = parseAuditors(['Erin', 'acme/Security']);
    assert.ok(isAuditor({ login: 'erin', teams: [] }, list));
    assert.ok(isAuditor({ login: 'x', teams: ['ACME/security'] }, list));
    assert.ok(!isAuditor({ login: 'x', teams: ['other/security'] }, list));
  });
});

describe('GitHub client against the fake GitHub', () => {
  test('profile: login, name and every team across Link-paginated pages, lower-cased and sorted', async () => {
    const p = await client().profile(gh.issueToken('alice'));
    assert.equal(p.login, 'alice');
    assert.deepEqual(p.teams, ['acme/a', 'acme/b', 'acme/c', 'acme/d', 'other/a']);
    const pages = gh.requests.filter((r) => r.path.startsWith('/api/v3/user/teams'));
    assert.equal(pages.length, 3);
    assert.equal(pages[0]!.headers.accept, 'application/vnd.github+json');
  });
  test('org membership: active member true, non-member false; required org refuses non-members', async () => {
    const c = client();
    const bob = gh.issueToken('bob');
    assert.equal(await c.isOrgMember(bob, 'acme'), true);
    assert.equal(await c.isOrgMember(bob, 'other'), false);
    await assert.rejects(
      c.profile(bob, 'other'),
      (e: GitHubError) => e.kind === 'not_member' && /bob is not a member of the GitHub organization other/.test(e.message),
    );
  });
  test('failures are classified: bad token, rate limit, outage, unreachable', async () => {
    const c = client();
    await assert.rejects(c.profile('gho_unknown'), (e: GitHubError) => e.kind === 'unauthorized');
    const t = gh.issueToken('alice');
    gh.rateLimited = true;
    await assert.rejects(c.profile(t), (e: GitHubError) => e.kind === 'rate_limited' && /rate-limiting oddjob until 20\d\d-/.test(e.message));
    gh.rateLimited = false;
    gh.outage = 503;
    await assert.rejects(c.profile(t), (e: GitHubError) => e.kind === 'unavailable' && /answered 503/.test(e.message));
    gh.outage = undefined;
    const nowhere = new GitHubClient({ webUrl: 'http://127.0.0.1:9', apiUrl: 'http://127.0.0.1:9' }, { clientId: 'x', timeoutMs: 2000 });
    await assert.rejects(nowhere.profile(t), (e: GitHubError) => e.kind === 'unavailable' && /cannot be reached/.test(e.message));
  });
  test('a pagination link outside the configured API is not followed', async () => {
    const evil = express();
    evil.get('/user/teams', (_req, res) => {
      res.setHeader('link', '<http://attacker.example/steal?page=2>; rel="next"');
      res.json([]);
    });
    const srv = evil.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      await assert.rejects(
        new GitHubClient({ webUrl: url, apiUrl: url }, { clientId: 'x' }).teams('t'),
        (e: GitHubError) => e.kind === 'bad_response' && /outside its API/.test(e.message),
      );
    } finally {
      srv.close();
    }
  });
  test('nextLink reads RFC 8288 headers as GitHub writes them', () => {
    assert.equal(
      nextLink('<https://api.github.com/user/teams?page=2>; rel="next", <https://api.github.com/user/teams?page=5>; rel="last"'),
      'https://api.github.com/user/teams?page=2',
    );
    assert.equal(nextLink('<https://x/?page=1>; rel="prev", <https://x/?page=1>; rel="first"'), undefined);
    assert.equal(nextLink(null), undefined);
  });
  test('device flow: start, pending, approved; expired and denied', async () => {
    const c = client();
    const d = await c.startDeviceFlow(['read:org']);
    assert.match(d.user_code, /^[0-9A-F]{4}-[0-9A-F]{4}$/);
    assert.deepEqual(await c.pollDeviceFlow(d.device_code), { status: 'pending' });
    gh.approveDevice(d.user_code, 'bob');
    const ok = await c.pollDeviceFlow(d.device_code);
    assert.equal(ok.status, 'ok');
    assert.deepEqual(await c.pollDeviceFlow(d.device_code), { status: 'expired' }, 'a used device code is gone');
    const e = await c.startDeviceFlow(['read:org']);
    gh.denyDevice(e.user_code);
    assert.deepEqual(await c.pollDeviceFlow(e.device_code), { status: 'denied' });
  });
});

for (const engine of ENGINES) {
  describe(`credential store (${engine})`, () => {
    test('only the hash is stored; lookup by kind; expiry and revocation end it; the GitHub token is sealed', async () => {
      let now = 1_000_000;
      const s = await stores.open(engine);
      const store = new CredentialStore(s.credentials, SECRET, () => now);
      const { secret, credential } = await store.create({
        kind: 'token',
        identity: { login: 'alice', teams: ['acme/a'] },
        githubToken: 'gho_plaintext',
        ttlMs: 60_000,
        description: 'ci',
      });
      assert.match(secret, /^odjt_[A-Za-z0-9_-]{43}$/);
      const other = stores.track(await intruder(s.target));
      const raw = JSON.stringify((await other.run('SELECT * FROM auth_credentials')).rows, (_k, v) =>
        v?.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v,
      );
      assert.ok(raw.includes('alice'), 'the rows were read');
      assert.ok(!raw.includes(secret) && !raw.includes(secret.slice(5)) && !raw.includes('gho_plaintext'));
      assert.equal((await store.lookup(secret, 'token'))?.id, credential.id);
      assert.equal(await store.lookup(secret, 'session'), null, 'a token is not a session');
      assert.equal(await store.lookup(`${secret}x`, 'token'), null);
      assert.equal(await store.githubToken(credential.id), 'gho_plaintext');
      assert.equal(await new CredentialStore(s.credentials, 'k'.repeat(40)).githubToken(credential.id), null, 'another key cannot open it');
      // Any replica (another connection) checks the same credential.
      const replica = new CredentialStore((await stores.reopen(s.target)).credentials, SECRET, () => now);
      assert.equal((await replica.lookup(secret, 'token'))?.id, credential.id);
      now += 60_000;
      assert.equal(await store.lookup(secret, 'token'), null, 'expired');
      now -= 30_000;
      assert.ok((await store.revoke(credential.id)).revoked);
      assert.ok(!(await store.revoke(credential.id)).revoked, 'revoking twice is a no-op');
      assert.equal(await store.lookup(secret, 'token'), null, 'revoked');
      assert.equal(await replica.lookup(secret, 'token'), null, 'revoked on every replica');
      assert.deepEqual(await store.list({ login: 'alice', teams: [] }), []);
    });
  });
}

describe('GitHub authenticator', () => {
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;

  test('presented credentials: bearer wins over cookie; malformed headers are not ignored', () => {
    assert.deepEqual(presentedCredential(req({ authorization: 'Bearer odjt_abc', cookie: 'oddjob_session=odjs_x' })), { secret: 'odjt_abc', kind: 'token' });
    assert.deepEqual(presentedCredential(req({ cookie: 'a=b; oddjob_session=odjs_x' })), { secret: 'odjs_x', kind: 'session' });
    assert.equal(presentedCredential(req({ authorization: 'Basic x' })), 'malformed');
    assert.equal(presentedCredential(req({})), null);
  });

  test('teams are re-checked after the bound, once for many concurrent requests; failures fail closed', async () => {
    let now = 5_000_000;
    const credentials = new CredentialStore((await stores.open('sqlite')).credentials, SECRET, () => now);
    const revoked: string[] = [];
    const auth = new GitHubAuthenticator({
      credentials,
      github: client(),
      teamRefreshMs: 60_000,
      auditors: parseAuditors([]),
      logger,
      now: () => now,
      onRevoked: (_c, why) => revoked.push(why),
    });
    const ghToken = gh.issueToken('alice');
    const { secret } = await credentials.create({ kind: 'token', identity: { login: 'alice', teams: ['stale/team'] }, githubToken: ghToken, ttlMs: 3_600_000 });
    const r = req({ authorization: `Bearer ${secret}` });
    assert.deepEqual((await auth.authenticate(r))!.identity.teams, ['stale/team'], 'fresh enough: no GitHub call');
    now += 60_000;
    const before = gh.requests.length;
    const all = await Promise.all(Array.from({ length: 10 }, () => auth.authenticate(r)));
    assert.ok(all.every((p) => p!.identity.teams.includes('acme/a') && !p!.identity.teams.includes('stale/team')));
    assert.equal(gh.requests.filter((x, i) => i >= before && x.path === '/api/v3/user').length, 1, 'one re-check for ten requests');

    now += 60_000;
    gh.outage = 502;
    await assert.rejects(auth.authenticate(r), (e: ServiceError) => toApiError(e).status === 503 && /GitHub cannot answer right now/.test(e.message));
    gh.outage = undefined;
    assert.ok(await auth.authenticate(r));

    now += 60_000;
    gh.revoke('alice');
    await assert.rejects(auth.authenticate(r), (e: ServiceError) => toApiError(e).status === 401 && /GitHub no longer accepts/.test(e.message));
    assert.equal(revoked.length, 1);
    await assert.rejects(auth.authenticate(r), (e: ServiceError) => toApiError(e).status === 401 && /not valid/.test(e.message), 'stays revoked');
  });
});

describe('sign-in routes', () => {
  test('rate limited per address with a clear 429; cookies are Secure behind https', async () => {
    const store = await stores.open('sqlite');
    const app = express();
    const auth = { mode: 'github' as const, authenticate: async () => null };
    const credentials = new CredentialStore(store.credentials, SECRET);
    app.use(
      '/auth',
      createAuthRouter({
        auth,
        publicUrl: () => 'https://oddjob.example.com',
        audit: store.audit,
        logger,
        clientOf: () => ({ kind: 'cli' }),
        rateLimitPerMinute: 3,
        github: {
          clientId: gh.clientId,
          clientSecret: gh.clientSecret,
          urls: { webUrl: gh.url, apiUrl: gh.apiUrl },
          github: client(),
          credentials,
          sessionTtlMs: 1000,
          tokenTtlMs: 1000,
          stateKey: Buffer.alloc(32),
        },
      }),
    );
    const srv = app.listen(0, '127.0.0.1');
    await new Promise((r) => srv.once('listening', r));
    const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
    try {
      const codes: number[] = [];
      let last: Response | undefined;
      for (let i = 0; i < 4; i++) {
        last = await fetch(`${url}/auth/github`, { redirect: 'manual' });
        codes.push(last.status);
      }
      assert.deepEqual(codes, [302, 302, 302, 429]);
      assert.match(((await last!.json()) as { error: { message: string } }).error.message, /too many sign-in requests/);
      const first = await fetch(`${url}/auth/info`);
      assert.deepEqual(await first.json(), { mode: 'github', signIn: '/auth/github' });
    } finally {
      srv.close();
    }
    assert.equal(cookieOptions('https://oddjob.example.com').secure, true);
    assert.equal(cookieOptions('http://127.0.0.1:8080').secure, false);
    assert.equal(cookieOptions('https://x').httpOnly, true);
  });
});
