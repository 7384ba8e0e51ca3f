// Someone with write access to the database, behind the store's back: a second,
// independent connection that can drop oddjob's guards and edit rows (tamper tests).
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import type { DbTarget } from '../../server/store/target.js';

export interface Intruder {
  /** Runs SQL with ? placeholders (translated to $n for PostgreSQL); rows and rows changed. */
  run(sql: string, ...params: unknown[]): Promise<{ rows: Record<string, unknown>[]; changes: number }>;
  /** Drops the guard against UPDATE/DELETE of audit events (or of the head). */
  dropGuard(which: 'events-update' | 'events-delete' | 'head-update' | 'head-delete'): Promise<void>;
  close(): Promise<void>;
}

const SQLITE_TRIGGERS = {
  'events-update': 'audit_events_no_update',
  'events-delete': 'audit_events_no_delete',
  'head-update': 'audit_head_forward_only',
  'head-delete': 'audit_head_no_delete',
} as const;

export async function intruder(target: DbTarget): Promise<Intruder> {
  if (target.engine === 'sqlite') {
    const db = new BetterSqlite3(target.path);
    return {
      async run(sql, ...params) {
        const stmt = db.prepare(sql);
        if (stmt.reader) return { rows: stmt.all(...params) as Record<string, unknown>[], changes: 0 };
        return { rows: [], changes: stmt.run(...params).changes };
      },
      async dropGuard(which) {
        db.exec(`DROP TRIGGER ${SQLITE_TRIGGERS[which]}`);
      },
      async close() {
        db.close();
      },
    };
  }
  const url = new URL(target.url);
  if (target.password) url.password = encodeURIComponent(target.password);
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  return {
    async run(sql, ...params) {
      let i = 0;
      const r = await client.query(
        sql.replace(/\?/g, () => `$${++i}`),
        params,
      );
      return { rows: r.rows as Record<string, unknown>[], changes: r.rowCount ?? 0 };
    },
    async dropGuard(which) {
      // One trigger function guards both UPDATE and DELETE in PostgreSQL: drop the trigger.
      if (which.startsWith('events')) await client.query('DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events');
      else await client.query('DROP TRIGGER IF EXISTS audit_head_forward_only ON audit_head');
    },
    async close() {
      await client.end();
    },
  };
}
