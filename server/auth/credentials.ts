// Sign-in credentials: browser sessions (in an HttpOnly cookie) and CLI/automation
// tokens (in the user's 0600 config file or ODDJOB_TOKEN). Both are 256-bit random
// strings; the database holds only their SHA-256, so a copy of the database does
// not let anyone sign in. They live in the shared store, not in memory, so any
// replica can check any credential and a restart signs nobody out.
//
// Each credential keeps the person's GitHub token, encrypted with a key derived
// from --session-secret, so the server can re-check team membership on a bounded
// interval without asking the person to sign in again.
//
// A credential belongs to a GitHub account by its numeric id, not its login: a
// login can be renamed and registered again by someone else. A token created with
// another credential (POST /auth/tokens) records it as its parent: it never
// outlives it, and revoking the parent revokes it too.
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Statement } from 'better-sqlite3';
import type { Identity } from '../../protocol/api.js';
import type { Database } from '../audit/db.js';

export type CredentialKind = 'session' | 'token';

export interface Credential {
  id: string;
  kind: CredentialKind;
  identity: Identity;
  description?: string;
  createdAt: number;
  expiresAt: number;
  lastUsedAt?: number;
  teamsCheckedAt: number;
  revokedAt?: number;
  /** The GitHub account's numeric id (absent only on rows from before it was kept, until their next re-check). */
  githubId?: number;
  /** The credential this one was created with. */
  parentId?: string;
}

/** What the owner sees in `oddjob tokens`: never the secret, never the hash. */
export interface CredentialInfo {
  id: string;
  kind: CredentialKind;
  description?: string;
  createdAt: string;
  expiresAt: string;
  lastUsedAt?: string;
}

const PREFIX = { session: 'odjs_', token: 'odjt_' } as const;

interface Row {
  id: string;
  hash: Buffer;
  kind: CredentialKind;
  login: string;
  identity: string;
  github_token: Buffer;
  description: string | null;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  teams_checked_at: number;
  revoked_at: number | null;
  parent_id: string | null;
  github_id: number | null;
}

export class CredentialStore {
  private readonly key: Buffer;
  private readonly revokeTx: (id: string) => { revoked: boolean; children: string[] };
  private readonly stmts: {
    insert: Statement;
    byHash: Statement<[Buffer], Row>;
    byId: Statement<[string], Row>;
    touch: Statement;
    teams: Statement;
    revokeTree: Statement<[string], { id: string }>;
    listByLogin: Statement<[string, number], Row>;
    listById: Statement<[number, number], Row>;
  };

  constructor(
    private readonly db: Database,
    sessionSecret: string,
    private readonly now: () => number = Date.now,
  ) {
    if (Buffer.byteLength(sessionSecret) < 32) throw new Error('the session secret must be at least 32 bytes');
    this.key = Buffer.from(hkdfSync('sha256', sessionSecret, 'oddjob', 'github-token-encryption/v1', 32));
    const revokeOne = db.prepare<[number, string]>('UPDATE auth_credentials SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL');
    const revokeTx = db.transaction((id: string) => {
      const now = this.now();
      const revoked = revokeOne.run(now, id).changes === 1;
      const children: string[] = [];
      for (const { id: child } of this.stmts.revokeTree.all(id)) {
        if (child !== id && revokeOne.run(now, child).changes === 1) children.push(child);
      }
      return { revoked, children };
    });
    this.revokeTx = (id) => revokeTx.immediate(id);
    this.stmts = {
      insert: db.prepare(
        `INSERT INTO auth_credentials (id, hash, kind, login, identity, github_token, description, created_at, expires_at, teams_checked_at, parent_id, github_id)
         VALUES (@id, @hash, @kind, @login, @identity, @github_token, @description, @created_at, @expires_at, @teams_checked_at, @parent_id, @github_id)`,
      ),
      byHash: db.prepare('SELECT * FROM auth_credentials WHERE hash = ?'),
      byId: db.prepare('SELECT * FROM auth_credentials WHERE id = ?'),
      touch: db.prepare('UPDATE auth_credentials SET last_used_at = ? WHERE id = ?'),
      // A row from before GitHub ids were kept learns its id at its first re-check.
      teams: db.prepare(
        'UPDATE auth_credentials SET identity = ?, github_id = COALESCE(github_id, ?), teams_checked_at = ? WHERE id = ? AND revoked_at IS NULL',
      ),
      // The credential and everything minted from it, however deep, revoked or not.
      revokeTree: db.prepare(
        `WITH RECURSIVE tree(id) AS (SELECT ? UNION SELECT c.id FROM auth_credentials c JOIN tree ON c.parent_id = tree.id)
         SELECT id FROM tree`,
      ),
      // --auth dev identities have no id (and no credentials); GitHub ones always do.
      listByLogin: db.prepare(
        `SELECT * FROM auth_credentials WHERE login = ? AND github_id IS NULL AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC`,
      ),
      listById: db.prepare(`SELECT * FROM auth_credentials WHERE github_id = ? AND revoked_at IS NULL AND expires_at > ? ORDER BY created_at DESC`),
    };
  }

