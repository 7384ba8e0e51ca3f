// A fake GitHub (Enterprise Server shaped: web at /, REST API at /api/v3) for tests.
// GitHub is the one external service our machines cannot reach, so it is the one we
// fake — speaking its real paths, headers, status codes, pagination (Link) and JSON
// shapes for what oddjob uses, including its failure modes:
//   GET  /login/oauth/authorize          → 302 to redirect_uri?code&state (the "browser user" is fake.actAs)
//   POST /login/oauth/access_token       authorization_code and device_code grants;
//                                        errors as GitHub sends them: HTTP 200 + {error}
//   POST /login/device/code              device flow start
//   GET  /api/v3/user                    the token's owner
//   GET  /api/v3/user/teams              paginated with Link rel="next"/"last"
//   GET  /api/v3/user/memberships/orgs/:org   200 active / 404 for non-members
// Knobs: users and teams are plain data the test edits; outage/rateLimit switch on
// failure; revoke() kills a user's tokens; approveDevice() plays the person typing the code.
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface FakeUser {
  login: string;
  id: number;
  name?: string;
  /** `org/slug` */
  teams: string[];
  orgs: string[];
}

interface IssuedToken {
  login: string;
  /** GitHub tokens belong to an account, whatever it is named later. */
  userId: number;
  scopes: string;
}

export interface FakeRequest {
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
}

export class FakeGitHub {
  readonly clientId = 'Iv1.fake0client0id';
  readonly clientSecret = 'fake-client-secret-0123456789abcdef';
  readonly users = new Map<string, FakeUser>();
  readonly requests: FakeRequest[] = [];
  /** Who is "signed in to GitHub" in the browser when /login/oauth/authorize is hit. */
  actAs: string | undefined;
  /** When set, every endpoint answers this status (5xx outage). */
  outage: number | undefined;
  /** When true, API calls answer 403 with x-ratelimit-remaining: 0. */
  rateLimited = false;
  teamsPageSize = 2;
  deviceInterval = 1;
  private readonly tokens = new Map<string, IssuedToken>();
  private readonly codes = new Map<string, { login: string; redirectUri: string }>();
  private readonly devices = new Map<string, { userCode: string; login?: string; denied?: boolean; expiresAt: number; polls: number }>();
  private server!: http.Server;
  url = '';

  private readonly byId = new Map<number, FakeUser>();
  private nextId = 1000;

  /** A new account; `id` defaults to the next free one. Replaces any account of that login (see recycleLogin). */
  addUser(login: string, teams: string[] = [], orgs?: string[], id = this.nextId++): FakeUser {
    if (this.byId.has(id)) throw new Error(`fake GitHub: user id ${id} is taken`);
    const u: FakeUser = {
      login,
      id,
      name: `${login[0]!.toUpperCase()}${login.slice(1)} Example`,
      teams,
      orgs: orgs ?? [...new Set(teams.map((t) => t.split('/')[0]!))],
    };
    this.users.set(login.toLowerCase(), u);
    this.byId.set(id, u);
    return u;
  }

  /**
   * The account named `login` renames itself to `renamedTo`, freeing the login for
   * someone else (then addUser(login, ..., newId)). Its tokens keep working, for it.
   */
  recycleLogin(login: string, renamedTo: string): FakeUser {
    const u = this.users.get(login.toLowerCase());
    if (!u) throw new Error(`fake GitHub: no user ${login}`);
    this.users.delete(login.toLowerCase());
    u.login = renamedTo;
    this.users.set(renamedTo.toLowerCase(), u);
    return u;
  }

  /** GitHub-side revocation: every token of this user stops working. */
  revoke(login: string): void {
    const u = this.users.get(login.toLowerCase());
    for (const [t, v] of this.tokens) if (v.userId === u?.id) this.tokens.delete(t);
  }

  /** Plays the person entering the user code at /login/device and approving. */
  approveDevice(userCode: string, login: string): void {
    const d = [...this.devices.values()].find((x) => x.userCode === userCode);
    if (!d) throw new Error(`no device flow with user code ${userCode}`);
    d.login = login;
  }

