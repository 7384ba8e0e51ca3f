// Tokens minted by tokens, and identity keyed by GitHub's numeric user id, on a real
// store (both engines where the store decides) with the real sign-in routes and authenticator against the fake GitHub:
// a token never outlives the credential that creates it, revoking a credential
// revokes what it minted (however deep), and a login registered again by another
// account inherits nothing of its previous holder's sessions and tokens.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import express from 'express';
import { CredentialStore } from '../../server/auth/credentials.js';
import { GitHubAuthenticator, identityOf } from '../../server/auth/github.js';
import { GitHubClient } from '../../server/auth/github-api.js';
import { createAuthRouter } from '../../server/auth/routes.js';
import { sendError, toApiError } from '../../server/http/errors.js';
import type { ServiceError } from '../../server/errors.js';
import { createLogger } from '../../server/logger.js';
import { parseAuditors } from '../../server/policy/auditors.js';
import { isRunOwner } from '../../protocol/owner.js';
import { FakeGitHub } from '../support/fake-github.js';
import { ENGINES, testStores } from '../support/stores.js';

const SECRET = 's'.repeat(40);
const HOUR = 3_600_000;
const logger = createLogger('fatal');
const stores = testStores('tokens');
let gh: FakeGitHub;
before(async () => {
  gh = await new FakeGitHub().start();
});
after(() => gh.stop());

const alice = { login: 'alice', id: 11, teams: [] };

for (const engine of ENGINES) {
  describe(`credential store: parents and children (${engine})`, () => {
    test('a child expires no later than its parent, and revoking a parent revokes its descendants', async () => {
      let now = 1_000_000;
      const store = new CredentialStore((await stores.open(engine)).credentials, SECRET, () => now);
      const login = await store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: 2 * HOUR });
      const child = await store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: 30 * 24 * HOUR, parentId: login.credential.id });
      assert.equal(child.credential.expiresAt, login.credential.expiresAt, 'clamped to the parent');
      assert.equal(child.credential.parentId, login.credential.id);
      const grandchild = await store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: HOUR, parentId: child.credential.id });
      assert.equal(grandchild.credential.expiresAt, now + HOUR, 'a shorter lifetime is kept');
      const sibling = await store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: HOUR });

      // Revoking a child leaves its parent alone.
      assert.deepEqual(await store.revoke(grandchild.credential.id), { revoked: true, children: [] });
      assert.ok(await store.lookup(child.secret, 'token'));
      const other = await store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: HOUR, parentId: child.credential.id });

      const r = await store.revoke(login.credential.id);
      assert.equal(r.revoked, true);
      assert.deepEqual(r.children.sort(), [child.credential.id, other.credential.id].sort(), 'the live descendants, each once');
      for (const s of [login.secret, child.secret, other.secret, grandchild.secret]) assert.equal(await store.lookup(s, 'token'), null);
      assert.ok(await store.lookup(sibling.secret, 'token'), 'an unrelated token lives on');
      await assert.rejects(store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: HOUR, parentId: login.credential.id }), /not live/);
      now += 3 * HOUR;
      await assert.rejects(
        store.create({ kind: 'token', identity: alice, githubToken: 'gho_x', ttlMs: HOUR, parentId: sibling.credential.id }),
        /not live/,
        'an expired parent mints nothing',
      );
    });
  });
}

