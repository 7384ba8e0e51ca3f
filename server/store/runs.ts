// The current state of each run (a mutable projection for listing and reconciliation; the audit log stays the record).
import { type Kysely, type Transaction, sql } from 'kysely';
import { Run, RunStatus, TERMINAL_STATUSES, describeZodError, type RunListQuery } from '../../protocol/api.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { Connection } from './database.js';
import type { Tables } from './schema.js';
import { RUN_CHANNEL } from './wakeups.js';

const CURSOR_TAG = 'r';
const ACTIVE_STATUSES: readonly RunStatus[] = RunStatus.options.filter((s) => !TERMINAL_STATUSES.includes(s));

export class RunStore {
  constructor(private readonly conn: Connection) {}

  private get db(): Kysely<Tables> {
    return this.conn.db;
  }

  /** Throws if the run is invalid or its id is taken. */
  async create(run: Run): Promise<Run> {
    const valid = Run.parse(run);
    await this.db.insertInto('runs').values(columns(valid)).execute();
    return valid;
  }

  /** Merges `patch` into the stored run and returns the result; throws if the run does not exist. */
  async update(id: string, patch: Partial<Run>): Promise<Run> {
    if (patch.id !== undefined && patch.id !== id) throw new Error(`cannot change the id of run ${id}`);
    // Read-modify-write must not interleave with another writer's update of the same
    // run: SQLite's transaction holds the write lock, PostgreSQL's the row lock.
    return this.db.transaction().execute(async (trx) => {
      let q = trx.selectFrom('runs').select(['ord', 'id', 'json']).where('id', '=', id);
      if (this.conn.engine === 'postgres') q = q.forUpdate();
      const row = await q.executeTakeFirst();
      if (!row) throw new Error(`run ${id} not found`);
      const next = Run.parse({ ...toRun(row), ...patch });
      await trx.updateTable('runs').set(columns(next)).where('id', '=', id).execute();
      // Followers on other replicas learn of a new state (the end) at commit.
      if (this.conn.engine === 'postgres') await sql`select pg_notify(${RUN_CHANNEL}, ${id})`.execute(trx);
      return next;
    });
  }

  /**
   * `trx`: read inside that transaction (the audit append's hook): on SQLite one
   * connection of the process uses the file at a time, so another would wait for ever.
   */
  async get(id: string, trx?: Transaction<Tables>): Promise<Run | undefined> {
    const row = await (trx ?? this.db).selectFrom('runs').select(['ord', 'id', 'json']).where('id', '=', id).executeTakeFirst();
    return row && toRun(row);
  }

  /**
   * Newest first, one page. `user` (matched case-insensitively) is the caller's
   * resolution of `mine`, which this store does not interpret.
   * Throws InvalidCursorError for a cursor this store did not issue.
   */
  async list(q: RunListQuery & { user?: string }): Promise<{ items: Run[]; nextCursor?: string }> {
    const limit = Math.min(Math.max(Math.trunc(q.limit ?? 50), 1), 500);
    let query = this.db.selectFrom('runs').select(['ord', 'id', 'json']);
    if (q.user !== undefined) {
      // SQLite: the column is COLLATE NOCASE; PostgreSQL: indexed on lower(login).
      query = this.conn.engine === 'postgres' ? query.where(sql<boolean>`lower(login) = lower(${q.user})`) : query.where('login', '=', q.user);
    }
    if (q.namespace !== undefined) query = query.where('namespace', '=', q.namespace);
    if (q.deployment !== undefined) query = query.where('deployment', '=', q.deployment);
    if (q.status !== undefined) query = query.where('status', '=', q.status);
    if (q.cursor !== undefined) query = query.where('ord', '<', decodeCursor(CURSOR_TAG, q.cursor));
    const rows = await query
      .orderBy('ord', 'desc')
      .limit(limit + 1)
      .execute();
    const page = rows.slice(0, limit);
    const last = page.at(-1);
    const items = page.map(toRun);
    return rows.length > limit && last ? { items, nextCursor: encodeCursor(CURSOR_TAG, last.ord) } : { items };
  }

  /** Runs not yet in a terminal state, oldest first: what reconciliation on start must look at. */
  async listActive(): Promise<Run[]> {
    const rows = await this.db
      .selectFrom('runs')
      .select(['ord', 'id', 'json'])
      .where('status', 'in', [...ACTIVE_STATUSES])
      .orderBy('ord')
      .execute();
    return rows.map(toRun);
  }
}

function columns(run: Run) {
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

export function toRun(row: { id: string; json: string }): Run {
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
