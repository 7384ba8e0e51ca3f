// PURE: who may run in a Deployment, decided from its annotations and the
// person's GitHub identity. No I/O; table-tested in test/unit/policy.test.ts.

export const ANNOTATIONS = {
  allowedTeams: 'oddjob.io/allowed-teams',
  allowedUsers: 'oddjob.io/allowed-users',
  defaultContainer: 'oddjob.io/default-container',
  maxDuration: 'oddjob.io/max-duration',
  allowedContainers: 'oddjob.io/allowed-containers',
  sidecars: 'oddjob.io/sidecars',
} as const;

export interface AccessPolicy {
  /** At least one allowed-* annotation is present (even if nothing in it is valid). */
  optedIn: boolean;
  /** `org/slug`, lowercase. */
  allowedTeams: string[];
  /** logins, lowercase. */
  allowedUsers: string[];
  /** Entries that were ignored, in words an owner can act on. */
  problems: string[];
}

// GitHub: logins are alphanumerics and single hyphens (≤ 39); org logins alike;
// team slugs are lowercase alphanumerics, '-' and '_'.
const LOGIN = /^[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){0,38}$/;
const SLUG = /^[a-z0-9][a-z0-9_-]{0,99}$/;

function splitList(value: string | undefined): string[] {
  return (value ?? '')
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean);
}

export function parseAccessPolicy(annotations: Record<string, string> | undefined, defaultOrg?: string): AccessPolicy {
  const a = annotations ?? {};
  const problems: string[] = [];
  const optedIn = ANNOTATIONS.allowedTeams in a || ANNOTATIONS.allowedUsers in a;
  const org = defaultOrg?.trim().toLowerCase() || undefined;

  const allowedUsers: string[] = [];
  for (const u of splitList(a[ANNOTATIONS.allowedUsers])) {
    const login = u.replace(/^@/, '');
    if (LOGIN.test(login)) allowedUsers.push(login);
    else problems.push(`${ANNOTATIONS.allowedUsers}: "${u}" is not a GitHub login; ignored`);
  }

  const allowedTeams: string[] = [];
  for (const t of splitList(a[ANNOTATIONS.allowedTeams])) {
    const parts = t.replace(/^@/, '').split('/');
    if (parts.length === 2 && LOGIN.test(parts[0]!) && SLUG.test(parts[1]!)) {
      allowedTeams.push(`${parts[0]}/${parts[1]}`);
    } else if (parts.length === 1 && SLUG.test(parts[0]!)) {
      // A bare slug means "in the configured org"; without one it matches nobody.
      if (org) allowedTeams.push(`${org}/${parts[0]}`);
      else problems.push(`${ANNOTATIONS.allowedTeams}: "${t}" has no org and the server has no --github-org; write it as org/${parts[0]}`);
    } else {
      problems.push(`${ANNOTATIONS.allowedTeams}: "${t}" is not org/team-slug; ignored`);
    }
  }
  return { optedIn, allowedTeams: [...new Set(allowedTeams)], allowedUsers: [...new Set(allowedUsers)], problems };
}

/** `code` is the reason as a fixed word (metrics labels, logs); `reason` says it to the user. */
export type Decision = { allow: true; via: string } | { allow: false; code: 'not_opted_in' | 'not_allowed'; reason: string };

export function decideAccess(input: {
  namespace: string;
  deployment: string;
  annotations: Record<string, string> | undefined;
  identity: { login: string; teams: string[] };
  defaultOrg?: string;
}): Decision {
  const where = `${input.namespace}/${input.deployment}`;
  const policy = parseAccessPolicy(input.annotations, input.defaultOrg);
  if (!policy.optedIn) {
    return {
      allow: false,
      code: 'not_opted_in',
      reason: `deployment ${where} has not opted in to oddjob (no ${ANNOTATIONS.allowedTeams} or ${ANNOTATIONS.allowedUsers} annotation)`,
    };
  }
  const login = input.identity.login.toLowerCase();
  if (policy.allowedUsers.includes(login)) return { allow: true, via: `user ${login}` };
  const mine = new Set(input.identity.teams.map((t) => t.toLowerCase()));
  const team = policy.allowedTeams.find((t) => mine.has(t));
  if (team) return { allow: true, via: `team ${team}` };

  const teams = policy.allowedTeams.length ? policy.allowedTeams.join(', ') : 'none';
  return {
    allow: false,
    code: 'not_allowed',
    reason:
      `you (${input.identity.login}) are not in ${policy.allowedTeams.length ? policy.allowedTeams.join(' or ') : 'any allowed team'}` +
      ` or the allowed users of ${where} (allowed teams: ${teams}; allowed users: ${policy.allowedUsers.join(', ') || 'none'})`,
  };
}