/** The sign-in routes with the real authenticator, over HTTP. */
async function signInServer() {
  const store = await stores.open('sqlite');
  const credentials = new CredentialStore(store.credentials, SECRET);
  const audit = store.audit;
  const github = new GitHubClient({ webUrl: gh.url, apiUrl: gh.apiUrl }, { clientId: gh.clientId, timeoutMs: 2000 });
  const auth = new GitHubAuthenticator({ credentials, github, teamRefreshMs: 0, auditors: parseAuditors([]), logger });
  const app = express();
  app.use(
    '/auth',
    createAuthRouter({
      auth,
      publicUrl: () => 'http://127.0.0.1',
      audit,
      logger,
      clientOf: () => ({ kind: 'cli' }),
      rateLimitPerMinute: 1000,
      github: {
        clientId: gh.clientId,
        clientSecret: gh.clientSecret,
        urls: { webUrl: gh.url, apiUrl: gh.apiUrl },
        github,
        credentials,
        sessionTtlMs: 12 * HOUR,
        tokenTtlMs: 30 * 24 * HOUR,
        stateKey: Buffer.alloc(32),
      },
    }),
  );
  app.use((err: ServiceError, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    sendError(res, err);
  });
  const srv = app.listen(0, '127.0.0.1');
  await new Promise((r) => srv.once('listening', r));
  const url = `http://127.0.0.1:${(srv.address() as AddressInfo).port}`;
  const call = async (method: string, path: string, token: string, body?: unknown) => {
    const res = await fetch(`${url}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : undefined };
  };
  /** What `oddjob login` ends with: a token for whoever GitHub says owns `ghToken`. */
  const login = async (ghToken: string, ttlMs = 30 * 24 * HOUR) => {
    const identity = identityOf(await github.profile(ghToken));
    return credentials.create({ kind: 'token', identity, githubToken: ghToken, ttlMs, description: 'oddjob login' });
  };
  return { credentials, audit, call, login, close: () => srv.close() };
}

describe('POST /auth/tokens and DELETE /auth/tokens/:id', () => {
  test('a token cannot mint a token that outlives it; the default lifetime is cut to the parent', async () => {
    gh.addUser('minter', [], ['acme']);
    const s = await signInServer();
    try {
      const parent = await s.login(gh.issueToken('minter'), 2 * HOUR);
      const longer = await s.call('POST', '/auth/tokens', parent.secret, { description: 'ci', expiresIn: '3h' });
      assert.equal(longer.status, 400, JSON.stringify(longer.body));
      assert.match(longer.body.error.message, /expiresIn would outlive the token you are creating it with, which expires /);
      assert.match(longer.body.error.hint, /at most \d+s, or sign in again/);
      const dflt = await s.call('POST', '/auth/tokens', parent.secret, { description: 'ci' });
      assert.equal(dflt.status, 201, JSON.stringify(dflt.body));
      assert.equal(Date.parse(dflt.body.expiresAt), parent.credential.expiresAt, 'the 30d default is cut to the parent');
      const shorter = await s.call('POST', '/auth/tokens', parent.secret, { description: 'ci', expiresIn: '1h' });
      assert.equal(shorter.status, 201);
      // A child cannot stretch the chain either.
      const grand = await s.call('POST', '/auth/tokens', shorter.body.token, { description: 'ci', expiresIn: '90m' });
      assert.equal(grand.status, 400);
      const events = (await s.audit.query({ type: 'token.created', limit: 10 })).items;
      assert.match(events.at(-1)!.message!, new RegExp(`created with token ${parent.credential.id}`));
    } finally {
      s.close();
    }
  });

  test('revoking a token revokes the tokens it minted, and their children, and the audit log says which', async () => {
    gh.addUser('revoker', [], ['acme']);
    const s = await signInServer();
    try {
      const parent = await s.login(gh.issueToken('revoker'));
      const bystander = await s.login(gh.issueToken('revoker'));
      const child = (await s.call('POST', '/auth/tokens', parent.secret, { description: 'ci' })).body;
      const grandchild = (await s.call('POST', '/auth/tokens', child.token, { description: 'nightly' })).body;
      assert.equal((await s.call('GET', '/auth/tokens', grandchild.token)).status, 200);

      const del = await s.call('DELETE', `/auth/tokens/${parent.credential.id}`, bystander.secret);
      assert.equal(del.status, 204, JSON.stringify(del.body));
      for (const t of [parent.secret, child.token, grandchild.token]) {
        const r = await s.call('GET', '/auth/tokens', t);
        assert.equal(r.status, 401, 'revoked with its parent');
      }
      assert.equal((await s.call('GET', '/auth/tokens', bystander.secret)).status, 200);
      const revoked = (await s.audit.query({ type: 'token.revoked', limit: 10 })).items.at(-1)!;
      assert.match(revoked.message!, /revoked by its owner; with it the tokens it created: /);
      assert.ok(revoked.message!.includes(child.id) && revoked.message!.includes(grandchild.id), revoked.message);

      // Signing out (oddjob logout) does the same.
      const p2 = await s.login(gh.issueToken('revoker'));
      const c2 = (await s.call('POST', '/auth/tokens', p2.secret, { description: 'ci' })).body;
      assert.equal((await s.credentials.revoke(p2.credential.id)).children.length, 1);
      assert.equal((await s.call('GET', '/auth/tokens', c2.token)).status, 401);
    } finally {
      s.close();
    }
  });
});

describe('a recycled GitHub login inherits nothing', () => {
  test("login xavier is id 1, then another account (id 2) registers xavier: it sees and revokes none of the first one's credentials", async () => {
    gh.addUser('xavier', ['acme/payments'], ['acme'], 1);
    const s = await signInServer();
    try {
      const first = await s.login(gh.issueToken('xavier'));
      const firstCi = (await s.call('POST', '/auth/tokens', first.secret, { description: 'first xavier CI' })).body;
      assert.equal(first.credential.githubId, 1);

      // The first xavier renames the account; someone else registers the login.
      gh.recycleLogin('xavier', 'xavier-renamed');
      gh.addUser('xavier', [], ['acme'], 2);
      const second = await s.login(gh.issueToken('xavier'));
      assert.equal(second.credential.githubId, 2);

      const mine = await s.call('GET', '/auth/tokens', second.secret);
      assert.equal(mine.status, 200);
      assert.deepEqual(
        mine.body.items.map((t: { id: string }) => t.id),
        [second.credential.id],
        'only its own credential',
      );
      const steal = await s.call('DELETE', `/auth/tokens/${firstCi.id}`, second.secret);
      assert.equal(steal.status, 404, "the first account's token is not the second one's to revoke");
      assert.ok(await s.credentials.lookup(firstCi.token, 'token'), 'and it still works');

      // Runs are owned by id where there is one.
      const run = { user: 'xavier', userId: 1 };
      assert.equal(isRunOwner(run, { login: 'xavier', id: 2 }), false);
      assert.equal(isRunOwner(run, { login: 'xavier-renamed', id: 1 }), true);
      assert.equal(isRunOwner({ user: 'dev' }, { login: 'DEV' }), true, '--auth dev: by login');
    } finally {
      s.close();
    }
  });

  for (const engine of ENGINES) {
    test(`audit: a person reads only the events of their own account, not those of the login's previous holder (${engine})`, async () => {
      const audit = (await stores.open(engine)).audit;
      const client = { kind: 'cli' as const };
      await audit.append({ type: 'login', actor: { login: 'xavier', teams: [] }, client, message: 'before ids were recorded' });
      await audit.append({ type: 'run.requested', actor: { login: 'xavier', id: 1, teams: [] }, client, command: ['first', 'xavier'] });
      await audit.append({ type: 'run.requested', actor: { login: 'xavier', id: 2, teams: [] }, client, command: ['second', 'xavier'] });
      const seen = async (id: number) => (await audit.query({ user: 'xavier', actorId: id, limit: 100 })).items.map((e) => e.message ?? e.command!.join(' '));
      assert.deepEqual(await seen(2), ['second xavier', 'before ids were recorded']);
      const exported: string[] = [];
      for await (const e of audit.iterate({ user: 'xavier', actorId: 1 })) exported.push(e.message ?? e.command!.join(' '));
      assert.deepEqual(exported, ['before ids were recorded', 'first xavier']);
      assert.equal((await audit.verify()).ok, true, 'events with an actor id hash and verify like any other');
    });
  }

  test('a credential whose GitHub token now answers for another account is revoked at its re-check', async () => {
    const credentials = new CredentialStore((await stores.open('sqlite')).credentials, SECRET);
    const github = new GitHubClient({ webUrl: gh.url, apiUrl: gh.apiUrl }, { clientId: gh.clientId, timeoutMs: 2000 });
    const revoked: string[] = [];
    const auth = new GitHubAuthenticator({
      credentials,
      github,
      teamRefreshMs: 0,
      auditors: parseAuditors([]),
      logger,
      onRevoked: (_c, why) => revoked.push(why),
    });
    gh.addUser('yves', [], ['acme'], 31);
    // A row that says id 30 while the GitHub token is id 31's (e.g. a database restored over another).
    const { secret } = await credentials.create({
      kind: 'token',
      identity: { login: 'yves', id: 30, teams: [] },
      githubToken: gh.issueToken('yves'),
      ttlMs: HOUR,
    });
    await assert.rejects(
      auth.authenticate({ headers: { authorization: `Bearer ${secret}` } } as never),
      (e: ServiceError) => toApiError(e).status === 401 && /account changed/.test(e.message),
    );
    assert.match(revoked[0]!, /another account \(id 31, not 30\)/);
  });
});