  denyDevice(userCode: string): void {
    const d = [...this.devices.values()].find((x) => x.userCode === userCode);
    if (!d) throw new Error(`no device flow with user code ${userCode}`);
    d.denied = true;
  }

  /** Mints a token directly, as if the user had signed in (for tests of the API side). */
  issueToken(login: string): string {
    const token = `gho_${randomBytes(18).toString('base64url')}`;
    const u = this.users.get(login.toLowerCase());
    if (!u) throw new Error(`fake GitHub: no user ${login}`);
    this.tokens.set(token, { login, userId: u.id, scopes: 'read:org' });
    return token;
  }

  async start(): Promise<this> {
    this.server = http.createServer((req, res) => {
      let body = '';
      req.on('data', (d) => (body += d));
      req.on('end', () => {
        try {
          this.handle(req, res, body);
        } catch (err) {
          res.writeHead(500, { 'content-type': 'text/plain' }).end(String(err));
        }
      });
    });
    await new Promise<void>((r) => this.server.listen(0, '127.0.0.1', r));
    this.url = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
    return this;
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((r) => this.server.close(() => r()));
  }

  get apiUrl(): string {
    return `${this.url}/api/v3`;
  }

  private handle(req: http.IncomingMessage, res: http.ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', this.url);
    this.requests.push({ method: req.method ?? 'GET', path: url.pathname + url.search, headers: req.headers });
    if (this.outage) {
      res.writeHead(this.outage, { 'content-type': 'text/html' }).end('<html><body><h1>Unicorn!</h1>This page is taking too long to load.</body></html>');
      return;
    }
    const route = `${req.method} ${url.pathname}`;
    if (route === 'GET /login/oauth/authorize') return this.authorize(url, res);
    if (route === 'POST /login/oauth/access_token') return this.accessToken(req, res, parseBody(req, body));
    if (route === 'POST /login/device/code') return this.deviceCode(res, parseBody(req, body));
    if (url.pathname.startsWith('/api/v3/')) return this.api(req, url, res);
    json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest' });
  }

  private authorize(url: URL, res: http.ServerResponse): void {
    const q = url.searchParams;
    if (q.get('client_id') !== this.clientId) {
      res.writeHead(404, { 'content-type': 'text/html' }).end('<html><body>Not Found</body></html>');
      return;
    }
    const redirect = q.get('redirect_uri');
    if (!redirect) {
      res
        .writeHead(400, { 'content-type': 'text/html' })
        .end('<html><body>The redirect_uri MUST match the registered callback URL for this application.</body></html>');
      return;
    }
    if (!this.actAs) throw new Error('fake GitHub: nobody is signed in (set actAs)');
    const code = randomBytes(10).toString('hex');
    this.codes.set(code, { login: this.actAs, redirectUri: redirect });
    const to = new URL(redirect);
    to.searchParams.set('code', code);
    if (q.has('state')) to.searchParams.set('state', q.get('state')!);
    res.writeHead(302, { location: to.toString() }).end();
  }

