// Every metric oddjob exports, in one place, so an operator can read the whole list
// here (and docs/operating.md says what to alert on). One registry per process: the
// server is one per process, and the edges that count things (tracker, audit store,
// watches, GitHub client) reach it without being handed it through every constructor.
import { statSync } from 'node:fs';
import client from 'prom-client';
import { cliVersion } from '../cli/version.js';

export const registry = new client.Registry();
client.collectDefaultMetrics({ register: registry });

const registers = [registry];

/** Sources for the gauges that are read at scrape time rather than kept up to date. */
const sources = {
  activeRuns: [] as Array<() => number>,
  dbPaths: [] as string[],
  sinceLastSuccess: [] as Array<() => Array<{ task: string; seconds: number }>>,
  nextSlots: [] as Array<() => Array<{ task: string; at: number }>>,
  outbox: undefined as undefined | (() => Promise<Array<{ target: string; state: string; count: number }>>),
};

/** Where the notification gauge reads its counts at scrape time (the store, shared by the replicas). */
export function setOutboxSource(read: () => Promise<Array<{ target: string; state: string; count: number }>>): () => void {
  sources.outbox = read;
  return () => {
    if (sources.outbox === read) sources.outbox = undefined;
  };
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

export const metrics = {
  buildInfo: new client.Gauge({
    name: 'oddjob_build_info',
    help: 'Always 1; the labels say which oddjob and Node.js are running',
    labelNames: ['version', 'node'],
    registers,
  }),
  httpRequestSeconds: new client.Histogram({
    name: 'oddjob_http_request_duration_seconds',
    help: 'HTTP requests by route and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  }),
  notifyDeliveries: new client.Counter({
    name: 'oddjob_notification_attempts_total',
    help: 'Notification delivery attempts by target and outcome (delivered, retry, gave_up: older than maxAge, refused: an error no retry fixes)',
    labelNames: ['target', 'outcome'],
    registers,
  }),
  notifyOwed: new client.Gauge({
    name: 'oddjob_notification_deliveries',
    help:
      'Notification deliveries still owed (state="pending", being retried) or given up (state="failed", the dead letters: ' +
      'see oddjob notifications --failed), by target; read from the shared store, so every replica reports the same numbers',
    labelNames: ['target', 'state'],
    registers,
    async collect() {
      if (!sources.outbox) return;
      this.reset();
      // A store that cannot answer must not fail the whole scrape: the gauge is left out.
      const rows = await sources.outbox().catch(() => []);
      for (const r of rows) this.set({ target: r.target, state: r.state }, r.count);
    },
  }),
  notifyDeliverySeconds: new client.Histogram({
    name: 'oddjob_notification_delivery_seconds',
    help: 'Duration of successful notification deliveries by target',
    labelNames: ['target'],
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers,
  }),
  runsStarted: new client.Counter({
    name: 'oddjob_runs_started_total',
    help: 'Runs whose Job oddjob created (started - finished = runs in flight)',
    registers,
  }),
  runsFinished: new client.Counter({
    name: 'oddjob_runs_finished_total',
    help: 'Runs that reached an end, by status (succeeded, failed, cancelled, deadline, lost)',
    labelNames: ['status'],
    registers,
  }),
  runStartDelay: new client.Histogram({
    name: 'oddjob_run_start_delay_seconds',
    help: 'From the run request to its container running (scheduling, image pull, start-up)',
    buckets: [0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300],
    registers,
  }),
  runDuration: new client.Histogram({
    name: 'oddjob_run_duration_seconds',
    help: 'From the container starting (or, for runs that never started, the request) to the run ending',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers,
  }),
  runDenials: new client.Counter({
    name: 'oddjob_run_denials_total',
    help: "Run requests refused by the deployment's policy, by reason (not_opted_in, not_allowed)",
    labelNames: ['reason'],
    registers,
  }),
  activeRuns: new client.Gauge({
    name: 'oddjob_runs_active',
    help: 'Runs this server is following (pending or running)',
    registers,
    collect() {
      this.set(sources.activeRuns.reduce((n, f) => n + f(), 0));
    },
  }),
  streamViewers: new client.Gauge({
    name: 'oddjob_stream_viewers',
    help: 'Open output streams (CLI followers, browser terminals)',
    registers,
  }),
  auditAppendSeconds: new client.Histogram({
    name: 'oddjob_audit_append_duration_seconds',
    help: 'Audit appends, one synced SQLite commit each (a group commit counts once)',
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
    registers,
  }),
  auditAppendFailures: new client.Counter({
    name: 'oddjob_audit_append_failures_total',
    help: 'Audit appends that failed (every run is refused while this grows)',
    registers,
  }),
  dbSize: new client.Gauge({
    name: 'oddjob_db_size_bytes',
    help: 'Size of the SQLite store on disk (the database file and its write-ahead log)',
    registers,
    collect() {
      this.set(sources.dbPaths.reduce((n, p) => n + fileSize(p) + fileSize(`${p}-wal`), 0));
    },
  }),
  watchRestarts: new client.Counter({
    name: 'oddjob_watch_restarts_total',
    help: 'Kubernetes watches restarted after an error, an expired resourceVersion, or silence',
    labelNames: ['resource', 'reason'],
    registers,
  }),
  leader: new client.Gauge({
    name: 'oddjob_leader',
    help: 'Whether this replica holds the leader Lease and runs the singleton work (1) or stands by (0); exactly one replica should say 1',
    registers,
  }),
  leaderTransitions: new client.Counter({
    name: 'oddjob_leader_transitions_total',
    help: 'Times this replica started or stopped leading, by direction (started, stopped)',
    labelNames: ['direction'],
    registers,
  }),
  singletonPasses: new client.Counter({
    name: 'oddjob_singleton_passes_total',
    help: 'Passes of leader-only work this replica ran, by task (output_retention); only the leader runs them',
    labelNames: ['task'],
    registers,
  }),
  // Schedules (PRODUCT.md §11), named for the SLOs the chart's PrometheusRule alerts on:
  // "starts within 20 minutes" (le="1200") and "runs to completion" (outcome).
  scheduleStartDelay: new client.Histogram({
    name: 'oddjob_schedule_start_delay_seconds',
    help: "From a slot's nominal time to its run's container running (first attempt)",
    buckets: [1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600],
    registers,
  }),
  scheduleSlots: new client.Counter({
    name: 'oddjob_schedule_slots_total',
    help: 'Schedule slots by outcome (succeeded, failed, missed, skipped, denied); failed, missed and denied are bad events',
    labelNames: ['outcome'],
    registers,
  }),
  scheduleRunDuration: new client.Histogram({
    name: 'oddjob_schedule_run_duration_seconds',
    help: 'Scheduled runs, from the container starting to the run ending, by run status',
    labelNames: ['status'],
    buckets: [1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200, 21600, 86400],
    registers,
  }),
  scheduleSinceSuccess: new client.Gauge({
    name: 'oddjob_schedule_seconds_since_last_success',
    help: "Seconds since each scheduled Task's last successful slot (only Tasks that have had one; reported by the scheduling replica)",
    labelNames: ['task'],
    registers,
    collect() {
      this.reset();
      for (const f of sources.sinceLastSuccess) for (const { task, seconds } of f()) this.set({ task }, seconds);
    },
  }),
  scheduleNextSlot: new client.Gauge({
    name: 'oddjob_schedule_next_slot_timestamp_seconds',
    help: "Each scheduled Task's next undecided slot (Unix time), as the scheduling replica sees it; far in the past means the schedule is not firing",
    labelNames: ['task'],
    registers,
    collect() {
      this.reset();
      for (const f of sources.nextSlots) for (const { task, at } of f()) this.set({ task }, at / 1000);
    },
  }),
  githubErrors: new client.Counter({
    name: 'oddjob_github_api_errors_total',
    help: 'GitHub API calls that failed, by kind (unavailable, rate_limited, bad_response, unauthorized, not_found)',
    labelNames: ['kind'],
    registers,
  }),
};

metrics.buildInfo.set({ version: cliVersion(), node: process.version }, 1);
metrics.leader.set(0);

/** Counts `activeRuns()` into oddjob_runs_active at every scrape. */
export function observeActiveRuns(activeRuns: () => number): void {
  sources.activeRuns.push(activeRuns);
}

/** Reports `f()` as oddjob_schedule_seconds_since_last_success at every scrape. */
export function observeScheduleSuccess(f: () => Array<{ task: string; seconds: number }>): void {
  sources.sinceLastSuccess.push(f);
}

/** Reports `f()` (ms since the epoch) as oddjob_schedule_next_slot_timestamp_seconds at every scrape. */
export function observeScheduleNextSlot(f: () => Array<{ task: string; at: number }>): void {
  sources.nextSlots.push(f);
}

/** Reports the size of the store at `path` as oddjob_db_size_bytes. */
export function observeDatabase(path: string): void {
  if (path !== ':memory:') sources.dbPaths.push(path);
}

/** `/api/v1/namespaces/x/pods` → pods: the label stays bounded by the kinds watched. */
export function watchedResource(path: string): string {
  return path.split('/').pop() ?? 'unknown';
}