  /**
   * Mints a credential; the returned secret is shown to its owner once and never
   * stored. With `parentId`, it expires no later than its parent (the caller decides
   * whether to refuse a longer lifetime or to shorten it; this store never lets it through).
   */
  create(input: { kind: CredentialKind; identity: Identity; githubToken: string; ttlMs: number; description?: string; parentId?: string }): {
    secret: string;
    credential: Credential;
  } {
    const id = randomBytes(6).toString('hex');
    const secret = `${PREFIX[input.kind]}${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    let expiresAt = now + input.ttlMs;
    if (input.parentId !== undefined) {
      const parent = this.get(input.parentId);
      if (!parent || parent.revokedAt !== undefined || parent.expiresAt <= now) throw new Error(`credential ${input.parentId} is not live`);
      expiresAt = Math.min(expiresAt, parent.expiresAt);
    }
    this.stmts.insert.run({
      id,
      hash: digest(secret),
      kind: input.kind,
      login: input.identity.login,
      identity: JSON.stringify(input.identity),
      github_token: this.seal(input.githubToken),
      description: input.description ?? null,
      created_at: now,
      expires_at: expiresAt,
      teams_checked_at: now,
      parent_id: input.parentId ?? null,
      github_id: input.identity.id ?? null,
    });
    return { secret, credential: this.get(id)! };
  }

  /**
   * The live credential for a presented secret, or null when it is unknown, of the
   * wrong kind, revoked or expired — the caller cannot tell which, by design.
   */
  lookup(secret: string, kind: CredentialKind): Credential | null {
    if (!secret.startsWith(PREFIX[kind]) || secret.length > 100) return null;
    const hash = digest(secret);
    const row = this.stmts.byHash.get(hash);
    if (!row || !timingSafeEqual(row.hash, hash) || row.kind !== kind) return null;
    const now = this.now();
    if (row.revoked_at !== null || row.expires_at <= now) return null;
    // Last-used is for the owner's `oddjob tokens` list; minute precision saves writes.
    if (row.last_used_at === null || now - row.last_used_at > 60_000) this.stmts.touch.run(now, row.id);
    return toCredential(row);
  }

  get(id: string): Credential | null {
    const row = this.stmts.byId.get(id);
    return row ? toCredential(row) : null;
  }

  githubToken(id: string): string | null {
    const row = this.stmts.byId.get(id);
    return row ? this.open(row.github_token) : null;
  }

  recordTeams(id: string, identity: Identity): void {
    this.stmts.teams.run(JSON.stringify(identity), identity.id ?? null, this.now(), id);
  }

  /**
   * Revokes the credential and every credential minted from it (children, their
   * children, ...), in one transaction. `revoked`: this call revoked the credential
   * itself (false: unknown or already revoked); `children`: the descendants this
   * call revoked.
   */
  revoke(id: string): { revoked: boolean; children: string[] } {
    return this.revokeTx(id);
  }

  /** Whether this credential belongs to this person: by GitHub id where there is one. */
  static owns(cred: Credential, person: Identity): boolean {
    if (person.id !== undefined) return cred.githubId === person.id;
    return cred.githubId === undefined && cred.identity.login.toLowerCase() === person.login.toLowerCase();
  }

  /** The person's live credentials, newest first. */
  list(person: Identity): CredentialInfo[] {
    const now = this.now();
    const rows = person.id !== undefined ? this.stmts.listById.all(person.id, now) : this.stmts.listByLogin.all(person.login, now);
    return rows.map((r) => ({
      id: r.id,
      kind: r.kind,
      description: r.description ?? undefined,
      createdAt: new Date(r.created_at).toISOString(),
      expiresAt: new Date(r.expires_at).toISOString(),
      lastUsedAt: r.last_used_at === null ? undefined : new Date(r.last_used_at).toISOString(),
    }));
  }

  private seal(plain: string): Buffer {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.key, iv);
    const body = Buffer.concat([c.update(plain, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]);
  }

  private open(sealed: Buffer): string | null {
    try {
      const d = createDecipheriv('aes-256-gcm', this.key, sealed.subarray(0, 12));
      d.setAuthTag(sealed.subarray(12, 28));
      return Buffer.concat([d.update(sealed.subarray(28)), d.final()]).toString('utf8');
    } catch {
      return null; // the session secret changed: the credential can no longer be refreshed
    }
  }
}

function digest(secret: string): Buffer {
  return createHash('sha256').update(secret).digest();
}

function toCredential(r: Row): Credential {
  return {
    id: r.id,
    kind: r.kind,
    identity: JSON.parse(r.identity) as Identity,
    description: r.description ?? undefined,
    createdAt: r.created_at,
    expiresAt: r.expires_at,
    lastUsedAt: r.last_used_at ?? undefined,
    teamsCheckedAt: r.teams_checked_at,
    revokedAt: r.revoked_at ?? undefined,
    githubId: r.github_id ?? undefined,
    parentId: r.parent_id ?? undefined,
  };
}
