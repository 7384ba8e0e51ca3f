// Approval requests. The one operation that matters is `decide`: a compare-and-set from
// pending, so of two approvers (or an approver and the expiry sweep), on this replica or
// another, exactly one wins.
import type { Kysely } from 'kysely';
import { ApprovalRequest, type ApprovalStatus, type RunRequest } from '../../protocol/api.js';
import type { TaskRunRequest } from '../../protocol/tasks.js';
import type { Connection } from './database.js';
import type { Tables } from './schema.js';

/** What the server keeps beyond the wire shape: enough to rebuild the manifest and run it as the requester. */
export interface StoredApproval extends ApprovalRequest {
  /** Hash of the manifest before images were pinned: what a change of the target is detected by. */
  baseHash: string;
  input: { kind: 'deploy'; req: RunRequest } | { kind: 'task'; req: TaskRunRequest };
  requesterTeams: string[];
  /** Where the request's approval.* events are notified: the Deployment's targets when it was made. */
  notify?: string[];
}

export interface ApprovalStore {
  create(r: StoredApproval): Promise<void>;
  get(id: string): Promise<StoredApproval | undefined>;
  /** Newest first. */
  list(q: { status?: ApprovalStatus; limit: number }): Promise<StoredApproval[]>;
  /** Moves a pending request to `patch.status`; undefined when it was not pending any more. */
  decide(id: string, patch: Partial<StoredApproval> & { status: ApprovalStatus }): Promise<StoredApproval | undefined>;
  /** Adds detail to a request in any state (e.g. why an approved one did not run). */
  note(id: string, message: string): Promise<void>;
}

export class KyselyApprovalStore implements ApprovalStore {
  constructor(private readonly conn: Connection) {}

  private get db(): Kysely<Tables> {
    return this.conn.db;
  }

  async create(r: StoredApproval): Promise<void> {
    ApprovalRequest.parse(r);
    await this.db
      .insertInto('approval_requests')
      .values({
        id: r.id,
        status: r.status,
        namespace: r.namespace,
        deployment: r.deployment,
        created_at: r.createdAt,
        expires_at: r.expiresAt,
        json: JSON.stringify(r),
      })
      .execute();
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    const row = await this.db.selectFrom('approval_requests').select('json').where('id', '=', id).executeTakeFirst();
    return row ? (JSON.parse(row.json) as StoredApproval) : undefined;
  }

  async list(q: { status?: ApprovalStatus; limit: number }): Promise<StoredApproval[]> {
    let query = this.db.selectFrom('approval_requests').select('json').orderBy('ord', 'desc').limit(q.limit);
    if (q.status) query = query.where('status', '=', q.status);
    return (await query.execute()).map((r) => JSON.parse(r.json) as StoredApproval);
  }

  async decide(id: string, patch: Partial<StoredApproval> & { status: ApprovalStatus }): Promise<StoredApproval | undefined> {
    return this.db.transaction().execute(async (trx) => {
      // PostgreSQL: the row lock makes a concurrent decider wait for this commit, then
      // see the new status. SQLite: the transaction holds the file's write turn.
      let q = trx.selectFrom('approval_requests').select('json').where('id', '=', id).where('status', '=', 'pending');
      if (this.conn.engine === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return undefined;
      const next: StoredApproval = { ...(JSON.parse(row.json) as StoredApproval), ...patch, id };
      // The WHERE on status is the compare-and-set: a second decision changes no row.
      const res = await trx
        .updateTable('approval_requests')
        .set({ status: patch.status, json: JSON.stringify(next) })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      return res.numUpdatedRows === 1n ? next : undefined;
    });
  }

  async note(id: string, message: string): Promise<void> {
    await this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('approval_requests').select('json').where('id', '=', id);
      if (this.conn.engine === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) return;
      await trx
        .updateTable('approval_requests')
        .set({ json: JSON.stringify({ ...(JSON.parse(row.json) as StoredApproval), message }) })
        .where('id', '=', id)
        .execute();
    });
  }
}
