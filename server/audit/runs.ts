// The current state of each run (a mutable projection for listing and reconciliation; the audit log stays the record).
import type { Statement } from 'better-sqlite3';
import { Run, RunStatus, TERMINAL_STATUSES, describeZodError, type RunListQuery } from '../../protocol/api.js';
import { type Database, decodeCursor, encodeCursor } from './db.js';

interface RunRow {
  ord: number;
  id: string;
  json: string;
}

type Params = Record<string, string | number>;

const CURSOR_TAG = 'r';
const ACTIVE_STATUSES: readonly RunStatus[] = RunStatus.options.filter((s) => !TERMINAL_STATUSES.includes(s));

export class RunStore {
  private readonly insertStmt: Statement<[Params]>;
  private readonly updateStmt: Statement<[Params]>;
  private readonly getStmt: Statement<[string], RunRow>;
  private readonly activeStmt: Statement<[], RunRow>;
  private readonly updateTx: (id: string, patch: Partial<Run>) => Run;
  private readonly cache = new Map<string, Statement<[Params], RunRow>>();

  constructor(private readonly db: Database) {
    this.insertStmt = db.prepare(
      `INSERT INTO runs (id, login, namespace, deployment, status, created_at, json)
       VALUES (@id, @login, @namespace, @deployment, @status, @created_at, @json)`,
    );
    this.updateStmt = db.prepare(
      `UPDATE runs SET login = @login, namespace = @namespace, deployment = @deployment, status = @status,
       created_at = @created_at, json = @json WHERE id = @id`,
    );
    this.getStmt = db.prepare('SELECT ord, id, json FROM runs WHERE id = ?');
    this.activeStmt = db.prepare(`SELECT ord, id, json FROM runs WHERE status IN (${ACTIVE_STATUSES.map((s) => `'${s}'`).join(', ')}) ORDER BY ord`);
    const tx = db.transaction((id: string, patch: Partial<Run>): Run => {
      const current = this.get(id);
      if (!current) throw new Error(`run ${id} not found`);
      const next = Run.parse({ ...current, ...patch });
      this.updateStmt.run(columns(next));
      return next;
    });
    // IMMEDIATE: read-modify-write must not interleave with another process's update.
    this.updateTx = (id, patch) => tx.immediate(id, patch);
  }

  /** Throws if the run is invalid or its id is taken. */
  create(run: Run): Run {
    const valid = Run.parse(run);
    this.insertStmt.run(columns(valid));
    return valid;
  }

  /** Merges `patch` into the stored run and returns the result; throws if the run does not exist. */
  update(id: string, patch: Partial<Run>): Run {
    if (patch.id !== undefined && patch.id !== id) throw new Error(`cannot change the id of run ${id}`);
    return this.updateTx(id, patch);
  }

  get(id: string): Run | undefined {
    const row = this.getStmt.get(id);
    return row && toRun(row);
  }

  /**
   * Newest first, one page. `user` (matched case-insensitively) is the caller's
   * resolution of `mine`, which this store does not interpret.
   * Throws InvalidCursorError for a cursor this store did not issue.
   */
  list(q: RunListQuery & { user?: string }): { items: Run[]; nextCursor?: string } {
    const limit = Math.min(Math.max(Math.trunc(q.limit ?? 50), 1), 500);
    const where: string[] = [];
    const params: Params = { limit: limit + 1 };
    const eq = (column: string, value: string | undefined) => {
      if (value === undefined) return;
      where.push(`${column} = @${column}`);
      params[column] = value;
    };
    eq('login', q.user);
    eq('namespace', q.namespace);
    eq('deployment', q.deployment);
    eq('status', q.status);
    if (q.cursor !== undefined) {
      where.push('ord < @before');
      params.before = decodeCursor(CURSOR_TAG, q.cursor);
    }
    const sql = 'SELECT ord, id, json FROM runs' + (where.length ? ` WHERE ${where.join(' AND ')}` : '') + ' ORDER BY ord DESC LIMIT @limit';
    let stmt = this.cache.get(sql);
    if (!stmt) {
      stmt = this.db.prepare(sql);
      this.cache.set(sql, stmt);
    }
    const rows = stmt.all(params);
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const items = page.map(toRun);
    return rows.length > limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.ord) } : { items };
  }

  /** Runs not yet in a terminal state, oldest first: what reconciliation on start must look at. */
  listActive(): Run[] {
    return this.activeStmt.all().map(toRun);
  }
}

function columns(run: Run): Params {
  return {
    id: run.id,
    login: run.user,
    namespace: run.namespace,
    deployment: run.deployment,
    status: run.status,
    created_at: run.createdAt,
    json: JSON.stringify(run),
  };
}

function toRun(row: RunRow): Run {
  // Validated on the way out too: a row written by an older build, or by hand, must fail
  // here with the run named, not later as a confusing undefined somewhere else.
  const parsed = Run.safeParse(safeJson(row.json));
  if (!parsed.success) {
    throw new Error(`stored run ${row.id} is not a valid run: ${describeZodError(parsed.error)}`);
  }
  return parsed.data;
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}
