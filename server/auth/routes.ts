// Sign-in and sign-out routes, mounted at /auth:
//   GET  /auth/info             which sign-in this server uses (for the web UI)
//   GET  /auth/github           starts the browser sign-in (authorization-code flow)
//   GET  /auth/github/callback  finishes it: session cookie, audited `login`
//   POST /auth/device           starts `oddjob login` (GitHub device flow)
//   POST /auth/device/token     polled by `oddjob login`; answers with an oddjob token
//   POST /auth/logout           ends the presented session or token
// The OAuth `state` rides in a short-lived HMAC-signed cookie, not in a server-side
// session, so the flow works whichever replica serves the callback.
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { parse as parseCookies, serialize as serializeCookie, type SerializeOptions } from 'cookie';
import express, { type Request, type Response } from 'express';
import { rateLimit } from 'express-rate-limit';
import passport from 'passport';
import { Strategy as GitHubStrategy } from 'passport-github2';
import { z } from 'zod';
import { describeZodError, type AuditClient, type Identity } from '../../protocol/api.js';
import type { AuditLog } from '../store/audit.js';
import { ServiceError, badRequest, forbidden, unauthorized, unavailable } from '../errors.js';
import { sendError, toApiError } from '../http/errors.js';
import { durationSeconds } from '../../protocol/duration.js';
import { checkOrigin } from '../http/origin.js';
import type { Logger } from '../logger.js';
import type { Authenticator, Principal, RateCounters } from '../services.js';
import { sharedRateLimitStore } from '../http/rate-limit-store.js';
import { CredentialStore } from './credentials.js';
import { GITHUB_SCOPES, SESSION_COOKIE, cascade, githubFailure, identityOf } from './github.js';
import { GitHubError, type GitHubClient, type GitHubUrls } from './github-api.js';

const STATE_COOKIE = 'oddjob_oauth_state';
const STATE_TTL_MS = 10 * 60_000;

export interface GitHubSignIn {
  clientId: string;
  clientSecret: string;
  urls: GitHubUrls;
  github: GitHubClient;
  credentials: CredentialStore;
  requiredOrg?: string;
  sessionTtlMs: number;
  tokenTtlMs: number;
  /** Key for the OAuth state cookie's HMAC. */
  stateKey: Buffer;
}

export interface AuthRouterDeps {
  auth: Authenticator;
  publicUrl: () => string;
  audit: AuditLog;
  logger: Logger;
  clientOf(req: Request, kind?: AuditClient['kind']): AuditClient;
  /** Requests per minute per client address on the sign-in endpoints. */
  rateLimitPerMinute: number;
  /** Counters shared by the replicas; without them each process counts on its own. */
  rateCounters?: RateCounters;
  github?: GitHubSignIn;
}

/** Cookie attributes: HttpOnly always, Secure whenever users reach us over https. */
export function cookieOptions(publicUrl: string, extra: SerializeOptions = {}): SerializeOptions {
  return { httpOnly: true, sameSite: 'lax', secure: publicUrl.startsWith('https:'), path: '/', ...extra };
}

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);
const CreateTokenBody = z
  .object({ description: z.string().trim().min(1, 'describe what the token is for').max(200), expiresIn: z.string().max(20).optional() })
  .strict();
const DeviceTokenBody = z.object({ deviceCode: z.string().min(1).max(200), description: z.string().max(200).optional() }).strict();

