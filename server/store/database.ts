// Opens oddjob's store on either engine: a SQLite file through better-sqlite3, or a
// PostgreSQL server through a pg pool; both behind kysely, migrated to this build's
// schema. The only place that connects to a database.
import fs from 'node:fs';
import nodePath from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import {
  CompiledQuery,
  type DatabaseConnection,
  type Dialect,
  Kysely,
  PostgresDialect,
  SqliteAdapter,
  SqliteDriver,
  SqliteIntrospector,
  SqliteQueryCompiler,
  sql,
} from 'kysely';
import pg from 'pg';
import { SCHEMA_VERSION, adoptLegacyVersion, checkSchemaCurrent, migrate } from './migrations.js';
import type { Engine, Tables } from './schema.js';
import { type DbTarget, describeTarget, redact } from './target.js';

export interface OpenOptions {
  /**
   * Open without writing anything (for `audit verify` against a copy, or an auditor's
   * read-only mount). The schema must already be current; appends will fail.
   */
  readonly?: boolean;
  /** SQLite: sync every commit (FULL, the default) or only at checkpoints (NORMAL). */
  synchronous?: 'full' | 'normal';
  /** PostgreSQL: connections in the pool. */
  maxConnections?: number;
  /** PostgreSQL: told about a connection lost while idle (a server restart); the pool reconnects. */
  onIdleError?(err: Error): void;
  /** Sees every query's SQL and parameters (tests ask the planner about exactly those). */
  onQuery?(sql: string, parameters: readonly unknown[]): void;
}

export interface Connection {
  readonly engine: Engine;
  readonly db: Kysely<Tables>;
  /** The better-sqlite3 handle (SQLite only), for pragmas. */
  readonly sqlite?: BetterSqlite3.Database;
  /** The pg pool (PostgreSQL only), for LISTEN. */
  readonly pool?: pg.Pool;
  readonly target: DbTarget;
  close(): Promise<void>;
}

/**
 * Opens (creating a SQLite file if needed) and migrates. Throws an Error naming the
 * database (never its password) and what to do when it cannot be used.
 */
export async function openConnection(target: DbTarget, opts: OpenOptions = {}): Promise<Connection> {
  return target.engine === 'sqlite' ? openSqlite(target.path, opts, target) : openPostgres(target, opts);
}

function queryLog(opts: OpenOptions) {
  const onQuery = opts.onQuery;
  return onQuery ? (e: { query: { sql: string; parameters: readonly unknown[] } }) => onQuery(e.query.sql, e.query.parameters) : undefined;
}

// ── SQLite ────────────────────────────────────────────────────────────────

/**
 * One turn at a time per file, across this process's connections to it. better-sqlite3
 * waits for a lock synchronously (busy_timeout): if one connection held the write lock
 * across an await and another connection in the same process then asked for it, the
 * event loop would stop while the holder could never finish. Other processes are kept
 * out by SQLite's own locks, as before.
 */
class FileTurns {
  private static readonly byFile = new Map<string, FileTurns>();
  private tail: Promise<void> = Promise.resolve();

  static of(path: string): FileTurns {
    const key = nodePath.resolve(path);
    let turns = FileTurns.byFile.get(key);
    if (!turns) FileTurns.byFile.set(key, (turns = new FileTurns()));
    return turns;
  }

  async take(): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const before = this.tail;
    this.tail = before.then(() => mine);
    await before;
    return release;
  }
}

/** kysely's SQLite driver, but write transactions take the lock up front (BEGIN IMMEDIATE), and one connection of the process uses the file at a time. */
class ImmediateSqliteDriver extends SqliteDriver {
  private readonly turns: FileTurns;
  private release: (() => void) | undefined;

  constructor(
    database: BetterSqlite3.Database,
    private readonly readonlyDb: boolean,
  ) {
    super({ database });
    this.turns = FileTurns.of(database.name);
  }

  // kysely takes one connection per query or transaction (and serializes them per
  // Kysely instance); the file's turn is held for exactly that long.
  override async acquireConnection(): Promise<DatabaseConnection> {
    const release = await this.turns.take();
    this.release = release;
    return super.acquireConnection();
  }

  override async releaseConnection(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    release?.();
  }
  // Read-modify-write transactions (the audit head, a run's output offset) must not
  // both read before either writes; a deferred BEGIN would let two processes do that.
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw(this.readonlyDb ? 'begin' : 'begin immediate'));
  }
}

/** SQLite runs DDL in transactions; kysely's adapter says it does not, which would run migrations without one. */
class TransactionalSqliteAdapter extends SqliteAdapter {
  override get supportsTransactionalDdl(): boolean {
    return true;
  }
}

