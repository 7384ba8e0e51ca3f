// The few GitHub endpoints oddjob uses, spoken over fetch and validated with zod:
//   OAuth device flow  POST {web}/login/device/code, POST {web}/login/oauth/access_token
//   REST               GET {api}/user, GET {api}/user/teams (all pages),
//                      GET {api}/user/memberships/orgs/{org}
// The web (authorization-code) flow itself is passport-github2's; it is pointed at
// the same base URLs. Every failure becomes a GitHubError whose kind tells the
// caller whether to fail closed as "not signed in" (unauthorized) or as "cannot
// confirm right now" (rate_limited / unavailable / bad_response). A client this
// small is cheaper to keep honest than Octokit's plugin stack for three GETs.
import { z } from 'zod';
import { metrics } from '../metrics.js';

export type GitHubErrorKind = 'unauthorized' | 'rate_limited' | 'unavailable' | 'bad_response' | 'not_found' | 'not_member';

export class GitHubError extends Error {
  constructor(
    readonly kind: GitHubErrorKind,
    message: string,
  ) {
    super(message);
    this.name = 'GitHubError';
    // Every failed GitHub call ends here; not_member is an answer, not a failure.
    if (kind !== 'not_member') metrics.githubErrors.inc({ kind });
  }
}

export interface GitHubUrls {
  /** https://github.com, or https://ghe.example.com for GitHub Enterprise Server. */
  webUrl: string;
  /** https://api.github.com, or https://ghe.example.com/api/v3. */
  apiUrl: string;
}

const User = z.object({
  login: z.string().regex(/^[A-Za-z0-9-]{1,39}$/),
  id: z.number().int(),
  name: z.string().nullable().optional(),
});

const Team = z.object({
  slug: z.string().min(1),
  organization: z.object({ login: z.string().min(1) }),
});

const OrgMembership = z.object({
  state: z.enum(['active', 'pending']),
  organization: z.object({ login: z.string() }),
});

const DeviceCode = z.object({
  device_code: z.string().min(1),
  user_code: z.string().min(1),
  verification_uri: z.string().url(),
  expires_in: z.number().int().positive(),
  interval: z.number().int().positive(),
});
export type DeviceCode = z.infer<typeof DeviceCode>;

const TokenAnswer = z.union([
  z.object({ access_token: z.string().min(1), token_type: z.string(), scope: z.string().optional() }),
  z.object({ error: z.string(), error_description: z.string().optional(), interval: z.number().optional() }),
]);

export type DevicePoll =
  | { status: 'ok'; accessToken: string; scopes: string[] }
  | { status: 'pending' }
  | { status: 'slow_down'; interval: number }
  | { status: 'expired' }
  | { status: 'denied' };

export interface GitHubProfile {
  login: string;
  id: number;
  name?: string;
  /** `org/slug`, lower-cased, sorted, de-duplicated. */
  teams: string[];
}

const USER_AGENT = 'oddjob (+https://github.com/oddjob-dev/oddjob)';
const MAX_TEAM_PAGES = 50; // 5,000 teams: beyond that something is wrong, not a big org

export class GitHubClient {
  private readonly web: string;
  private readonly api: string;

  constructor(
    urls: GitHubUrls,
    private readonly opts: { clientId: string; timeoutMs?: number; fetch?: typeof fetch } = { clientId: '' },
  ) {
    this.web = urls.webUrl.replace(/\/+$/, '');
    this.api = urls.apiUrl.replace(/\/+$/, '');
  }

  /** Login, numeric id, name and every team (all pages) of the token's owner. */
  async profile(token: string, requiredOrg?: string): Promise<GitHubProfile> {
    const user = User.safeParse(await this.getJson('/user', token));
    if (!user.success) throw new GitHubError('bad_response', 'GitHub answered /user with an unexpected body');
    const teams = await this.teams(token);
    if (requiredOrg !== undefined && !(await this.isOrgMember(token, requiredOrg))) {
      throw new GitHubError('not_member', `${user.data.login} is not a member of the GitHub organization ${requiredOrg}`);
    }
    return { login: user.data.login, id: user.data.id, name: user.data.name ?? undefined, teams };
  }

  async teams(token: string): Promise<string[]> {
    const out = new Set<string>();
    let url: string | undefined = `${this.api}/user/teams?per_page=100`;
    for (let page = 0; url; page++) {
      if (page >= MAX_TEAM_PAGES) throw new GitHubError('bad_response', `GitHub returned more than ${MAX_TEAM_PAGES} pages of teams`);
      const res = await this.request(url, token);
      const body = z.array(Team).safeParse(await res.json().catch(() => undefined));
      if (!body.success) throw new GitHubError('bad_response', 'GitHub answered /user/teams with an unexpected body');
      for (const t of body.data) out.add(`${t.organization.login}/${t.slug}`.toLowerCase());
      url = nextLink(res.headers.get('link'));
      // Follow only links back into the configured API: a Link header is input too.
      if (url && !url.startsWith(`${this.api}/`)) throw new GitHubError('bad_response', 'GitHub sent a pagination link outside its API');
    }
    return [...out].sort();
  }

