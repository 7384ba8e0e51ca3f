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

export interface RunOutputGapsTable {
  id: Generated<number>;
  run_id: string;
  offset: number;
  lost: number;
  why: string;
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

export interface ApprovalRequestsTable {
  ord: Generated<number>;
  id: string;
  status: string;
  namespace: string;
  deployment: string;
  created_at: string;
  expires_at: string;
  json: string;
}

export interface NotifyOutboxTable {
  id: Generated<number>;
  webhook_id: string;
  target: string;
  event_type: string;
  run_id: string | null;
  audit_seq: number;
  event: string;
  created_at: number;
  state: 'pending' | 'delivered' | 'failed';
  attempts: number;
  next_at: number;
  lease_owner: string | null;
  lease_until: number | null;
  last_status: number | null;
  last_error: string | null;
  delivered_at: number | null;
}

export interface NotifySlackMessagesTable {
  run_id: string;
  target: string;
  channel: string;
  ts: string;
}

export interface RunTokensTable {
  run_id: string;
  hash: Buffer;
  expires_at: number;
  revoked_at: number | null;
}

export interface RunInputTable {
  seq: Generated<number>;
  run_id: string;
  owner: string;
  kind: number;
  data: Buffer;
}

export interface RunCancelsTable {
  run_id: string;
  json: string;
  requested_at: number;
}

export interface RunSessionsTable {
  run_id: string;
  owner: string;
}

export interface Tables {
  notify_outbox: NotifyOutboxTable;
  notify_slack_messages: NotifySlackMessagesTable;
  run_tokens: RunTokensTable;
  run_input: RunInputTable;
  run_cancels: RunCancelsTable;
  run_sessions: RunSessionsTable;
  approval_requests: ApprovalRequestsTable;
  schedule_slots: ScheduleSlotsTable;
  schedule_tasks: ScheduleTasksTable;
  run_leases: RunLeasesTable;
  rate_limits: RateLimitsTable;
  audit_events: AuditEventsTable;
  audit_head: AuditHeadTable;
  runs: RunsTable;
  run_output_meta: RunOutputMetaTable;
  run_output_gaps: RunOutputGapsTable;
  run_output_chunks: RunOutputChunksTable;
  auth_credentials: AuthCredentialsTable;
}

export type Engine = 'sqlite' | 'postgres';
