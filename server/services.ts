// The seams between the HTTP/WebSocket edge and what sits behind it.
// http/ and ws/ depend only on these interfaces; main.ts wires the real
// implementations (runs/, k8s/, audit/) in. Keeping the edge thin this way lets
// each side be read, and tested, on its own.
import type { IncomingMessage } from 'node:http';
import type {
  ApprovalListQuery,
  ApprovalRequest,
  AuditClient,
  AuditEvent,
  AuditQuery,
  AuditVerifyResult,
  Delivery,
  DeliveryListQuery,
  DeploymentSummary,
  NotifyRouting,
  Identity,
  PathCompletion,
  PendingApproval,
  ResizeFrameShape,
  Run,
  RunListQuery,
  RunPreview,
  RunRequest,
  TaskRunRequest,
  TaskSummary,
} from './service-types.js';
import type { ScheduleSlot, ScheduleSummary } from '../protocol/schedules.js';

export type { AuditClient, Identity };

/** Who is asking and from where; every call that can be audited carries it. */
export interface RequestContext {
  identity: Identity;
  client: AuditClient;
  /** May read every run and audit event (Principal.auditor); absent means no. */
  auditor?: boolean;
}

/** A connected stream viewer (a CLI or a browser terminal). */
export interface Viewer {
  /** Output bytes in stored order; offsets are implied by the order. */
  output(channel: 1 | 2, data: Buffer): void;
  status(frame: import('../protocol/frames.js').StatusFrame): void;
  /** The server is done with this viewer (after an `end` or `error` status). */
  close(): void;
  /** Bytes sent to this viewer and not yet taken by it (live output slows down for it, briefly). */
  backlog?(): number;
  /**
   * Whether it can take more replayed output now (its socket has drained); a viewer
   * without it takes everything at once. Replays are paced by it.
   */
  ready?(): boolean;
  /** Calls `cb` once, when ready() turns true (never, if the viewer goes away). */
  onReady?(cb: () => void): void;
}

/** What the edge can send into a run on behalf of an attached viewer. */
export interface ViewerHandle {
  /** What this viewer may send: stdin (the owner of an interactive run), resize (and a TTY). */
  readonly accepts: { stdin: boolean; resize: boolean };
  /**
   * Passes stdin on (an empty chunk is end of input). false: the run's input backlog is
   * full; stop reading from the viewer until `stdinDrained` resolves.
   */
  stdin(data: Buffer): boolean;
  stdinDrained(): Promise<void>;
  resize(size: ResizeFrameShape): void;
  detach(): void;
}

export interface RunService {
  /**
   * Authorize, audit (before anything is created), clone, create. Throws ServiceError
   * (server/errors.ts). A target that needs four-eyes approval gets a request instead.
   */
  createRun(ctx: RequestContext, req: RunRequest | TaskRunRequest): Promise<Run | PendingApproval>;
  /**
   * What createRun would create, authorized the same way, without creating
   * anything: the Job manifest (its run id is a throwaway). A refusal is audited
   * as run.denied marked `preview`; an allowed preview is not recorded.
   */
  previewRun(ctx: RequestContext, req: RunRequest | TaskRunRequest): Promise<RunPreview | { job: object; notify?: NotifyRouting }>;
  /**
   * A progress line from inside the run, authorized by the run's own credential only
   * (not a person): audited as run.progress and sent to the run's targets. 401 for a
   * wrong credential, another run's, or a run that has ended.
   */
  postProgress(runId: string, token: string, message: string, client: AuditClient): Promise<Run>;
  getRun(ctx: RequestContext, id: string): Promise<Run>;
  /** The stored output of a run the caller may see, in produced order (for downloads). */
  readOutput(ctx: RequestContext, id: string): Promise<{ run: Run; chunks: AsyncIterable<{ channel: 1 | 2; data: Buffer }> }>;
  listRuns(ctx: RequestContext, q: RunListQuery): Promise<{ items: Run[]; nextCursor?: string }>;
  /** Its owner, or anyone who may run in its Deployment now (auditors only read); audited with the canceller as actor. */
  cancelRun(ctx: RequestContext, id: string): Promise<Run>;
  /**
   * Replays stored output from `from` bytes, then (with follow) streams live until
   * the run ends, or until the viewer may no longer see the run (an `error` frame,
   * code forbidden). stdin/resize are only accepted for interactive runs, only from
   * the user who started the run, and only while they may still run in its Deployment.
   */
  attachViewer(ctx: RequestContext, id: string, opts: { from: number; follow: boolean }, viewer: Viewer): Promise<ViewerHandle>;
}