export function createAuthRouter(deps: AuthRouterDeps): express.Router {
  const router = express.Router();
  const { audit, logger } = deps;
  const limiter = rateLimit({
    windowMs: 60_000,
    limit: deps.rateLimitPerMinute,
    ...(deps.rateCounters ? { store: sharedRateLimitStore(deps.rateCounters, 'auth') } : {}),
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    handler: (_req, res) => {
      sendError(res, new ServiceError('rate_limited', 'too many sign-in requests from this address', 'wait a minute and try again'));
    },
  });

  router.get('/info', (_req, res) => {
    res.json({ mode: deps.auth.mode, ...(deps.github ? { signIn: '/auth/github' } : {}) });
  });

  router.post('/logout', express.json({ limit: '1kb' }), async (req, res) => {
    const p = await deps.auth.authenticate(req).catch((err: unknown) => {
      // A session GitHub no longer honours still gets signed out locally.
      if (err instanceof ServiceError && err.kind === 'unavailable') return null;
      throw err;
    });
    if (deps.auth.mode === 'dev') throw badRequest('this server runs with --auth dev: everyone has the same identity, so there is nothing to sign out of');
    checkOrigin(req, deps.publicUrl(), p);
    const r = p?.credentialId ? await deps.github?.credentials.revoke(p.credentialId) : undefined;
    if (p && r?.revoked) {
      recordRevocation(
        audit,
        logger,
        p,
        deps.clientOf(req),
        `${p.via === 'session' ? 'signed out (browser session)' : 'signed out (oddjob logout)'}${cascade(r.children)}`,
      );
    }
    res.setHeader('Set-Cookie', serializeCookie(SESSION_COOKIE, '', cookieOptions(deps.publicUrl(), { maxAge: 0 })));
    res.status(204).end();
  });

  const gh = deps.github;
  if (!gh) {
    router.use(['/github', '/device', '/tokens'], (_req, _res, next) =>
      next(new ServiceError('not_found', `this server does not use GitHub sign-in (--auth ${deps.auth.mode})`)),
    );
    return router;
  }

  const strategy = new GitHubStrategy(
    {
      clientID: gh.clientId,
      clientSecret: gh.clientSecret,
      callbackURL: `${deps.publicUrl().replace(/\/+$/, '')}/auth/github/callback`,
      authorizationURL: `${gh.urls.webUrl}/login/oauth/authorize`,
      tokenURL: `${gh.urls.webUrl}/login/oauth/access_token`,
      userProfileURL: `${gh.urls.apiUrl}/user`,
      userAgent: 'oddjob',
      scope: GITHUB_SCOPES,
      store: new CookieStateStore(gh.stateKey, () => deps.publicUrl()) as never,
    },
    (accessToken: string, _refresh: string, _profile: unknown, done: (err: unknown, user?: unknown) => void) => {
      gh.github.profile(accessToken, gh.requiredOrg).then(
        (profile) => done(null, { identity: identityOf(profile), accessToken }),
        (err: unknown) => done(err),
      );
    },
  );
  const auth = new passport.Passport();
  auth.use('github', strategy);
  router.use(auth.initialize());

  router.get('/github', limiter, auth.authenticate('github', { session: false }));

  router.get('/github/callback', limiter, (req, res) => {
    auth.authenticate(
      'github',
      { session: false },
      (err: unknown, user: { identity: Identity; accessToken: string } | false, info: { message?: string } | undefined) => {
        if (err || !user) {
          const e = err ? oauthFailure(err) : new ServiceError('forbidden', info?.message ?? 'the sign-in could not be verified', undefined, 'invalid_state');
          if (toApiError(e).status >= 500) logger.warn({ reason: e.message }, 'browser sign-in failed');
          signInErrorPage(res, e);
          return;
        }
        void (async () => {
          const client = deps.clientOf(req, 'web');
          // Audited before the cookie exists: no record, no session.
          await audit.append({ type: 'login', actor: user.identity, client, message: 'signed in with GitHub (browser)' });
          const { secret, credential } = await gh.credentials.create({
            kind: 'session',
            identity: user.identity,
            githubToken: user.accessToken,
            ttlMs: gh.sessionTtlMs,
            description: client.agent,
          });
          res.setHeader('Set-Cookie', serializeCookie(SESSION_COOKIE, secret, cookieOptions(deps.publicUrl(), { maxAge: Math.floor(gh.sessionTtlMs / 1000) })));
          logger.info({ login: user.identity.login, session: credential.id }, 'signed in (browser)');
          res.redirect(303, (req as Request & { oauthNext?: string }).oauthNext ?? '/');
        })().catch((e: unknown) => {
          logger.error({ err: e }, 'could not record a sign-in');
          signInErrorPage(res, unavailable('the sign-in could not be recorded in the audit log, so it was refused', 'an operator must fix the audit store'));
        });
      },
    )(req, res, () => {});
  });

  // `oddjob tokens`: a person's live sessions and tokens; create one for automation; revoke.
  const signedIn = async (req: Request): Promise<Principal & { credentialId: string }> => {
    const p = await deps.auth.authenticate(req);
    if (!p?.credentialId) throw unauthorized();
    if (!SAFE.has(req.method)) checkOrigin(req, deps.publicUrl(), p);
    return p as Principal & { credentialId: string };
  };
  router.get('/tokens', async (req, res) => {
    const p = await signedIn(req);
    res.json({ items: (await gh.credentials.list(p.identity)).map((c) => ({ ...c, current: c.id === p.credentialId })) });
  });
  router.post('/tokens', limiter, express.json({ limit: '4kb' }), async (req, res) => {
    const p = await signedIn(req);
    const body = CreateTokenBody.safeParse(req.body);
    if (!body.success) throw badRequest(`invalid token request: ${describeZodError(body.error)}`);
    // A token never outlives the credential that creates it: otherwise a stolen
    // session or a soon-expiring token could buy itself a long-lived successor.
    const parent = await gh.credentials.get(p.credentialId);
    if (!parent) throw unauthorized();
    const parentLeftMs = parent.expiresAt - Date.now();
    let ttlMs = Math.min(gh.tokenTtlMs, parentLeftMs);
    if (body.data.expiresIn !== undefined) {
      try {
        ttlMs = durationSeconds(body.data.expiresIn) * 1000;
      } catch (err) {
        throw badRequest(`expiresIn: ${(err as Error).message}`);
      }
      if (ttlMs > gh.tokenTtlMs) throw badRequest(`expiresIn may be at most ${gh.tokenTtlMs / 1000}s (the server's --token-ttl)`);
      if (ttlMs > parentLeftMs) {
        throw badRequest(
          `expiresIn would outlive the ${parent.kind === 'session' ? 'session' : 'token'} you are creating it with, which expires ${new Date(parent.expiresAt).toISOString()}`,
          `ask for at most ${Math.floor(parentLeftMs / 1000)}s, or sign in again (\`oddjob login\`) for a fresh token first`,
        );
      }
    }
    const githubToken = await gh.credentials.githubToken(p.credentialId);
    if (githubToken === null) throw unauthorized('your sign-in can no longer be checked with GitHub', 'sign in again');
    const client = deps.clientOf(req);
    const { secret, credential } = await gh.credentials.create({
      kind: 'token',
      identity: p.identity,
      githubToken,
      ttlMs,
      description: body.data.description,
      parentId: parent.id,
    });
    await audit.append({
      type: 'token.created',
      actor: p.identity,
      client,
      message: `token ${credential.id} (${body.data.description}), created with ${parent.kind} ${parent.id}, expires ${new Date(credential.expiresAt).toISOString()}`,
    });
    res.status(201).json({ token: secret, id: credential.id, expiresAt: new Date(credential.expiresAt).toISOString() });
  });
  router.delete('/tokens/:id', async (req, res) => {
    const p = await signedIn(req);
    const id = String(req.params.id);
    const cred = /^[0-9a-f]{12}$/.test(id) ? await gh.credentials.get(id) : null;
    // Someone else's credential is "not found": its existence is not yours to learn.
    if (!cred || !CredentialStore.owns(cred, p.identity) || cred.revokedAt !== undefined) {
      throw new ServiceError('not_found', `you have no live session or token ${id}`);
    }
    const r = await gh.credentials.revoke(id);
    recordRevocation(
      audit,
      logger,
      { ...p, via: cred.kind === 'session' ? 'session' : 'token', credentialId: id },
      deps.clientOf(req),
      `revoked by its owner${cascade(r.children)}`,
    );
    res.status(204).end();
  });

  router.post('/device', limiter, async (_req, res, next) => {
    try {
      const d = await gh.github.startDeviceFlow(GITHUB_SCOPES);
      res.json({ deviceCode: d.device_code, userCode: d.user_code, verificationUri: d.verification_uri, expiresIn: d.expires_in, interval: d.interval });
    } catch (err) {
      next(githubFailure(err));
    }
  });

  router.post('/device/token', limiter, express.json({ limit: '4kb' }), async (req, res, next) => {
    try {
      const body = DeviceTokenBody.safeParse(req.body);
      if (!body.success) throw badRequest(`invalid device token request: ${describeZodError(body.error)}`);
      const poll = await gh.github.pollDeviceFlow(body.data.deviceCode);
      if (poll.status === 'pending' || poll.status === 'slow_down') {
        res.status(202).json({ status: poll.status, ...(poll.status === 'slow_down' ? { interval: poll.interval } : {}) });
        return;
      }
      if (poll.status === 'expired') throw new ServiceError('gone', 'the sign-in code expired before it was entered', 'run `oddjob login` again');
      if (poll.status === 'denied') throw forbidden('the sign-in was cancelled on GitHub');
      const identity = identityOf(await gh.github.profile(poll.accessToken, gh.requiredOrg));
      const client = deps.clientOf(req, 'cli');
      const description = body.data.description ?? `oddjob login (${client.agent ?? 'unknown client'})`;
      await audit.append({ type: 'login', actor: identity, client, message: 'signed in with GitHub (device flow)' });
      const { secret, credential } = await gh.credentials.create({ kind: 'token', identity, githubToken: poll.accessToken, ttlMs: gh.tokenTtlMs, description });
      await audit.append({
        type: 'token.created',
        actor: identity,
        client,
        message: `token ${credential.id} (${description}), expires ${new Date(credential.expiresAt).toISOString()}`,
      });
      logger.info({ login: identity.login, token: credential.id }, 'signed in (device flow)');
      res.json({ status: 'ok', token: secret, id: credential.id, expiresAt: new Date(credential.expiresAt).toISOString(), identity });
    } catch (err) {
      next(err instanceof GitHubError ? githubFailure(err) : err);
    }
  });

  return router;
}

