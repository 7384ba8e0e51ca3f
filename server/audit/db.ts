// Opens oddjob's embedded SQLite store (audit log, run projection, run output) and keeps its schema current.
import fs from 'node:fs';
import nodePath from 'node:path';
import BetterSqlite3 from 'better-sqlite3';

export type Database = BetterSqlite3.Database;

/**
 * Schema migrations; the database's `user_version` is the number of entries applied.
 * Append new entries, never edit old ones: a file written by an older build is
 * brought forward by running only what it has not seen.
 */
const MIGRATIONS: readonly string[] = [
  /* 1: audit log, run projection, run output */ `
  -- seq is the rowid, so every index below implicitly ends in seq: "col = ? AND seq < ?
  -- ORDER BY seq DESC" is a range scan of one index, which is what keyset paging needs.
  CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    time       TEXT NOT NULL,
    type       TEXT NOT NULL,
    login      TEXT NOT NULL COLLATE NOCASE,
    namespace  TEXT,
    deployment TEXT,
    status     TEXT,
    run_id     TEXT,
    json       TEXT NOT NULL
  );
  CREATE INDEX audit_events_login      ON audit_events(login);
  CREATE INDEX audit_events_time       ON audit_events(time);
  CREATE INDEX audit_events_type       ON audit_events(type);
  -- Partial: most events lack these, and "col = ?" implies "col IS NOT NULL" to the planner.
  CREATE INDEX audit_events_namespace  ON audit_events(namespace)  WHERE namespace IS NOT NULL;
  CREATE INDEX audit_events_deployment ON audit_events(deployment) WHERE deployment IS NOT NULL;
  CREATE INDEX audit_events_status     ON audit_events(status)     WHERE status IS NOT NULL;
  CREATE INDEX audit_events_run_id     ON audit_events(run_id)     WHERE run_id IS NOT NULL;

  -- Defense in depth only: anyone who can write the file can drop these, which is
  -- why verify() recomputes the hash chain instead of trusting them.
  CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
  BEGIN SELECT RAISE(ABORT, 'audit events are append-only: UPDATE is not allowed'); END;
  CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
  BEGIN SELECT RAISE(ABORT, 'audit events are append-only: DELETE is not allowed'); END;

  -- The last append, written in the same transaction as the event. Without it,
  -- deleting the newest events leaves a chain that still verifies.
  CREATE TABLE audit_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT NOT NULL,
    time TEXT NOT NULL
  );
  CREATE TRIGGER audit_head_forward_only BEFORE UPDATE ON audit_head
  WHEN NEW.seq <> OLD.seq + 1
  BEGIN SELECT RAISE(ABORT, 'the audit head only moves forward one event at a time'); END;
  CREATE TRIGGER audit_head_no_delete BEFORE DELETE ON audit_head
  BEGIN SELECT RAISE(ABORT, 'the audit head cannot be deleted'); END;

  -- ord is the paging key (insertion order); id is the public run id.
  CREATE TABLE runs (
    ord        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    login      TEXT NOT NULL COLLATE NOCASE,
    namespace  TEXT NOT NULL,
    deployment TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at TEXT NOT NULL,
    json       TEXT NOT NULL
  );
  CREATE INDEX runs_login      ON runs(login);
  CREATE INDEX runs_namespace  ON runs(namespace);
  CREATE INDEX runs_deployment ON runs(deployment);
  CREATE INDEX runs_status     ON runs(status);

  CREATE TABLE run_output_meta (
    run_id    TEXT PRIMARY KEY,
    bytes     INTEGER NOT NULL,
    truncated INTEGER NOT NULL
  );
  -- Chunks keep a rowid (not WITHOUT ROWID): their blobs are large, and SQLite keeps
  -- large rows out of the way better in a rowid table.
  CREATE TABLE run_output_chunks (
    id      INTEGER PRIMARY KEY,
    run_id  TEXT NOT NULL REFERENCES run_output_meta(run_id),
    offset  INTEGER NOT NULL,
    channel INTEGER NOT NULL CHECK (channel IN (1, 2)),
    data    BLOB NOT NULL,
    UNIQUE (run_id, offset)
  );
  `,
  /* 2: sign-in credentials: browser sessions and CLI/automation tokens */ `
  -- Only the SHA-256 of a credential is stored; the credential itself exists only in
  -- the user's cookie or config file. The GitHub token that lets the server re-check
  -- team membership is kept encrypted (AES-256-GCM, key derived from the session secret).
  CREATE TABLE auth_credentials (
    id               TEXT PRIMARY KEY,
    hash             BLOB NOT NULL UNIQUE,
    kind             TEXT NOT NULL CHECK (kind IN ('session', 'token')),
    login            TEXT NOT NULL COLLATE NOCASE,
    identity         TEXT NOT NULL,
    github_token     BLOB NOT NULL,
    description      TEXT,
    created_at       INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    last_used_at     INTEGER,
    teams_checked_at INTEGER NOT NULL,
    revoked_at       INTEGER
  );
  CREATE INDEX auth_credentials_login ON auth_credentials (login, created_at);
  `,
  /* 3: the common two-filter audit queries */ `
  -- One index serves one equality; with "deployment = ? AND status = ?" SQLite walks the
  -- deployment's events and checks each row's status, which for a rare status on a busy
  -- deployment means tens of thousands of row reads (~100 ms at 1M events). These put
  -- both in one key (then seq, the rowid), so every such page is one range scan. Partial:
  -- only run.finished events carry a status. IF NOT EXISTS: an operator may have added them.
  CREATE INDEX IF NOT EXISTS audit_events_deployment_status ON audit_events(deployment, status) WHERE status IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_events_namespace_status  ON audit_events(namespace, status)  WHERE status IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_events_login_status      ON audit_events(login, status)      WHERE status IS NOT NULL;
  -- "What did this person run on this deployment": otherwise a walk of all their events.
  CREATE INDEX IF NOT EXISTS audit_events_login_deployment  ON audit_events(login, deployment)  WHERE deployment IS NOT NULL;
  `,
  /* 4: output retention; tokens minted by tokens; identity keyed by GitHub's user id */ `
  -- When a finished run's output was deleted (--output-retention); its audit events stay.
  ALTER TABLE run_output_meta ADD COLUMN expired_at INTEGER;
  -- The credential that created this one (POST /auth/tokens): revoking a credential
  -- revokes everything it minted, and a child never outlives its parent.
  ALTER TABLE auth_credentials ADD COLUMN parent_id TEXT;
  -- GitHub's numeric user id. A login can be renamed and registered again by someone
  -- else; credentials are listed and owned by this id. NULL only for rows written
  -- before it was recorded: those are matched by login, and only while GitHub says
  -- the login still has no other id (see CredentialStore).
  ALTER TABLE auth_credentials ADD COLUMN github_id INTEGER;
  CREATE INDEX auth_credentials_parent    ON auth_credentials (parent_id) WHERE parent_id IS NOT NULL;
  CREATE INDEX auth_credentials_github_id ON auth_credentials (github_id, created_at) WHERE github_id IS NOT NULL;
  `,
  /* 5: schedules: one row per slot of each scheduled Task, and per-Task scheduler state */ `
  -- UNIQUE (namespace, task, nominal): a slot is decided once. Whoever inserts it owns
  -- it, so no restart, retry or second replica can run the same slot twice.
  CREATE TABLE schedule_slots (
    id          INTEGER PRIMARY KEY,
    namespace   TEXT NOT NULL,
    task        TEXT NOT NULL,
    nominal     TEXT NOT NULL,
    state       TEXT NOT NULL CHECK (state IN ('scheduled', 'started', 'succeeded', 'failed', 'missed', 'skipped', 'denied')),
    attempt     INTEGER NOT NULL DEFAULT 0,
    run_id      TEXT,
    run_ids     TEXT NOT NULL DEFAULT '[]',
    decided_at  TEXT NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    message     TEXT,
    UNIQUE (namespace, task, nominal)
  );
  -- What the scheduler follows every tick, and one Task's running slots (concurrencyPolicy).
  CREATE INDEX schedule_slots_open ON schedule_slots (namespace, task, nominal) WHERE state IN ('scheduled', 'started');
  -- Kept apart from the Task object: suspension set with "oddjob suspend" survives
  -- re-applying the Task from git, and the cursor survives restarts and leader changes.
  CREATE TABLE schedule_tasks (
    namespace        TEXT NOT NULL,
    task             TEXT NOT NULL,
    cursor           TEXT,
    suspended_at     TEXT,
    suspended_by     TEXT,
    suspended_reason TEXT,
    missed_total     INTEGER NOT NULL DEFAULT 0,
    last_success     TEXT,
    PRIMARY KEY (namespace, task)
  );
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

export interface OpenOptions {
  /**
   * Open without writing anything (for `audit verify` against a copy, or an auditor's
   * read-only mount). The schema must already be current; appends will fail.
   */
  readonly?: boolean;
}

/**
 * Opens (creating if needed) the SQLite file at `path`, ready for use: WAL, a busy
 * timeout, foreign keys, schema migrated. Throws an Error naming the path and what to
 * do when the file cannot be opened, is not a database, or cannot be written.
 */
export function openDatabase(path: string, opts: OpenOptions = {}): Database {
  if (path === '' || path === ':memory:' || path.startsWith('file:')) {
    // An audit trail that vanishes with the process is not one; refuse rather than pretend.
    throw new Error(`the oddjob database must be a file path, got ${JSON.stringify(path)}; point it at a file on a persistent volume`);
  }
  const readonly = opts.readonly ?? false;
  let db: Database;
  try {
    db = new BetterSqlite3(path, { readonly, fileMustExist: readonly });
  } catch (err) {
    throw openError(path, err, readonly);
  }
  try {
    db.pragma('busy_timeout = 5000');
    db.pragma('foreign_keys = ON');
    if (readonly) {
      const version = userVersion(db);
      if (version !== SCHEMA_VERSION) {
        throw new Error(`schema version is ${version}, this build needs ${SCHEMA_VERSION}; open it once read-write with this build to migrate it`);
      }
      return db;
    }
    // Migrate first: it is also the write probe, so an unwritable file is reported as
    // such rather than as a journal-mode failure.
    migrate(db);
    // WAL lets exports and verification read while runs keep appending.
    const mode = db.pragma('journal_mode = WAL', { simple: true });
    if (mode !== 'wal') {
      throw new Error(`the filesystem does not support SQLite WAL mode (journal_mode stayed ${String(mode)})`);
    }
    // An acknowledged audit record is what lets a run proceed, so it has to survive a
    // power cut: FULL syncs the WAL on every commit (NORMAL could lose the last ones).
    db.pragma('synchronous = FULL');
    return db;
  } catch (err) {
    db.close();
    throw openError(path, err, readonly);
  }
}

function userVersion(db: Database): number {
  return Number(db.pragma('user_version', { simple: true }));
}

function migrate(db: Database): void {
  // IMMEDIATE takes the write lock up front: two processes opening a fresh file must not
  // both run migration 1, and a file we cannot write fails here, at start, not on the first run.
  db.transaction(() => {
    const version = userVersion(db);
    if (version > SCHEMA_VERSION) {
      throw new Error(`schema version is ${version}, newer than this build's ${SCHEMA_VERSION}; it was written by a newer oddjob — upgrade oddjob`);
    }
    for (let v = version; v < SCHEMA_VERSION; v++) db.exec(MIGRATIONS[v]!);
    // Rewritten even when unchanged: it is the cheapest real write, and SQLite opens a
    // file it may not write silently read-only, so only a write proves we can.
    db.pragma(`user_version = ${SCHEMA_VERSION}`);
  }).immediate();
}

function openError(path: string, err: unknown, readonly: boolean): Error {
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

/** Raised for a paging cursor that this store did not issue. */
export class InvalidCursorError extends Error {
  constructor(detail: string) {
    super(`invalid cursor: ${detail}; use the nextCursor of a previous page, or omit it to start from the newest`);
    this.name = 'InvalidCursorError';
  }
}

// Cursors are a tagged key: the tag keeps a runs cursor from being accepted by the
// audit log (and vice versa), and the encoding keeps clients from relying on the form.
export function encodeCursor(tag: string, key: number): string {
  return Buffer.from(`${tag}:${key}`, 'utf8').toString('base64url');
}

export function decodeCursor(tag: string, cursor: string): number {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new InvalidCursorError('not base64url');
  const m = /^([a-z]+):([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new InvalidCursorError('not a cursor issued by oddjob');
  if (m[1] !== tag) throw new InvalidCursorError(`it belongs to another listing (${m[1]}), not ${tag}`);
  const key = Number(m[2]);
  if (!Number.isSafeInteger(key)) throw new InvalidCursorError('out of range');
  return key;
}