/** Schedules of Tasks (PRODUCT.md §11): listing, slot history, suspend and resume (audited). */
export interface ScheduleService {
  list(ctx: RequestContext, namespace?: string): Promise<ScheduleSummary[]>;
  history(ctx: RequestContext, task: { namespace: string; name: string }, opts: { limit: number; before?: string }): Promise<ScheduleSlot[]>;
  suspend(ctx: RequestContext, task: { namespace: string; name: string }, reason: string): Promise<ScheduleSummary>;
  resume(ctx: RequestContext, task: { namespace: string; name: string }): Promise<ScheduleSummary>;
}

/** The delivery log (auditors only; the edge checks). */
export interface NotificationService {
  list(q: DeliveryListQuery): Promise<{ items: Delivery[]; nextCursor?: string }>;
  /** Due again now, same webhook id; audited by the edge's caller. undefined: no such delivery, or it is in flight. */
  redeliver(ctx: RequestContext, id: number): Promise<Delivery | undefined>;
  /** Every failed delivery (of one target, or all) due again now, audited; how many. */
  redeliverFailed(ctx: RequestContext, target: string | undefined): Promise<number>;
}

export interface TaskService {
  /** Tasks the caller may run; invalid ones too (ready: false) for those who may run in their Deployment. */
  listTasks(ctx: RequestContext, namespace?: string): Promise<TaskSummary[]>;
}

export interface ApprovalService {
  /** Requests the caller made, may decide on, or may see (auditors, people who may run in the Deployment); newest first. */
  listRequests(ctx: RequestContext, q: ApprovalListQuery): Promise<ApprovalRequest[]>;
  getRequest(ctx: RequestContext, id: string): Promise<ApprovalRequest>;
  /** Not by the requester (GitHub id); the approver's right re-checked now; runs the recorded manifest once. */
  approve(ctx: RequestContext, id: string, reason?: string): Promise<ApprovalRequest>;
  deny(ctx: RequestContext, id: string, reason: string): Promise<ApprovalRequest>;
}

export interface DeploymentService {
  /** The namespaces this server serves; the edge only answers signed-in callers. */
  servedNamespaces(): string[];
  /** Deployments in the served namespaces that this identity may run in. */
  listRunnable(ctx: RequestContext, namespace?: string): Promise<DeploymentSummary[]>;
  /** Paths in the Deployment's image for shell completion; only for people who may run there. */
  completePaths(ctx: RequestContext, q: { namespace: string; deployment: string; container?: string; word: string }): Promise<PathCompletion>;
}

export interface AuditService {
  /** actorId: with user, only events by that GitHub account (see store/audit.ts ActorScope). */
  query(q: AuditQuery & { actorId?: number }): Promise<{ items: AuditEvent[]; nextCursor?: string }>;
  /** Every event in order, for NDJSON export and verification. */
  iterate(q?: Partial<AuditQuery> & { actorId?: number }): AsyncIterable<AuditEvent>;
  /** Re-hashes the whole chain; may take seconds, so implementations keep it off the event loop. */
  verify(): Promise<AuditVerifyResult>;
}

/** Who is calling, and how they proved it. */
export interface Principal {
  identity: Identity;
  /**
   * dev: the fixed demo identity; session: a browser cookie (so mutations must also
   * pass the Origin check: cookies ride along on cross-site requests); token: an
   * Authorization bearer token (CLI, automation), which a browser never adds by itself.
   */
  via: 'dev' | 'session' | 'token';
  /** The session or token record, for sign-out and `oddjob tokens`. */
  credentialId?: string;
  /** May read every audit event (others see only their own). */
  auditor: boolean;
}

/**
 * Resolves the caller of an HTTP request or WebSocket upgrade; null = anonymous.
 * Throws ServiceError when it cannot decide safely (GitHub unreachable while the
 * teams are due for a re-check: 503), or when the person may not use oddjob at all (403).
 */
export interface Authenticator {
  readonly mode: 'dev' | 'github';
  authenticate(req: IncomingMessage): Promise<Principal | null>;
}

/** Shared request counters (in the store), so a rate limit holds across replicas. */
export interface RateCounters {
  /** Counts one hit for `key` in its window of `windowMs`: the hits so far, and when the window ends (ms). */
  hit(key: string, windowMs: number): Promise<{ hits: number; resetAt: number }>;
  unhit(key: string): Promise<void>;
  reset(key: string): Promise<void>;
}

/** Reports whether the service can take work (DB writable, Kubernetes reachable). */
export interface ReadinessCheck {
  name: string;
  check(): Promise<void>; // throws with a message when not ready
}