export function recordRevocation(audit: AuditLog, logger: Logger, p: Principal, client: AuditClient, why: string): void {
  audit
    .append({ type: 'token.revoked', actor: p.identity, client, message: `${p.via === 'session' ? 'session' : 'token'} ${p.credentialId}: ${why}` })
    .catch((err: unknown) => logger.error({ err }, 'could not record a revocation (the credential is revoked regardless)'));
}

function oauthFailure(err: unknown): ServiceError {
  if (err instanceof GitHubError) return githubFailure(err);
  const e = err as { name?: string; code?: string; message?: string; oauthError?: { statusCode?: number } };
  if (e.name === 'TokenError') {
    return new ServiceError(
      'invalid',
      `GitHub did not accept the sign-in (${e.code ?? 'token error'}): the code may have expired or been used already`,
      undefined,
      'bad_code',
    );
  }
  // GitHub answers a refused code with HTTP 200 and an `error` body; passport-oauth2
  // then only knows that no access token came back.
  if (e.message === 'Failed to obtain access token') {
    return new ServiceError('invalid', 'GitHub did not accept the sign-in code: it may have expired or been used already', 'start again', 'bad_code');
  }
  if (e.name === 'InternalOAuthError') {
    return unavailable('GitHub could not be reached to finish the sign-in', 'try again in a minute');
  }
  return githubFailure(err);
}

