// Who may read the whole audit log: `--auditors` lists GitHub logins and org/team
// slugs (the same shapes as the allowed-users / allowed-teams annotations).
// Everyone else reads only the events they caused.
import type { Identity } from '../../protocol/api.js';

export interface AuditorList {
  users: string[];
  teams: string[];
}

const login = /^[a-z0-9-]{1,39}$/;
const team = /^[a-z0-9-]+\/[a-z0-9_.-]+$/;

/** Parses `alice,acme/security`; throws naming the first entry that is neither shape. */
export function parseAuditors(entries: readonly string[]): AuditorList {
  const out: AuditorList = { users: [], teams: [] };
  for (const raw of entries) {
    const e = raw.trim().toLowerCase();
    if (team.test(e)) out.teams.push(e);
    else if (login.test(e)) out.users.push(e);
    else throw new Error(`"${raw}" is neither a GitHub login nor an org/team slug`);
  }
  return out;
}

export function isAuditor(identity: Pick<Identity, 'login' | 'teams'>, list: AuditorList): boolean {
  if (list.users.includes(identity.login.toLowerCase())) return true;
  return identity.teams.some((t) => list.teams.includes(t.toLowerCase()));
}