  private accessToken(req: http.IncomingMessage, res: http.ServerResponse, p: Record<string, string>): void {
    const answer = (payload: Record<string, unknown>) => {
      // GitHub answers form-encoded unless asked for JSON, and errors with HTTP 200.
      if ((req.headers.accept ?? '').includes('application/json')) return json(res, 200, payload);
      res
        .writeHead(200, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' })
        .end(new URLSearchParams(payload as Record<string, string>).toString());
    };
    const err = (error: string, description: string, extra: Record<string, unknown> = {}) =>
      answer({ error, error_description: description, error_uri: `https://docs.github.com/apps/oauth#${error}`, ...extra });
    if (p.client_id !== this.clientId) return err('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    if (p.grant_type === 'urn:ietf:params:oauth:grant-type:device_code') {
      const d = this.devices.get(p.device_code ?? '');
      if (!d) return err('incorrect_device_code', 'The device_code provided is not valid.');
      if (Date.now() > d.expiresAt) return err('expired_token', 'The device_code has expired.');
      if (d.denied) return err('access_denied', 'The authorization request was denied.');
      if (!d.login) return err('authorization_pending', 'The authorization request is still pending.');
      this.devices.delete(p.device_code!);
      return answer({ access_token: this.issueToken(d.login), token_type: 'bearer', scope: 'read:org' });
    }
    if (p.client_secret !== this.clientSecret) return err('incorrect_client_credentials', 'The client_id and/or client_secret passed are incorrect.');
    const c = this.codes.get(p.code ?? '');
    if (!c) return err('bad_verification_code', 'The code passed is incorrect or expired.');
    this.codes.delete(p.code!);
    if (p.redirect_uri && p.redirect_uri !== c.redirectUri)
      return err('redirect_uri_mismatch', 'The redirect_uri MUST match the registered callback URL for this application.');
    answer({ access_token: this.issueToken(c.login), token_type: 'bearer', scope: 'read:org' });
  }

  private deviceCode(res: http.ServerResponse, p: Record<string, string>): void {
    if (p.client_id !== this.clientId) return json(res, 200, { error: 'unauthorized_client', error_description: 'unknown client' });
    const deviceCode = randomBytes(20).toString('hex');
    const userCode = `${randomBytes(2).toString('hex')}-${randomBytes(2).toString('hex')}`.toUpperCase();
    this.devices.set(deviceCode, { userCode, expiresAt: Date.now() + 900_000, polls: 0 });
    json(res, 200, {
      device_code: deviceCode,
      user_code: userCode,
      verification_uri: `${this.url}/login/device`,
      expires_in: 900,
      interval: this.deviceInterval,
    });
  }

  /** Expires a pending device flow now (GitHub's 15 minutes, compressed). */
  expireDevice(userCode: string): void {
    const d = [...this.devices.values()].find((x) => x.userCode === userCode);
    if (d) d.expiresAt = 0;
  }

  private api(req: http.IncomingMessage, url: URL, res: http.ServerResponse): void {
    const rate = {
      'x-ratelimit-limit': '5000',
      'x-ratelimit-used': '1',
      'x-ratelimit-resource': 'core',
      'x-ratelimit-reset': String(Math.floor(Date.now() / 1000) + 3600),
    };
    const common = { 'x-github-media-type': 'github.v3; format=json', 'x-github-request-id': randomBytes(6).toString('hex').toUpperCase(), ...rate };
    if (!req.headers['user-agent']) {
      // GitHub refuses API calls without a User-Agent.
      res
        .writeHead(403, { 'content-type': 'text/plain' })
        .end('Request forbidden by administrative rules. Please make sure your request has a User-Agent header');
      return;
    }
    const m = /^(?:Bearer|token) (\S+)$/i.exec(req.headers.authorization ?? '');
    const tok = m ? this.tokens.get(m[1]!) : undefined;
    if (!tok) {
      json(
        res,
        401,
        { message: 'Bad credentials', documentation_url: 'https://docs.github.com/rest', status: '401' },
        { ...common, 'x-ratelimit-remaining': '4999' },
      );
      return;
    }
    if (this.rateLimited) {
      json(
        res,
        403,
        {
          message: 'API rate limit exceeded for user ID 1.',
          documentation_url: 'https://docs.github.com/rest/overview/rate-limits-for-the-rest-api',
          status: '403',
        },
        { ...common, 'x-ratelimit-remaining': '0' },
      );
      return;
    }
    const user = this.byId.get(tok.userId);
    if (!user) throw new Error(`fake GitHub: token for unknown user ${tok.login}`);
    const headers = { ...common, 'x-ratelimit-remaining': '4998', 'x-oauth-scopes': tok.scopes, 'x-accepted-oauth-scopes': '' };
    const path = url.pathname.slice('/api/v3'.length);
    if (req.method === 'GET' && path === '/user') {
      json(res, 200, userJson(this.apiUrl, user), headers);
      return;
    }
    if (req.method === 'GET' && path === '/user/teams') {
      const per = Math.min(Number(url.searchParams.get('per_page') ?? this.teamsPageSize), this.teamsPageSize);
      const page = Math.max(1, Number(url.searchParams.get('page') ?? 1));
      const all = user.teams.map((t, i) => teamJson(this.apiUrl, t, i));
      const last = Math.max(1, Math.ceil(all.length / per));
      const link = (p: number, rel: string) => `<${this.apiUrl}/user/teams?per_page=${per}&page=${p}>; rel="${rel}"`;
      const links = [...(page > 1 ? [link(page - 1, 'prev'), link(1, 'first')] : []), ...(page < last ? [link(page + 1, 'next'), link(last, 'last')] : [])];
      json(res, 200, all.slice((page - 1) * per, page * per), { ...headers, ...(links.length ? { link: links.join(', ') } : {}) });
      return;
    }
    const om = /^\/user\/memberships\/orgs\/([^/]+)$/.exec(path);
    if (req.method === 'GET' && om) {
      const org = decodeURIComponent(om[1]!).toLowerCase();
      if (!user.orgs.map((o) => o.toLowerCase()).includes(org)) {
        json(
          res,
          404,
          {
            message: 'Not Found',
            documentation_url: 'https://docs.github.com/rest/orgs/members#get-an-organization-membership-for-the-authenticated-user',
            status: '404',
          },
          headers,
        );
        return;
      }
      json(
        res,
        200,
        {
          url: `${this.apiUrl}/orgs/${org}/memberships/${user.login}`,
          state: 'active',
          role: 'member',
          organization_url: `${this.apiUrl}/orgs/${org}`,
          organization: orgJson(this.apiUrl, org),
          user: userJson(this.apiUrl, user),
        },
        headers,
      );
      return;
    }
    json(res, 404, { message: 'Not Found', documentation_url: 'https://docs.github.com/rest', status: '404' }, headers);
  }
}

function parseBody(req: http.IncomingMessage, body: string): Record<string, string> {
  if ((req.headers['content-type'] ?? '').includes('application/json')) return JSON.parse(body || '{}') as Record<string, string>;
  return Object.fromEntries(new URLSearchParams(body));
}

function json(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...headers }).end(JSON.stringify(body));
}

