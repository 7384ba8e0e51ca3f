// Approval requests, kept behind a small async interface so the store can change
// engine (SQLite today, PostgreSQL next) without touching its callers. The one
// operation that matters is `decide`: a compare-and-set from pending, so of two
// approvers (or an approver and the expiry sweep) exactly one wins.
import type { Statement } from 'better-sqlite3';
import { ApprovalRequest, type ApprovalStatus, type RunRequest } from '../../protocol/api.js';
import type { TaskRunRequest } from '../../protocol/tasks.js';
import type { Database } from '../audit/db.js';

/** What the server keeps beyond the wire shape: enough to rebuild the manifest and run it as the requester. */
export interface StoredApproval extends ApprovalRequest {
  /** Hash of the manifest before images were pinned: what a change of the target is detected by. */
  baseHash: string;
  input: { kind: 'deploy'; req: RunRequest } | { kind: 'task'; req: TaskRunRequest };
  requesterTeams: string[];
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

interface Row {
  json: string;
}

export class SqliteApprovalStore implements ApprovalStore {
  private readonly insert: Statement<[Record<string, string>]>;
  private readonly getStmt: Statement<[string], Row>;
  private readonly listAll: Statement<[number], Row>;
  private readonly listByStatus: Statement<[string, number], Row>;
  private readonly decideStmt: Statement<[string, string, string]>;
  private readonly updateJson: Statement<[string, string]>;

  constructor(db: Database) {
    this.insert = db.prepare(
      `INSERT INTO approval_requests (id, status, namespace, deployment, created_at, expires_at, json)
       VALUES (@id, @status, @namespace, @deployment, @created_at, @expires_at, @json)`,
    );
    this.getStmt = db.prepare('SELECT json FROM approval_requests WHERE id = ?');
    this.listAll = db.prepare('SELECT json FROM approval_requests ORDER BY ord DESC LIMIT ?');
    this.listByStatus = db.prepare('SELECT json FROM approval_requests WHERE status = ? ORDER BY ord DESC LIMIT ?');
    // The WHERE on status is the compare-and-set: a second decision changes no row.
    this.decideStmt = db.prepare("UPDATE approval_requests SET status = ?, json = ? WHERE id = ? AND status = 'pending'");
    this.updateJson = db.prepare('UPDATE approval_requests SET json = ? WHERE id = ?');
  }

  async create(r: StoredApproval): Promise<void> {
    ApprovalRequest.parse(r);
    this.insert.run({
      id: r.id,
      status: r.status,
      namespace: r.namespace,
      deployment: r.deployment,
      created_at: r.createdAt,
      expires_at: r.expiresAt,
      json: JSON.stringify(r),
    });
  }

  async get(id: string): Promise<StoredApproval | undefined> {
    const row = this.getStmt.get(id);
    return row ? (JSON.parse(row.json) as StoredApproval) : undefined;
  }

  async list(q: { status?: ApprovalStatus; limit: number }): Promise<StoredApproval[]> {
    const rows = q.status ? this.listByStatus.all(q.status, q.limit) : this.listAll.all(q.limit);
    return rows.map((r) => JSON.parse(r.json) as StoredApproval);
  }

  async decide(id: string, patch: Partial<StoredApproval> & { status: ApprovalStatus }): Promise<StoredApproval | undefined> {
    const current = await this.get(id);
    if (!current || current.status !== 'pending') return undefined;
    const next: StoredApproval = { ...current, ...patch, id };
    // better-sqlite3 is synchronous: nothing runs between the read above and this write
    // in this process, and the WHERE guards against another process.
    return this.decideStmt.run(patch.status, JSON.stringify(next), id).changes === 1 ? next : undefined;
  }

  async note(id: string, message: string): Promise<void> {
    const current = await this.get(id);
    if (current) this.updateJson.run(JSON.stringify({ ...current, message }), id);
  }
}
