// One list of named schema migrations for both engines. Each entry has the SQL for
// SQLite and for PostgreSQL (the DDL differs: collations, identity columns, trigger
// syntax); kysely's Migrator records which names a database has seen. Append new
// entries, never edit old ones.
//
// SQLite files written before the store moved to kysely counted migrations in
// `user_version` (the first four entries below, in order); opening one adopts that
// count once, so such a file is brought forward by running only what it has not seen.
// user_version keeps counting, so an older oddjob refuses a file a newer one migrated.
import type BetterSqlite3 from 'better-sqlite3';
import { type Kysely, sql } from 'kysely';
import { type Migration, type MigrationProvider, Migrator } from 'kysely/migration';
import type { Engine } from './schema.js';

interface NamedMigration {
  name: string;
  sqlite: string;
  postgres: string;
}

const MIGRATIONS: readonly NamedMigration[] = [
  {
    // audit log, run projection, run output
    name: '0001-audit-runs-output',
    sqlite: `
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
    postgres: `
  -- Text columns that are compared as keys (times, ids) use the "C" collation: byte
  -- order, the same as SQLite's, whatever the database's default locale.
  CREATE TABLE audit_events (
    seq        bigint PRIMARY KEY,
    time       text COLLATE "C" NOT NULL,
    type       text NOT NULL,
    login      text NOT NULL,
    namespace  text,
    deployment text,
    status     text,
    run_id     text,
    json       text NOT NULL
  );
  -- login is matched case-insensitively (SQLite: COLLATE NOCASE), so its index is on lower(login).
  CREATE INDEX audit_events_login      ON audit_events (lower(login), seq);
  CREATE INDEX audit_events_time       ON audit_events (time, seq);
  CREATE INDEX audit_events_type       ON audit_events (type, seq);
  CREATE INDEX audit_events_namespace  ON audit_events (namespace, seq)  WHERE namespace IS NOT NULL;
  CREATE INDEX audit_events_deployment ON audit_events (deployment, seq) WHERE deployment IS NOT NULL;
  CREATE INDEX audit_events_status     ON audit_events (status, seq)     WHERE status IS NOT NULL;
  CREATE INDEX audit_events_run_id     ON audit_events (run_id, seq)     WHERE run_id IS NOT NULL;

  -- Append-only, as in SQLite. A role that owns the table can drop these, which is why
  -- verify() recomputes the chain; grant the server's role no more than it needs.
  CREATE FUNCTION oddjob_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    RAISE EXCEPTION 'audit events are append-only: % is not allowed', TG_OP;
  END $$;
  CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION oddjob_audit_append_only();
  CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION oddjob_audit_append_only();

  CREATE TABLE audit_head (
    id   integer PRIMARY KEY CHECK (id = 1),
    seq  bigint NOT NULL,
    hash text NOT NULL,
    time text COLLATE "C" NOT NULL
  );
  CREATE FUNCTION oddjob_audit_head_guard() RETURNS trigger LANGUAGE plpgsql AS $$
  BEGIN
    IF TG_OP <> 'UPDATE' THEN RAISE EXCEPTION 'the audit head cannot be deleted'; END IF;
    IF NEW.seq <= OLD.seq THEN RAISE EXCEPTION 'the audit head only moves forward'; END IF;
    RETURN NEW;
  END $$;
  CREATE TRIGGER audit_head_forward_only BEFORE UPDATE OR DELETE ON audit_head
    FOR EACH ROW EXECUTE FUNCTION oddjob_audit_head_guard();
  CREATE TRIGGER audit_head_no_truncate BEFORE TRUNCATE ON audit_head
    FOR EACH STATEMENT EXECUTE FUNCTION oddjob_audit_append_only();

  CREATE TABLE runs (
    ord        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    login      text NOT NULL,
    namespace  text NOT NULL,
    deployment text NOT NULL,
    status     text NOT NULL,
    created_at text COLLATE "C" NOT NULL,
    json       text NOT NULL
  );
  CREATE INDEX runs_login      ON runs (lower(login), ord);
  CREATE INDEX runs_namespace  ON runs (namespace, ord);
  CREATE INDEX runs_deployment ON runs (deployment, ord);
  CREATE INDEX runs_status     ON runs (status, ord);

  CREATE TABLE run_output_meta (
    run_id    text PRIMARY KEY,
    bytes     bigint NOT NULL,
    truncated integer NOT NULL
  );
  CREATE TABLE run_output_chunks (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id   text NOT NULL REFERENCES run_output_meta (run_id),
    "offset" bigint NOT NULL,
    channel  integer NOT NULL CHECK (channel IN (1, 2)),
    data     bytea NOT NULL,
    UNIQUE (run_id, "offset")
  );
`,
  },
  {
    // sign-in credentials: browser sessions and CLI/automation tokens
    name: '0002-credentials',
    sqlite: `
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
    postgres: `
  CREATE TABLE auth_credentials (
    id               text PRIMARY KEY,
    hash             bytea NOT NULL UNIQUE,
    kind             text NOT NULL CHECK (kind IN ('session', 'token')),
    login            text NOT NULL,
    identity         text NOT NULL,
    github_token     bytea NOT NULL,
    description      text,
    created_at       bigint NOT NULL,
    expires_at       bigint NOT NULL,
    last_used_at     bigint,
    teams_checked_at bigint NOT NULL,
    revoked_at       bigint
  );
  CREATE INDEX auth_credentials_login ON auth_credentials (lower(login), created_at);
`,
  },
  {
    // the common two-filter audit queries
    name: '0003-audit-two-filter-indexes',
    sqlite: `
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
    postgres: `
  CREATE INDEX IF NOT EXISTS audit_events_deployment_status ON audit_events (deployment, status, seq) WHERE status IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_events_namespace_status  ON audit_events (namespace, status, seq)  WHERE status IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_events_login_status      ON audit_events (lower(login), status, seq) WHERE status IS NOT NULL;
  CREATE INDEX IF NOT EXISTS audit_events_login_deployment  ON audit_events (lower(login), deployment, seq) WHERE deployment IS NOT NULL;
`,
  },
  {
    // output retention; tokens minted by tokens; identity keyed by GitHub's user id
    name: '0004-retention-token-parents-github-ids',
    sqlite: `
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
    postgres: `
  ALTER TABLE run_output_meta ADD COLUMN expired_at bigint;
  ALTER TABLE auth_credentials ADD COLUMN parent_id text;
  ALTER TABLE auth_credentials ADD COLUMN github_id bigint;
  CREATE INDEX auth_credentials_parent    ON auth_credentials (parent_id) WHERE parent_id IS NOT NULL;
  CREATE INDEX auth_credentials_github_id ON auth_credentials (github_id, created_at) WHERE github_id IS NOT NULL;
`,
  },
  {
    // request counters for rate limits, shared by every replica
    name: '0005-rate-limits',
    sqlite: `
  -- One row per limited key (a person or an address) and limiter: hits in the window
  -- that started at window_start (ms). Rows of past windows are deleted now and then.
  CREATE TABLE rate_limits (
    key          TEXT PRIMARY KEY,
    window_start INTEGER NOT NULL,
    hits         INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX rate_limits_window ON rate_limits (window_start);
  `,
    postgres: `
  CREATE TABLE rate_limits (
    key          text PRIMARY KEY,
    window_start bigint NOT NULL,
    hits         integer NOT NULL
  );
  CREATE INDEX rate_limits_window ON rate_limits (window_start);
  `,
  },
  {
    // one owner per active run: the replica that tracks it, for as long as it renews
    name: '0006-run-leases',
    sqlite: `
  CREATE TABLE run_leases (
    run_id     TEXT PRIMARY KEY,
    owner      TEXT NOT NULL,
    expires_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  CREATE INDEX run_leases_owner ON run_leases (owner);
  `,
    postgres: `
  CREATE TABLE run_leases (
    run_id     text PRIMARY KEY,
    owner      text NOT NULL,
    expires_at bigint NOT NULL
  );
  CREATE INDEX run_leases_owner ON run_leases (owner);
  `,
  },
  {
    // four-eyes approval requests (server/store/approvals.ts). json holds the request,
    // including the exact Job manifest that runs once approved; status is its own column
    // so that deciding is one compare-and-set: UPDATE ... WHERE id = ? AND status = 'pending'.
    name: '0010-approval-requests',
    sqlite: `
  CREATE TABLE approval_requests (
    ord        INTEGER PRIMARY KEY,
    id         TEXT NOT NULL UNIQUE,
    status     TEXT NOT NULL,
    namespace  TEXT NOT NULL,
    deployment TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT NOT NULL,
    json       TEXT NOT NULL
  );
  CREATE INDEX approval_requests_status ON approval_requests (status, ord);
  `,
    postgres: `
  CREATE TABLE approval_requests (
    ord        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id         text NOT NULL UNIQUE,
    status     text NOT NULL,
    namespace  text NOT NULL,
    deployment text NOT NULL,
    created_at text NOT NULL,
    expires_at text NOT NULL,
    json       text NOT NULL
  );
  CREATE INDEX approval_requests_status ON approval_requests (status, ord);
  `,
  },
  {
    // notifications: the outbox, Slack messages updated in place, run progress credentials
    name: '0030-notifications',
    sqlite: `
  -- One row per (audit event, target), inserted in the audit append's transaction.
  -- webhook_id is the Standard Webhooks message id, the same on every attempt.
  -- Nothing secret is stored: targets are named, their URLs and secrets stay in memory.
  CREATE TABLE notify_outbox (
    id           INTEGER PRIMARY KEY,
    webhook_id   TEXT NOT NULL UNIQUE,
    target       TEXT NOT NULL,
    event_type   TEXT NOT NULL,
    run_id       TEXT,
    audit_seq    INTEGER NOT NULL,
    event        TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    state        TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     INTEGER NOT NULL,
    next_at      INTEGER NOT NULL,
    lease_owner  TEXT,
    lease_until  INTEGER,
    last_status  INTEGER,
    last_error   TEXT,
    delivered_at INTEGER,
    UNIQUE (target, audit_seq)
  );
  CREATE INDEX notify_outbox_due ON notify_outbox (target, next_at) WHERE state = 'pending';
  CREATE INDEX notify_outbox_run ON notify_outbox (run_id, target) WHERE run_id IS NOT NULL;
  CREATE INDEX notify_outbox_state ON notify_outbox (state);
  -- The Slack Web API message of a run per target: its finish updates it in place.
  CREATE TABLE notify_slack_messages (
    run_id  TEXT NOT NULL,
    target  TEXT NOT NULL,
    channel TEXT NOT NULL,
    ts      TEXT NOT NULL,
    PRIMARY KEY (run_id, target)
  );
  -- A run's progress credential: only its SHA-256 is kept; it dies with the run.
  CREATE TABLE run_tokens (
    run_id     TEXT PRIMARY KEY,
    hash       BLOB NOT NULL UNIQUE,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
  );
  `,
    postgres: `
  CREATE TABLE notify_outbox (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    webhook_id   text NOT NULL UNIQUE,
    target       text NOT NULL,
    event_type   text NOT NULL,
    run_id       text,
    audit_seq    bigint NOT NULL,
    event        text NOT NULL,
    created_at   bigint NOT NULL,
    state        text NOT NULL CHECK (state IN ('pending', 'delivered', 'failed')),
    attempts     integer NOT NULL,
    next_at      bigint NOT NULL,
    lease_owner  text,
    lease_until  bigint,
    last_status  integer,
    last_error   text,
    delivered_at bigint,
    UNIQUE (target, audit_seq)
  );
  CREATE INDEX notify_outbox_due ON notify_outbox (target, next_at) WHERE state = 'pending';
  CREATE INDEX notify_outbox_run ON notify_outbox (run_id, target) WHERE run_id IS NOT NULL;
  CREATE INDEX notify_outbox_state ON notify_outbox (state);
  CREATE TABLE notify_slack_messages (
    run_id  text NOT NULL,
    target  text NOT NULL,
    channel text NOT NULL,
    ts      text NOT NULL,
    PRIMARY KEY (run_id, target)
  );
  CREATE TABLE run_tokens (
    run_id     text PRIMARY KEY,
    hash       bytea NOT NULL UNIQUE,
    expires_at bigint NOT NULL,
    revoked_at bigint
  );
  `,
  },
  {
    // control of a run from any replica: input for its owner, cancel requests, who holds its stdin
    name: '0031-run-controls',
    sqlite: `
  -- stdin (kind 0; empty data = end of input) and terminal sizes (kind 4) that a viewer on
  -- another replica sent, addressed to the replica that owned the run then; the owner
  -- feeds them to the run in seq order and deletes them. Bounded per run by the writers.
  CREATE TABLE run_input (
    seq    INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    owner  TEXT NOT NULL,
    kind   INTEGER NOT NULL CHECK (kind IN (0, 4)),
    data   BLOB NOT NULL
  );
  CREATE INDEX run_input_run ON run_input (run_id, seq);
  -- The first cancel of a run and who asked (JSON): whichever replica finishes the run
  -- (its owner, or the one that adopts it) records the ending as a cancel by them.
  CREATE TABLE run_cancels (
    run_id       TEXT PRIMARY KEY,
    json         TEXT NOT NULL,
    requested_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  -- The replica whose attach holds an interactive run's stdin: Kubernetes closes it
  -- for good when that attach ends (stdinOnce), so input may only go to that replica.
  CREATE TABLE run_sessions (
    run_id TEXT PRIMARY KEY,
    owner  TEXT NOT NULL
  ) WITHOUT ROWID;
  `,
    postgres: `
  CREATE TABLE run_input (
    seq    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    owner  text NOT NULL,
    kind   integer NOT NULL CHECK (kind IN (0, 4)),
    data   bytea NOT NULL
  );
  CREATE INDEX run_input_run ON run_input (run_id, seq);
  CREATE TABLE run_cancels (
    run_id       text PRIMARY KEY,
    json         text NOT NULL,
    requested_at bigint NOT NULL
  );
  CREATE TABLE run_sessions (
    run_id text PRIMARY KEY,
    owner  text NOT NULL
  );
  `,
  },
  {
    // places where a run's output is missing (read too late: the kubelet rotated it away).
    // offset: where in the run's output (stdout + stderr bytes) the gap is; lost: bytes
    // missing there, -1 when that cannot be known. Replays show the gap where it happened.
    name: '0031-run-output-gaps',
    sqlite: `
  CREATE TABLE run_output_gaps (
    id     INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    offset INTEGER NOT NULL,
    lost   INTEGER NOT NULL CHECK (lost >= -1),
    why    TEXT NOT NULL
  );
  CREATE INDEX run_output_gaps_run ON run_output_gaps (run_id, offset);
  `,
    postgres: `
  CREATE TABLE run_output_gaps (
    id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    run_id text NOT NULL,
    "offset" bigint NOT NULL,
    lost   bigint NOT NULL CHECK (lost >= -1),
    why    text NOT NULL
  );
  CREATE INDEX run_output_gaps_run ON run_output_gaps (run_id, "offset");
  `,
  },
  {
    // schedules: one row per slot of each scheduled Task, and per-Task scheduler state
    name: '0040-schedules',
    sqlite: `
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
    -- The launch claim: the attempt whose launch one scheduler took on, who and when.
    -- Taken with a conditional UPDATE, so each attempt of a slot is launched once.
    claimed_attempt INTEGER,
    claimed_by      TEXT,
    claimed_at      TEXT,
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
    // Times stay ISO-8601 text (as on SQLite), compared and paged as strings: COLLATE "C"
    // orders them byte by byte, as SQLite does, instead of by the server's locale.
    postgres: `
  CREATE TABLE schedule_slots (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    namespace   text NOT NULL,
    task        text NOT NULL,
    nominal     text COLLATE "C" NOT NULL,
    state       text NOT NULL CHECK (state IN ('scheduled', 'started', 'succeeded', 'failed', 'missed', 'skipped', 'denied')),
    attempt     integer NOT NULL DEFAULT 0,
    run_id      text,
    run_ids     text NOT NULL DEFAULT '[]',
    decided_at  text NOT NULL,
    started_at  text,
    finished_at text,
    message     text,
    claimed_attempt integer,
    claimed_by      text,
    claimed_at      text COLLATE "C",
    UNIQUE (namespace, task, nominal)
  );
  CREATE INDEX schedule_slots_open ON schedule_slots (namespace, task, nominal) WHERE state IN ('scheduled', 'started');
  CREATE TABLE schedule_tasks (
    namespace        text NOT NULL,
    task             text NOT NULL,
    cursor           text COLLATE "C",
    suspended_at     text,
    suspended_by     text,
    suspended_reason text,
    missed_total     integer NOT NULL DEFAULT 0,
    last_success     text COLLATE "C",
    PRIMARY KEY (namespace, task)
  );
`,
  },
];

export const SCHEMA_VERSION = MIGRATIONS.length;
/** Migrations counted by user_version before kysely kept their names. */
const LEGACY_COUNT = 4;
export const MIGRATION_NAMES = MIGRATIONS.map((m) => m.name);

function provider(engine: Engine, raw: BetterSqlite3.Database | undefined): MigrationProvider {
  return {
    async getMigrations() {
      const out: Record<string, Migration> = {};
      for (const m of MIGRATIONS) {
        out[m.name] = {
          async up(db: Kysely<unknown>) {
            // better-sqlite3 prepares one statement at a time; exec() runs a script, on the
            // same connection and inside the Migrator's transaction.
            if (engine === 'sqlite') raw!.exec(m.sqlite);
            else await sql.raw(m.postgres).execute(db);
          },
        };
      }
      return out;
    },
  };
}

/**
 * Brings the schema to this build's version. Throws an Error saying what to do when the
 * database was written by a newer oddjob or a migration fails.
 */
export async function migrate(db: Kysely<unknown>, engine: Engine, raw?: BetterSqlite3.Database): Promise<void> {
  const migrator = new Migrator({
    db,
    provider: provider(engine, raw),
    migrationTableName: 'oddjob_migrations',
    migrationLockTableName: 'oddjob_migrations_lock',
    // 0010-approval-requests shipped after 0030 and 0031-*: a database migrated before it
    // has later names already, and the default (ordered) migrator refuses to run an
    // earlier one. Each migration creates its own tables, so the order does not matter.
    allowUnorderedMigrations: true,
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const message = error instanceof Error ? error.message : String(error);
    if (/previously executed migration .* is missing/.test(message)) {
      throw new Error(`the database has migrations this build does not know (${message}); it was written by a newer oddjob — upgrade oddjob`, { cause: error });
    }
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`schema migration ${failed ?? ''} failed: ${message}`.replace('  ', ' '), { cause: error });
  }
}

/** SQLite, before migrate(): a file that counted migrations in user_version gets them recorded by name. */
export function adoptLegacyVersion(raw: BetterSqlite3.Database): void {
  // IMMEDIATE: two processes opening the same old file must not both adopt it.
  raw
    .transaction(() => {
      const version = Number(raw.pragma('user_version', { simple: true }));
      if (version > SCHEMA_VERSION) {
        throw new Error(`schema version is ${version}, newer than this build's ${SCHEMA_VERSION}; it was written by a newer oddjob — upgrade oddjob`);
      }
      const named = raw.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'oddjob_migrations'").get() !== undefined;
      if (named || version === 0) return;
      if (version > LEGACY_COUNT) throw new Error(`schema version is ${version} but the migration record is missing; restore the file from a backup`);
      // The same table kysely's Migrator creates, so it reads these as already run.
      raw.exec('CREATE TABLE oddjob_migrations (name varchar(255) NOT NULL PRIMARY KEY, timestamp varchar(255) NOT NULL)');
      const insert = raw.prepare('INSERT INTO oddjob_migrations (name, timestamp) VALUES (?, ?)');
      const at = new Date().toISOString();
      for (const m of MIGRATIONS.slice(0, version)) insert.run(m.name, at);
    })
    .immediate();
}

/** For a read-only SQLite open: the schema must already be this build's. */
export function checkSchemaCurrent(raw: BetterSqlite3.Database): void {
  const version = Number(raw.pragma('user_version', { simple: true }));
  if (version !== SCHEMA_VERSION) {
    throw new Error(`schema version is ${version}, this build needs ${SCHEMA_VERSION}; open it once read-write with this build to migrate it`);
  }
}
