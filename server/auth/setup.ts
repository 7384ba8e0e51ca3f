// Picks and wires the authenticator for --auth: the fixed demo identity, or GitHub
// sign-in (credential store, GitHub client, /auth routes).
import { hkdfSync } from 'node:crypto';
import type express from 'express';
import type { AuditLog } from '../store/audit.js';
import type { CredentialRows } from '../store/credentials.js';
import type { ServerConfig } from '../config.js';
import { clientOf } from '../http/client-of.js';
import type { Logger } from '../logger.js';
import type { Authenticator, RateCounters } from '../services.js';
import { CredentialStore } from './credentials.js';
import { createDevAuthenticator } from './dev.js';
import { GitHubAuthenticator } from './github.js';
import { GitHubClient } from './github-api.js';
import { createAuthRouter } from './routes.js';

export function createAuth(deps: {
  config: ServerConfig;
  credentialRows: CredentialRows;
  rateCounters?: RateCounters;
  audit: AuditLog;
  logger: Logger;
  publicUrl: () => string;
}): {
  auth: Authenticator;
  authRouter: express.Router;
} {
  const { config, credentialRows, rateCounters, audit, logger, publicUrl } = deps;
  const common = { audit, logger, publicUrl, clientOf, rateLimitPerMinute: config.authRateLimit, rateCounters };
  if (config.auth === 'dev') {
    logger.warn({ login: config.devUser, teams: config.devTeams }, 'DEV AUTH: every request is this identity (loopback only)');
    const auth = createDevAuthenticator({ login: config.devUser, teams: [...config.devTeams] });
    return { auth, authRouter: createAuthRouter({ ...common, auth }) };
  }
  const sessionSecret = config.sessionSecret!;
  const credentials = new CredentialStore(credentialRows, sessionSecret);
  const urls = { webUrl: config.githubUrl, apiUrl: config.githubApiUrl };
  const github = new GitHubClient(urls, { clientId: config.githubClientId! });
  const auth = new GitHubAuthenticator({
    credentials,
    github,
    requiredOrg: config.githubOrg,
    teamRefreshMs: config.teamRefresh * 1000,
    auditors: config.auditors,
    logger,
    onRevoked(cred, why) {
      audit
        .append({
          type: 'token.revoked',
          actor: cred.identity,
          client: { kind: 'server' },
          message: `${cred.kind} ${cred.id}: revoked by the server: ${why}`,
        })
        .catch((err: unknown) => logger.error({ err }, 'could not record a revocation (the credential is revoked regardless)'));
    },
  });
  logger.info({ github: urls.webUrl, api: urls.apiUrl, org: config.githubOrg, teamRefreshSeconds: config.teamRefresh }, 'GitHub sign-in');
  const authRouter = createAuthRouter({
    ...common,
    auth,
    github: {
      clientId: config.githubClientId!,
      clientSecret: config.githubClientSecret!,
      urls,
      github,
      credentials,
      requiredOrg: config.githubOrg,
      sessionTtlMs: config.sessionTtl * 1000,
      tokenTtlMs: config.tokenTtl * 1000,
      stateKey: Buffer.from(hkdfSync('sha256', sessionSecret, 'oddjob', 'oauth-state/v1', 32)),
    },
  });
  return { auth, authRouter };
}
