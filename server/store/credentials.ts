// Rows of sign-in credentials (auth/credentials.ts decides what they mean: hashing,
// encryption, lifetimes). In the shared store, so any replica can check any credential.
import { sql } from 'kysely';
import type { Connection } from './database.js';
import type { AuthCredentialsTable } from './schema.js';

export type CredentialRow = AuthCredentialsTable;

export class CredentialRows {
  constructor(private readonly conn: Connection) {}

  async insert(row: Omit<CredentialRow, 'last_used_at' | 'revoked_at'>): Promise<void> {
    await this.conn.db
      .insertInto('auth_credentials')
      .values({ ...row, last_used_at: null, revoked_at: null })
      .execute();
  }

  async byHash(hash: Buffer): Promise<CredentialRow | undefined> {
    return this.conn.db.selectFrom('auth_credentials').selectAll().where('hash', '=', hash).executeTakeFirst();
  }

  async byId(id: string): Promise<CredentialRow | undefined> {
    return this.conn.db.selectFrom('auth_credentials').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async touch(id: string, at: number): Promise<void> {
    await this.conn.db.updateTable('auth_credentials').set({ last_used_at: at }).where('id', '=', id).execute();
  }

  /** A row from before GitHub ids were kept learns its id at its first re-check. */
  async recordTeams(id: string, identity: string, githubId: number | null, at: number): Promise<void> {
    await this.conn.db
      .updateTable('auth_credentials')
      .set({ identity, github_id: sql<number | null>`coalesce(github_id, ${githubId})`, teams_checked_at: at })
      .where('id', '=', id)
      .where('revoked_at', 'is', null)
      .execute();
  }

  /**
   * Revokes the credential and everything minted from it, however deep, in one
   * transaction: whether this call revoked `id` itself, and which descendants it revoked.
   */
  async revokeTree(id: string, at: number): Promise<{ revoked: boolean; children: string[] }> {
    return this.conn.db.transaction().execute(async (trx) => {
      const { rows } = await sql<{ id: string }>`
        with recursive tree(id) as (select ${id} union select c.id from auth_credentials c join tree on c.parent_id = tree.id)
        select id from tree`.execute(trx);
      const revokeOne = async (one: string) => {
        const r = await trx.updateTable('auth_credentials').set({ revoked_at: at }).where('id', '=', one).where('revoked_at', 'is', null).executeTakeFirst();
        return Number(r.numUpdatedRows) === 1;
      };
      const revoked = await revokeOne(id);
      const children: string[] = [];
      for (const { id: child } of rows) if (child !== id && (await revokeOne(child))) children.push(child);
      return { revoked, children };
    });
  }

  /** Live credentials, newest first: by GitHub id, or (--auth dev identities, old rows) by login without one. */
  async listLive(person: { id?: number; login: string }, now: number): Promise<CredentialRow[]> {
    let q = this.conn.db.selectFrom('auth_credentials').selectAll().where('revoked_at', 'is', null).where('expires_at', '>', now);
    if (person.id !== undefined) q = q.where('github_id', '=', person.id);
    else {
      q = q.where('github_id', 'is', null);
      q = this.conn.engine === 'postgres' ? q.where(sql<boolean>`lower(login) = lower(${person.login})`) : q.where('login', '=', person.login);
    }
    return q.orderBy('created_at', 'desc').execute();
  }
}