  async isOrgMember(token: string, org: string): Promise<boolean> {
    try {
      const m = OrgMembership.safeParse(await this.getJson(`/user/memberships/orgs/${encodeURIComponent(org)}`, token));
      if (!m.success) throw new GitHubError('bad_response', 'GitHub answered the org membership check with an unexpected body');
      return m.data.state === 'active';
    } catch (err) {
      // GitHub answers 404 (and 403 for orgs that restrict OAuth apps) for non-members.
      if (err instanceof GitHubError && err.kind === 'not_found') return false;
      throw err;
    }
  }

  async startDeviceFlow(scopes: string[]): Promise<DeviceCode> {
    const json = await this.postForm('/login/device/code', { client_id: this.opts.clientId, scope: scopes.join(' ') });
    if (json && typeof json === 'object' && 'error' in json) {
      throw new GitHubError(
        'bad_response',
        `GitHub refused to start the device flow: ${String((json as { error: unknown }).error)} (is device flow enabled for the OAuth app?)`,
      );
    }
    const parsed = DeviceCode.safeParse(json);
    if (!parsed.success) throw new GitHubError('bad_response', 'GitHub answered the device code request with an unexpected body');
    return parsed.data;
  }

  async pollDeviceFlow(deviceCode: string): Promise<DevicePoll> {
    const json = await this.postForm('/login/oauth/access_token', {
      client_id: this.opts.clientId,
      device_code: deviceCode,
      grant_type: 'urn:ietf:params:oauth:grant-type:device_code',
    });
    const parsed = TokenAnswer.safeParse(json);
    if (!parsed.success) throw new GitHubError('bad_response', 'GitHub answered the device token request with an unexpected body');
    const a = parsed.data;
    if ('access_token' in a) return { status: 'ok', accessToken: a.access_token, scopes: (a.scope ?? '').split(/[ ,]+/).filter(Boolean) };
    switch (a.error) {
      case 'authorization_pending':
        return { status: 'pending' };
      case 'slow_down':
        return { status: 'slow_down', interval: a.interval ?? 10 };
      case 'expired_token':
      case 'incorrect_device_code':
        return { status: 'expired' };
      case 'access_denied':
        return { status: 'denied' };
      default:
        throw new GitHubError('bad_response', `GitHub refused the device token request: ${a.error}`);
    }
  }

  private async getJson(path: string, token: string): Promise<unknown> {
    const res = await this.request(`${this.api}${path}`, token);
    return res.json().catch(() => {
      throw new GitHubError('bad_response', `GitHub answered ${path} with something that is not JSON`);
    });
  }

  private async request(url: string, token: string): Promise<Response> {
    const res = await this.fetch(url, {
      headers: {
        Accept: 'application/vnd.github+json',
        Authorization: `Bearer ${token}`,
        'User-Agent': USER_AGENT,
        'X-GitHub-Api-Version': '2022-11-28',
      },
    });
    if (res.ok) return res;
    await res.body?.cancel().catch(() => {});
    const path = new URL(url).pathname;
    if (res.status === 401) throw new GitHubError('unauthorized', 'GitHub no longer accepts this sign-in (token revoked or expired)');
    if ((res.status === 403 || res.status === 429) && (res.headers.get('x-ratelimit-remaining') === '0' || res.headers.has('retry-after'))) {
      const reset = Number(res.headers.get('x-ratelimit-reset'));
      const when = Number.isFinite(reset) && reset > 0 ? ` until ${new Date(reset * 1000).toISOString()}` : '';
      throw new GitHubError('rate_limited', `GitHub is rate-limiting oddjob${when}`);
    }
    if (res.status === 404 || res.status === 403) throw new GitHubError('not_found', `GitHub answered ${res.status} for ${path}`);
    throw new GitHubError('unavailable', `GitHub answered ${res.status} for ${path}`);
  }

  private async postForm(path: string, form: Record<string, string>): Promise<unknown> {
    const res = await this.fetch(`${this.web}${path}`, {
      method: 'POST',
      headers: { Accept: 'application/json', 'Content-Type': 'application/x-www-form-urlencoded', 'User-Agent': USER_AGENT },
      body: new URLSearchParams(form).toString(),
    });
    if (res.status === 429 || (res.status === 403 && res.headers.get('x-ratelimit-remaining') === '0')) {
      throw new GitHubError('rate_limited', 'GitHub is rate-limiting sign-ins');
    }
    if (res.status >= 500) throw new GitHubError('unavailable', `GitHub answered ${res.status} for ${path}`);
    if (res.status === 404) throw new GitHubError('bad_response', `GitHub answered 404 for ${path} (check --github-url and the client id)`);
    return res.json().catch(() => {
      throw new GitHubError('bad_response', `GitHub answered ${path} with something that is not JSON`);
    });
  }

  private async fetch(url: string, init: RequestInit): Promise<Response> {
    try {
      return await (this.opts.fetch ?? fetch)(url, { ...init, redirect: 'error', signal: AbortSignal.timeout(this.opts.timeoutMs ?? 10_000) });
    } catch (err) {
      const why = (err as Error).name === 'TimeoutError' ? 'timed out' : ((err as { cause?: Error }).cause?.message ?? (err as Error).message);
      throw new GitHubError('unavailable', `GitHub cannot be reached (${why})`);
    }
  }
}

/** The rel="next" target of an RFC 8288 Link header, as GitHub sends it. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(',')) {
    const m = /^\s*<([^>]*)>\s*;(.*)$/.exec(part);
    if (m && /\brel="?([^"]*\s)?next(\s[^"]*)?"?/.test(m[2]!)) return m[1];
  }
  return undefined;
}
