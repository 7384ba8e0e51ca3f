// The tables of oddjob's store, as kysely sees them (both engines: the migrations
// give each column the same meaning in SQLite and PostgreSQL).
import type { Generated } from 'kysely';

export interface AuditEventsTable {
  seq: number;
  time: string;
  type: string;
  login: string;
  namespace: string | null;
  deployment: string | null;
  status: string | null;
  run_id: string | null;
  json: string;
}

export interface AuditHeadTable {
  id: number;
  seq: number;
  hash: string;
  time: string;
}

export interface RunsTable {
  ord: Generated<number>;
  id: string;
  login: string;
  namespace: string;
  deployment: string;
  status: string;
  created_at: string;
  json: string;
}

export interface RunOutputMetaTable {
  run_id: string;
  bytes: number;
  truncated: number;
  expired_at: number | null;
}

export interface RunOutputChunksTable {
  id: Generated<number>;
  run_id: string;
  offset: number;
  channel: number;
  data: Buffer;
}

export interface AuthCredentialsTable {
  id: string;
  hash: Buffer;
  kind: 'session' | 'token';
  login: string;
  identity: string;
  github_token: Buffer;
  description: string | null;
  created_at: number;
  expires_at: number;
  last_used_at: number | null;
  teams_checked_at: number;
  revoked_at: number | null;
  parent_id: string | null;
  github_id: number | null;
}

export interface RateLimitsTable {
  key: string;
  window_start: number;
  hits: number;
}

export interface RunLeasesTable {
  run_id: string;
  owner: string;
  expires_at: number;
}

export interface ScheduleSlotsTable {
  id: Generated<number>;
  namespace: string;
  task: string;
  nominal: string;
  state: 'scheduled' | 'started' | 'succeeded' | 'failed' | 'missed' | 'skipped' | 'denied';
  attempt: Generated<number>;
  run_id: string | null;
  run_ids: Generated<string>;
  decided_at: string;
  started_at: string | null;
  finished_at: string | null;
  message: string | null;
  claimed_attempt: number | null;
  claimed_by: string | null;
  claimed_at: string | null;
}

export interface ScheduleTasksTable {
  namespace: string;
  task: string;
  cursor: string | null;
  suspended_at: string | null;
  suspended_by: string | null;
  suspended_reason: string | null;
  missed_total: Generated<number>;
  last_success: string | null;
}

export interface Tables {
  schedule_slots: ScheduleSlotsTable;
  schedule_tasks: ScheduleTasksTable;
  run_leases: RunLeasesTable;
  rate_limits: RateLimitsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  runs: RunsTable;
  run_output_meta: RunOutputMetaTable;
  run_output_chunks: RunOutputChunksTable;
  auth_credentials: AuthCredentialsTable;
}

export type Engine = 'sqlite' | 'postgres';
