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
import type { Identity } from '../../protocol/api.js';
import type { CredentialRow, CredentialRows } from '../store/credentials.js';
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

type Row = CredentialRow;

export class CredentialStore {
  private readonly key: Buffer;

  constructor(
    private readonly rows: CredentialRows,
    sessionSecret: string,
    private readonly now: () => number = Date.now,
  ) {
    if (Buffer.byteLength(sessionSecret) < 32) throw new Error('the session secret must be at least 32 bytes');
    this.key = Buffer.from(hkdfSync('sha256', sessionSecret, 'oddjob', 'github-token-encryption/v1', 32));
  }

  /**
   * Mints a credential; the returned secret is shown to its owner once and never
   * stored. With `parentId`, it expires no later than its parent (the caller decides
   * whether to refuse a longer lifetime or to shorten it; this store never lets it through).
   */
  async create(input: { kind: CredentialKind; identity: Identity; githubToken: string; ttlMs: number; description?: string; parentId?: string }): Promise<{
    secret: string;
    credential: Credential;
  }> {
    const id = randomBytes(6).toString('hex');
    const secret = `${PREFIX[input.kind]}${randomBytes(32).toString('base64url')}`;
    const now = this.now();
    let expiresAt = now + input.ttlMs;
    if (input.parentId !== undefined) {
      const parent = await this.get(input.parentId);
      if (!parent || parent.revokedAt !== undefined || parent.expiresAt <= now) throw new Error(`credential ${input.parentId} is not live`);
      expiresAt = Math.min(expiresAt, parent.expiresAt);
    }
    await this.rows.insert({
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
    return { secret, credential: (await this.get(id))! };
  }

  /**
   * The live credential for a presented secret, or null when it is unknown, of the
   * wrong kind, revoked or expired — the caller cannot tell which, by design.
   */
  async lookup(secret: string, kind: CredentialKind): Promise<Credential | null> {
    if (!secret.startsWith(PREFIX[kind]) || secret.length > 100) return null;
    const hash = digest(secret);
    const row = await this.rows.byHash(hash);
    if (!row || !timingSafeEqual(row.hash, hash) || row.kind !== kind) return null;
    const now = this.now();
    if (row.revoked_at !== null || row.expires_at <= now) return null;
    // Last-used is for the owner's `oddjob tokens` list; minute precision saves writes.
    if (row.last_used_at === null || now - row.last_used_at > 60_000) await this.rows.touch(row.id, now);
    return toCredential(row);
  }

  async get(id: string): Promise<Credential | null> {
    const row = await this.rows.byId(id);
    return row ? toCredential(row) : null;
  }

  async githubToken(id: string): Promise<string | null> {
    const row = await this.rows.byId(id);
    return row ? this.open(row.github_token) : null;
  }

  async recordTeams(id: string, identity: Identity): Promise<void> {
    await this.rows.recordTeams(id, JSON.stringify(identity), identity.id ?? null, this.now());
  }

  /**
   * Revokes the credential and every credential minted from it (children, their
   * children, ...), in one transaction. `revoked`: this call revoked the credential
   * itself (false: unknown or already revoked); `children`: the descendants this
   * call revoked.
   */
  revoke(id: string): Promise<{ revoked: boolean; children: string[] }> {
    return this.rows.revokeTree(id, this.now());
  }

  /** Whether this credential belongs to this person: by GitHub id where there is one. */
  static owns(cred: Credential, person: Identity): boolean {
    if (person.id !== undefined) return cred.githubId === person.id;
    return cred.githubId === undefined && cred.identity.login.toLowerCase() === person.login.toLowerCase();
  }

  /** The person's live credentials, newest first. */
  async list(person: Identity): Promise<CredentialInfo[]> {
    const rows = await this.rows.listLive(person, this.now());
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