async function openSqlite(path: string, opts: OpenOptions, target: DbTarget): Promise<Connection> {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) {
    // An audit trail that vanishes with the process is not one; refuse rather than pretend.
    throw new Error(`the oddjob database must be a file path, got ${JSON.stringify(path)}; point it at a file on a persistent volume`);
  }
  const readonly = opts.readonly ?? false;
  let raw: BetterSqlite3.Database;
  try {
    raw = new BetterSqlite3(path, { readonly, fileMustExist: readonly });
  } catch (err) {
    throw sqliteOpenError(path, err, readonly);
  }
  const dialect: Dialect = {
    createAdapter: () => new TransactionalSqliteAdapter(),
    createDriver: () => new ImmediateSqliteDriver(raw, readonly),
    createIntrospector: (db) => new SqliteIntrospector(db),
    createQueryCompiler: () => new SqliteQueryCompiler(),
  };
  const db = new Kysely<Tables>({ dialect, log: queryLog(opts) });
  try {
    raw.pragma('busy_timeout = 5000');
    raw.pragma('foreign_keys = ON');
    // Direct use of the handle happens inside this process's turn at the file (see
    // FileTurns): another connection of ours may hold SQLite's lock across an await.
    const inTurn = <T>(f: () => T) => db.connection().execute(async () => f());
    if (readonly) {
      await inTurn(() => checkSchemaCurrent(raw));
    } else {
      // Migrate first: it is also the write probe, so an unwritable file is reported as
      // such rather than as a journal-mode failure.
      await inTurn(() => adoptLegacyVersion(raw));
      await migrate(db as Kysely<unknown>, 'sqlite', raw);
      await inTurn(() => {
        // Counted on, so an older oddjob refuses a file a newer one migrated.
        raw.pragma(`user_version = ${SCHEMA_VERSION}`);
        // WAL lets exports and verification read while runs keep appending.
        const mode = raw.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal') throw new Error(`the filesystem does not support SQLite WAL mode (journal_mode stayed ${String(mode)})`);
        // An acknowledged audit record is what lets a run proceed, so it has to survive a
        // power cut: FULL syncs the WAL on every commit (NORMAL could lose the last ones).
        raw.pragma(`synchronous = ${opts.synchronous === 'normal' ? 'NORMAL' : 'FULL'}`);
      });
    }
  } catch (err) {
    await db.destroy();
    throw sqliteOpenError(path, err, readonly);
  }
  return { engine: 'sqlite', db, sqlite: raw, target, close: () => db.destroy() };
}

function sqliteOpenError(path: string, err: unknown, readonly: boolean): Error {
  const raw = (err as { code?: unknown } | null)?.code;
  // SQLite reports extended codes (SQLITE_READONLY_DIRECTORY, SQLITE_CANTOPEN_ISDIR, ...);
  // the primary code is what decides the advice.
  const code = typeof raw === 'string' ? /^SQLITE_[A-Z]+/.exec(raw)?.[0] : undefined;
  const detail = err instanceof Error ? err.message : String(err);
  const dir = nodePath.dirname(nodePath.resolve(path));
  let hint: string;
  if (!fs.existsSync(dir)) {
    hint = `the directory ${dir} does not exist; create it or choose another path`;
  } else if (fs.statSync(path, { throwIfNoEntry: false })?.isDirectory()) {
    hint = 'that is a directory; give the path of a file inside it, e.g. oddjob.db';
  } else if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
    hint = 'the file is not an oddjob SQLite database; move it aside or choose another path';
  } else if (readonly && code === 'SQLITE_CANTOPEN') {
    hint = 'the file does not exist or cannot be read';
  } else if (code === 'SQLITE_READONLY' || code === 'SQLITE_CANTOPEN' || code === 'SQLITE_PERM' || code === 'SQLITE_IOERR') {
    hint = `make the file and its directory ${dir} writable by uid ${process.getuid?.() ?? '?'} ` + '(SQLite also creates -wal and -shm files next to it)';
  } else if (code === 'SQLITE_BUSY') {
    hint = 'another process holds a lock on it; stop it or wait';
  } else {
    hint = 'check the path and the error above';
  }
  return new Error(`cannot use the oddjob database ${path}: ${detail} — ${hint}`, { cause: err });
}

// ── PostgreSQL ────────────────────────────────────────────────────────────

// bigint columns (seq, offsets, millisecond times) come back as numbers: every value
// oddjob stores in one is far below 2^53.
const INT8 = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8 && format !== 'binary' ? (v: string) => Number(v) : pg.types.getTypeParser(oid, format as 'text')) as typeof pg.types.getTypeParser,
};