function signInErrorPage(res: Response, err: ServiceError): void {
  const e = toApiError(err);
  const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
  res
    .status(e.status)
    .type('html')
    .send(
      `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>oddjob: sign-in failed</title></head>` +
        `<body><main><h1>Sign-in failed</h1><p>${esc(e.message)}</p>${e.hint ? `<p>${esc(e.hint)}</p>` : ''}` +
        `<p><a href="/auth/github">Try again</a></p></main></body></html>`,
    );
}

/**
 * passport-oauth2 state store backed by a signed, HttpOnly, 10-minute cookie scoped
 * to /auth/github. It also carries where to go after sign-in (`?next=/runs/…`, same
 * site paths only).
 */
class CookieStateStore {
  constructor(
    private readonly key: Buffer,
    private readonly publicUrl: () => string,
  ) {}

  store(req: Request, _state: unknown, _meta: unknown, cb: (err: Error | null, state?: string) => void): void {
    const nonce = randomBytes(16).toString('base64url');
    const next = typeof req.query.next === 'string' && /^\/(?![/\\])[\x21-\x7e]{0,500}$/.test(req.query.next) ? req.query.next : undefined;
    const payload = Buffer.from(JSON.stringify({ n: nonce, x: Date.now() + STATE_TTL_MS, ...(next ? { r: next } : {}) })).toString('base64url');
    const value = `${payload}.${this.mac(payload)}`;
    req.res!.append('Set-Cookie', serializeCookie(STATE_COOKIE, value, cookieOptions(this.publicUrl(), { path: '/auth/github', maxAge: STATE_TTL_MS / 1000 })));
    cb(null, nonce);
  }

  verify(req: Request, provided: string, cb: (err: Error | null, ok: boolean, info?: { message: string }) => void): void {
    const raw = req.headers.cookie ? parseCookies(req.headers.cookie)[STATE_COOKIE] : undefined;
    req.res!.append('Set-Cookie', serializeCookie(STATE_COOKIE, '', cookieOptions(this.publicUrl(), { path: '/auth/github', maxAge: 0 })));
    const fail = (message: string) => cb(null, false, { message });
    if (!raw) return fail('the sign-in could not be verified: it was started in another browser, or more than 10 minutes ago');
    const [payload, mac] = raw.split('.');
    if (!payload || !mac || !safeEqual(mac, this.mac(payload))) return fail('the sign-in could not be verified (tampered state)');
    let data: { n?: unknown; x?: unknown; r?: unknown };
    try {
      data = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as typeof data;
    } catch {
      return fail('the sign-in could not be verified (tampered state)');
    }
    if (typeof data.x !== 'number' || data.x < Date.now()) return fail('the sign-in took longer than 10 minutes; start again');
    if (typeof data.n !== 'string' || typeof provided !== 'string' || !safeEqual(data.n, provided)) {
      return fail('the sign-in could not be verified (state mismatch)');
    }
    if (typeof data.r === 'string') (req as Request & { oauthNext?: string }).oauthNext = data.r;
    cb(null, true);
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(payload).digest('base64url');
  }
}

function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}
