// --auth github: a caller is whoever owns the session cookie or bearer token they
// present. Teams are what GitHub said at sign-in, re-checked once they are older
// than --team-refresh; someone removed from a team loses it within that bound.
// When the re-check cannot be done (GitHub down, rate limited), the request fails
// closed with 503 rather than trusting stale teams.
import type { IncomingMessage } from 'node:http';
import { parse as parseCookies } from 'cookie';
import type { Identity } from '../../protocol/api.js';
import { ServiceError, forbidden, unauthorized, unavailable } from '../errors.js';
import type { Logger } from '../logger.js';
import { type AuditorList, isAuditor } from '../policy/auditors.js';
import type { Authenticator, Principal } from '../services.js';
import type { Credential, CredentialKind, CredentialStore } from './credentials.js';
import { GitHubError, type GitHubClient, type GitHubProfile } from './github-api.js';

export const SESSION_COOKIE = 'oddjob_session';
/** GitHub scopes oddjob asks for: read:org lets it list the person's teams. Nothing else. */
export const GITHUB_SCOPES = ['read:org'];

export interface GitHubAuthOptions {
  credentials: CredentialStore;
  github: GitHubClient;
  /** People must be active members of this org (checked at sign-in and every refresh). */
  requiredOrg?: string;
  teamRefreshMs: number;
  auditors: AuditorList;
  logger: Logger;
  /** Called when the server revokes a credential itself (GitHub revoked it, left the org). */
  onRevoked?(credential: Credential, why: string): void;
  now?: () => number;
}

/** The credential a request presents: a bearer token wins over a session cookie. */
export function presentedCredential(req: IncomingMessage): { secret: string; kind: CredentialKind } | 'malformed' | null {
  const auth = req.headers.authorization;
  if (auth !== undefined) {
    const m = /^Bearer ([A-Za-z0-9_-]{1,100})$/.exec(auth.trim());
    return m ? { secret: m[1]!, kind: 'token' } : 'malformed';
  }
  const header = req.headers.cookie;
  if (!header) return null;
  let cookies: Record<string, string | undefined>;
  try {
    cookies = parseCookies(header);
  } catch {
    return 'malformed';
  }
  const session = cookies[SESSION_COOKIE];
  return session ? { secret: session, kind: 'session' } : null;
}

export function identityOf(profile: GitHubProfile): Identity {
  return { login: profile.login, id: profile.id, teams: profile.teams, ...(profile.name ? { name: profile.name } : {}) };
}

export class GitHubAuthenticator implements Authenticator {
  readonly mode = 'github' as const;
  private readonly inflight = new Map<string, Promise<Identity>>();
  private readonly now: () => number;

  constructor(private readonly opts: GitHubAuthOptions) {
    this.now = opts.now ?? Date.now;
  }

  async authenticate(req: IncomingMessage): Promise<Principal | null> {
    const presented = presentedCredential(req);
    if (presented === 'malformed') {
      throw unauthorized('the Authorization header is not a bearer token', 'send "Authorization: Bearer <token>" (run `oddjob login` to get one)');
    }
    if (!presented) return null;
    const cred = await this.opts.credentials.lookup(presented.secret, presented.kind);
    if (!cred) {
      throw unauthorized(
        presented.kind === 'token' ? 'this token is not valid (unknown, expired or revoked)' : 'your session has ended (expired or signed out)',
        presented.kind === 'token' ? 'run `oddjob login` again, or create a new token' : 'sign in again',
      );
    }
    const identity = this.now() - cred.teamsCheckedAt >= this.opts.teamRefreshMs ? await this.refresh(cred) : cred.identity;
    return {
      identity,
      via: presented.kind === 'session' ? 'session' : 'token',
      credentialId: cred.id,
      auditor: isAuditor(identity, this.opts.auditors),
    };
  }

  /** One GitHub round trip per credential at a time, however many requests are waiting. */
  private refresh(cred: Credential): Promise<Identity> {
    let p = this.inflight.get(cred.id);
    if (!p) {
      p = this.doRefresh(cred).finally(() => this.inflight.delete(cred.id));
      this.inflight.set(cred.id, p);
    }
    return p;
  }

  private async doRefresh(cred: Credential): Promise<Identity> {
    const { credentials, github, logger } = this.opts;
    const revoke = async (why: string) => {
      const r = await credentials.revoke(cred.id);
      if (r.revoked) this.opts.onRevoked?.(cred, `${why}${cascade(r.children)}`);
    };
    const token = await credentials.githubToken(cred.id);
    if (token === null) {
      await revoke('its GitHub authorization cannot be decrypted (the session secret changed)');
      throw unauthorized('your sign-in can no longer be checked with GitHub (the server was re-keyed)', 'sign in again');
    }
    let profile: GitHubProfile;
    try {
      profile = await github.profile(token, this.opts.requiredOrg);
    } catch (err) {
      if (!(err instanceof GitHubError)) throw err;
      logger.warn({ credential: cred.id, login: cred.identity.login, kind: err.kind, reason: err.message }, 'team re-check with GitHub failed');
      if (err.kind === 'unauthorized') {
        await revoke('GitHub no longer accepts its authorization');
        throw unauthorized('GitHub no longer accepts your sign-in (the authorization was revoked or has expired)', 'sign in again (`oddjob login`)');
      }
      if (err.kind === 'not_member') {
        await revoke(err.message);
        throw forbidden(`you are no longer a member of the GitHub organization ${this.opts.requiredOrg}`, 'ask an owner of the organization to add you');
      }
      throw unavailable(
        `your GitHub teams are due for a re-check and GitHub cannot answer right now (${err.message}); nothing was done`,
        'try again in a minute',
      );
    }
    // The GitHub token answers for the account it was issued to, so a changed id
    // cannot happen with a real GitHub; checked anyway, as the id is what identity is.
    if (cred.githubId !== undefined && profile.id !== cred.githubId) {
      await revoke(`GitHub says it belongs to another account (id ${profile.id}, not ${cred.githubId})`);
      throw unauthorized('your GitHub account changed since you signed in', 'sign in again');
    }
    if (profile.login.toLowerCase() !== cred.identity.login.toLowerCase()) {
      await revoke(`GitHub now names its owner ${profile.login}`);
      throw unauthorized('your GitHub account changed since you signed in', 'sign in again');
    }
    const identity = identityOf(profile);
    await credentials.recordTeams(cred.id, identity);
    return identity;
  }
}

/** The tail of a revocation message naming the tokens revoked with it. */
export function cascade(children: readonly string[]): string {
  return children.length ? `; with it the ${children.length === 1 ? 'token' : 'tokens'} it created: ${children.join(', ')}` : '';
}

export function githubFailure(err: unknown): ServiceError {
  if (err instanceof ServiceError) return err;
  if (err instanceof GitHubError) {
    switch (err.kind) {
      case 'not_member':
        return forbidden(err.message, 'ask an owner of the organization to add you');
      case 'unauthorized':
        return unauthorized('GitHub did not accept the sign-in', 'start again');
      case 'rate_limited':
      case 'unavailable':
        return unavailable(`cannot sign you in right now: ${err.message}`, 'try again in a minute');
      default:
        return new ServiceError('upstream', `cannot sign you in: ${err.message}`);
    }
  }
  return new ServiceError('internal', 'sign-in failed unexpectedly; see the server log');
}