async function openPostgres(target: Extract<DbTarget, { engine: 'postgres' }>, opts: OpenOptions): Promise<Connection> {
  // pg lets a connection string's fields override the separate ones, so the password
  // goes into the (in-memory) URL; it is never logged from here.
  const withPassword = new URL(target.url);
  if (target.password !== undefined) withPassword.password = encodeURIComponent(target.password);
  const pool = new pg.Pool({
    connectionString: withPassword.toString(),
    max: opts.maxConnections ?? 10,
    connectionTimeoutMillis: 10_000,
    // A statement that cannot get its lock or finish in this time fails instead of
    // holding a run (and its HTTP request) forever.
    statement_timeout: 30_000,
    lock_timeout: 15_000,
    application_name: 'oddjob',
    // A read-only open (verification, an auditor's role) cannot write even by mistake.
    ...(opts.readonly ? { options: '-c default_transaction_read_only=on' } : {}),
    types,
  });
  // An idle connection dropped by the server (a restart) must not crash the process;
  // the next query gets a fresh one.
  pool.on('error', (err) => opts.onIdleError?.(err));
  // Nor one dropped while checked out between two statements of a transaction: pg emits
  // that on the client, where pg-pool listens only while it is idle, and an 'error'
  // with no listener killed the server (failover.test, PostgreSQL restarted mid-run:
  // FATAL 57P01). The transaction's next statement fails instead, and the pool drops
  // the client when it is released with that error.
  pool.on('connect', (client) => client.on('error', (err) => opts.onIdleError?.(err)));
  const db = new Kysely<Tables>({ dialect: new PostgresDialect({ pool }), log: queryLog(opts) });
  try {
    await sql`select 1`.execute(db);
    if (opts.readonly) {
      await checkPostgresSchema(db);
    } else {
      await migrate(db as Kysely<unknown>, 'postgres');
    }
  } catch (err) {
    await db.destroy().catch(() => {});
    throw postgresOpenError(target, err);
  }
  return { engine: 'postgres', db, pool, target, close: () => db.destroy() };
}

async function checkPostgresSchema(db: Kysely<Tables>): Promise<void> {
  const { MIGRATION_NAMES } = await import('./migrations.js');
  const rows = await sql<{ name: string }>`select name from oddjob_migrations`.execute(db).catch(() => ({ rows: [] as { name: string }[] }));
  const seen = new Set(rows.rows.map((r) => r.name));
  const missing = MIGRATION_NAMES.filter((n) => !seen.has(n));
  if (missing.length) throw new Error(`the schema lacks migrations ${missing.join(', ')}; start this build's server once against it to migrate it`);
}

/** What the operator should do about a PostgreSQL connection failure; never the password. */
export function postgresOpenError(target: Extract<DbTarget, { engine: 'postgres' }>, err: unknown): Error {
  const e = err as { code?: string; message?: string };
  const where = describeTarget(target);
  const url = new URL(target.url);
  const user = decodeURIComponent(url.username) || process.env.PGUSER || 'the current user';
  let hint: string;
  switch (e.code) {
    case 'ECONNREFUSED':
    case 'ENOTFOUND':
    case 'EAI_AGAIN':
    case 'EHOSTUNREACH':
    case 'ETIMEDOUT':
    case 'ENOENT':
      hint = `cannot reach the PostgreSQL server (${e.code}); check the host and port, and that the server is running and accepts connections from here`;
      break;
    case '28P01':
      hint = `PostgreSQL refused the password for user ${user}; check the password (in the URL, --db-password-file or PGPASSWORD)`;
      break;
    case '28000':
      hint = `PostgreSQL refused user ${user} (pg_hba.conf or a missing role); check the user name and the server's pg_hba.conf`;
      break;
    case '3D000':
      hint = `the database ${decodeURIComponent(url.pathname.slice(1))} does not exist; create it (createdb) or fix the URL`;
      break;
    case '42501':
      hint = `user ${user} may not create oddjob's tables; grant it CREATE on the database's schema, or run the first start as the owner`;
      break;
    default:
      if (/password must be a string|no password/i.test(e.message ?? '')) {
        hint = 'the server asks for a password and none was given; put it in the URL, --db-password-file or PGPASSWORD';
      } else if (/timeout/i.test(e.message ?? '')) {
        hint = 'the connection timed out; check the host and port, and that the server is running and accepts connections from here';
      } else {
        hint = 'check the URL and the error above';
      }
  }
  // pg's messages name hosts and users, never the password; redact anyway in case a URL is echoed.
  const detail = redact(e.message ?? String(err));
  const msg = target.password ? detail.split(target.password).join('***') : detail;
  return new Error(`cannot use the oddjob database ${where}: ${msg} — ${hint}`, { cause: err });
}