function orgJson(api: string, org: string) {
  return {
    login: org,
    id: 5000 + org.length,
    node_id: `O_${org}`,
    url: `${api}/orgs/${org}`,
    repos_url: `${api}/orgs/${org}/repos`,
    avatar_url: '',
    description: null,
  };
}

function userJson(api: string, u: FakeUser) {
  return {
    login: u.login,
    id: u.id,
    node_id: `U_${u.id}`,
    avatar_url: `https://avatars.example/u/${u.id}`,
    url: `${api}/users/${u.login}`,
    html_url: `https://github.example/${u.login}`,
    type: 'User',
    site_admin: false,
    name: u.name ?? null,
    company: null,
    email: null,
    created_at: '2020-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
  };
}

function teamJson(api: string, orgSlug: string, i: number) {
  const [org, slug] = orgSlug.split('/') as [string, string];
  return {
    id: 7000 + i,
    node_id: `T_${i}`,
    url: `${api}/teams/${7000 + i}`,
    html_url: `https://github.example/orgs/${org}/teams/${slug}`,
    name: slug.replace(/-/g, ' '),
    slug,
    description: null,
    privacy: 'closed',
    notification_setting: 'notifications_enabled',
    permission: 'pull',
    members_url: `${api}/teams/${7000 + i}/members{/member}`,
    repositories_url: `${api}/teams/${7000 + i}/repos`,
    parent: null,
    members_count: 3,
    repos_count: 0,
    created_at: '2020-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    organization: orgJson(api, org),
  };
}
