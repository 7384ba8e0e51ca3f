// The HTTP API contract shared by the server, the CLI and the web UI.
// Every body that crosses the wire is described here once, as a zod schema;
// TypeScript types are inferred from the schemas so the three sides cannot drift.
import { z } from 'zod';
import { APPROVAL_STATUSES, AUDIT_EVENT_TYPES, RUN_STATUSES, TERMINAL_STATUSES } from './names.js';

// Kubernetes object names (RFC 1123 labels / subdomains).
export const k8sName = z
  .string()
  .min(1, 'must not be empty')
  .max(253, 'must be at most 253 characters')
  .regex(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/, 'must be lowercase letters, digits, "-" or "." (a Kubernetes name)');
export const k8sLabelName = z
  .string()
  .min(1, 'must not be empty')
  .max(63, 'must be at most 63 characters')
  .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/, 'must be lowercase letters, digits or "-" (a Kubernetes DNS label)');

export const runId = z.string().regex(/^[a-z0-9]{12}$/, 'a run id is 12 lowercase letters or digits');

/** Limits that keep one request from being abusive; the server enforces them. */
export const LIMITS = {
  argvItems: 256,
  argvItemBytes: 8192,
  argvTotalBytes: 32768,
  reasonChars: 500,
  maxTimeoutSeconds: 7 * 24 * 3600,
} as const;

export const RunRequest = z
  .object({
    namespace: k8sLabelName,
    deployment: k8sName,
    container: k8sLabelName.optional(),
    /** The argv, executed as-is: never passed through a shell by oddjob. */
    command: z
      .array(z.string().max(LIMITS.argvItemBytes, `each argument must be at most ${LIMITS.argvItemBytes} bytes`))
      .min(1, 'give a command to run, e.g. -- node scripts/backfill.js')
      .max(LIMITS.argvItems, `at most ${LIMITS.argvItems} arguments`)
      .refine((a) => a[0] !== '', 'the command (first argument) must not be empty')
      .refine(
        (a) => a.reduce((n, s) => n + Buffer.byteLength(s), 0) <= LIMITS.argvTotalBytes,
        `the whole command must be at most ${LIMITS.argvTotalBytes} bytes`,
      )
      .refine((a) => a.every((s) => !s.includes('\u0000')), 'arguments must not contain NUL bytes'),
    reason: z.string().trim().max(LIMITS.reasonChars, `reason must be at most ${LIMITS.reasonChars} characters`).optional(),
    /** Keep stdin open (kubectl -i). */
    interactive: z.boolean().default(false),
    /** Allocate a TTY (kubectl -t). */
    tty: z.boolean().default(false),
    /** Upper bound for this run in seconds; capped by the Deployment's max-duration. */
    timeoutSeconds: z.number().int().positive().max(LIMITS.maxTimeoutSeconds).optional(),
    /** Drop the other regular containers instead of turning them into native sidecars. */
    noSidecars: z.boolean().default(false),
  })
  .strict();
export type RunRequest = z.infer<typeof RunRequest>;
export type RunRequestInput = z.input<typeof RunRequest>;

export const RunStatus = z.enum(RUN_STATUSES);
export type RunStatus = z.infer<typeof RunStatus>;
export { TERMINAL_STATUSES };

export const Identity = z.object({
  login: z.string(),
  /**
   * GitHub's numeric user id: what identity is keyed by. A login can be renamed and
   * then registered by someone else; the id never moves. Absent with --auth dev.
   */
  id: z.number().int().positive().optional(),
  teams: z.array(z.string()),
  name: z.string().optional(),
});
export type Identity = z.infer<typeof Identity>;

export const Run = z.object({
  id: runId,
  namespace: z.string(),
  deployment: z.string(),
  container: z.string(),
  image: z.string(),
  command: z.array(z.string()),
  reason: z.string().optional(),
  user: z.string(),
  /** The GitHub user id of who started it (absent with --auth dev and for older runs). */
  userId: z.number().int().positive().optional(),
  interactive: z.boolean(),
  tty: z.boolean(),
  status: RunStatus,
  jobName: z.string(),
  /** The uid of the Job oddjob created: only that Job, and the pod it controls, drive the run. */
  jobUid: z.string().optional(),
  podName: z.string().optional(),
  exitCode: z.number().int().optional(),
  /** Why the run failed to start or ended unusually, in words for a person. */
  message: z.string().optional(),
  createdAt: z.string(),
  startedAt: z.string().optional(),
  finishedAt: z.string().optional(),
  /** Bytes of output stored for this run (stdout + stderr). */
  outputBytes: z.number().int().nonnegative().default(0),
  outputTruncated: z.boolean().default(false),
  /**
   * Output the server could not read (the kubelet rotated it away first): bytes, or -1
   * when the amount cannot be known (the log API does not say how much it dropped).
   * Absent: nothing is missing.
   */
  outputLost: z.number().int().min(-1).optional(),
  /** When the stored output was deleted (--output-retention); the audit events stay. */
  outputExpiredAt: z.string().optional(),
  /** Notification targets this run reports to (oddjob.io/notify, configured ones only). */
  notify: z.array(z.string()).optional(),
  /** The newest progress line the run posted itself (POST /api/runs/ID/progress). */
  progress: z.object({ time: z.string(), message: z.string() }).optional(),
  /** A Task run: the Task's name and the metadata.generation that was run. */
  task: z.string().optional(),
  taskGeneration: z.number().int().nonnegative().optional(),
  /** The approval request this run carries out (four-eyes), and who approved it (they may follow it). */
  approvalId: z.string().optional(),
  approvedBy: z.object({ login: z.string(), id: z.number().int().positive().optional() }).optional(),
});
export type Run = z.infer<typeof Run>;

export const Page = <T extends z.ZodTypeAny>(item: T) => z.object({ items: z.array(item), nextCursor: z.string().optional() });

export const RunListQuery = z
  .object({
    mine: z.union([z.boolean(), z.stringbool()]).optional(),
    namespace: k8sLabelName.optional(),
    deployment: k8sName.optional(),
    status: RunStatus.optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type RunListQuery = z.infer<typeof RunListQuery>;

export const DeploymentSummary = z.object({
  namespace: z.string(),
  name: z.string(),
  containers: z.array(z.object({ name: z.string(), image: z.string() })),
  defaultContainer: z.string(),
  allowedTeams: z.array(z.string()),
  allowedUsers: z.array(z.string()),
  maxDurationSeconds: z.number().int().optional(),
});
export type DeploymentSummary = z.infer<typeof DeploymentSummary>;

/**
 * GET /api/namespaces/NS/deployments/NAME/paths?container=&word=: paths inside the
 * Deployment's image under the directories its owner declared
 * (oddjob.io/completion-paths), for shell completion. `indexing`: the listing is
 * being built (ask again in a few seconds); `unavailable`: why there is none.
 */
export const PathCompletion = z.object({
  state: z.enum(['ready', 'indexing', 'unavailable']),
  paths: z.array(z.string()),
  message: z.string().optional(),
});
export type PathCompletion = z.infer<typeof PathCompletion>;

/** GET /api/namespaces: the namespaces the server serves (signed-in callers only). */
export const NamespaceInfo = z.object({ name: z.string() });
export type NamespaceInfo = z.infer<typeof NamespaceInfo>;

export const AuditEventType = z.enum(AUDIT_EVENT_TYPES);
export type AuditEventType = z.infer<typeof AuditEventType>;

export const AuditClient = z.object({
  /** run: the run's own credential (progress from inside its pod). */
  kind: z.enum(['cli', 'web', 'api', 'server', 'run']),
  address: z.string().optional(),
  agent: z.string().optional(),
});
export type AuditClient = z.infer<typeof AuditClient>;

/** What a caller supplies when appending; seq, time and hashes are the store's. */
export const AuditEventInput = z.object({
  type: AuditEventType,
  /** id: GitHub's user id (absent with --auth dev and in events recorded before ids were kept). */
  actor: z.object({ login: z.string(), id: z.number().int().positive().optional(), teams: z.array(z.string()) }),
  client: AuditClient,
  runId: z.string().optional(),
  namespace: z.string().optional(),
  deployment: z.string().optional(),
  container: z.string().optional(),
  image: z.string().optional(),
  command: z.array(z.string()).optional(),
  reason: z.string().optional(),
  /** For run.finished / run.lost / run.cancelled: the outcome. */
  status: RunStatus.optional(),
  exitCode: z.number().int().optional(),
  durationMs: z.number().int().nonnegative().optional(),
  /** For run.finished: output that could not be read (bytes, -1: an unknown amount); absent: none. */
  outputLost: z.number().int().min(-1).optional(),
  /** Human-readable detail: the denial reason, a start failure, ... */
  message: z.string().optional(),
  /** The run's owner, when the actor is someone else (another person cancelling it). */
  owner: z.string().optional(),
  /** A run.denied of POST /api/runs/preview: a question that was refused, not an attempt. */
  preview: z.boolean().optional(),
  /** run.requested: the notification targets the run reports to, and names in oddjob.io/notify that are not targets. */
  notify: z.array(z.string()).optional(),
  notifyUnknown: z.array(z.string()).optional(),
  /** notification.redelivered: which delivery. */
  deliveryId: z.number().int().positive().optional(),
  /** A Task run or schedule event: the Task (in `namespace`), and the metadata.generation whose command was resolved. */
  task: z.string().optional(),
  taskGeneration: z.number().int().nonnegative().optional(),
  /** schedule.missed / schedule.denied / schedule.failed: the slots (nominal times, ISO 8601) the event is about. */
  slots: z.array(z.string()).optional(),
  /** approval.*: the request, and the SHA-256 of the exact Job manifest it is about. */
  requestId: z.string().optional(),
  manifestHash: z.string().optional(),
});
export type AuditEventInput = z.infer<typeof AuditEventInput>;

export const AuditEvent = AuditEventInput.extend({
  seq: z.number().int().positive(),
  time: z.string(),
  prevHash: z.string(),
  hash: z.string(),
});
export type AuditEvent = z.infer<typeof AuditEvent>;

export const AuditQuery = z
  .object({
    user: z.string().max(100).optional(),
    deployment: k8sName.optional(),
    namespace: k8sLabelName.optional(),
    type: AuditEventType.optional(),
    status: RunStatus.optional(),
    runId: runId.optional(),
    since: z.string().datetime({ offset: true }).optional(),
    until: z.string().datetime({ offset: true }).optional(),
    limit: z.coerce.number().int().min(1).max(1000).default(100),
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type AuditQuery = z.infer<typeof AuditQuery>;

export const AuditVerifyResult = z.object({
  ok: z.boolean(),
  checked: z.number().int(),
  /** First sequence number at which the chain breaks, when !ok. */
  brokenAt: z.number().int().optional(),
  problem: z.string().optional(),
});
export type AuditVerifyResult = z.infer<typeof AuditVerifyResult>;

// ---- notifications ---------------------------------------------------------

/** POST /api/runs/:id/progress, with the run's own credential: one short line. */
export const PROGRESS_MAX_CHARS = 500;
export const ProgressRequest = z
  .object({
    message: z
      .string()
      .trim()
      .min(1, 'the progress message is empty')
      .max(PROGRESS_MAX_CHARS, `a progress message is at most ${PROGRESS_MAX_CHARS} characters`)
      .refine(
        (m) => [...m].every((c) => c === '\n' || c === '\t' || (c >= ' ' && c !== '\u007f')),
        'a progress message must not contain control characters (newlines and tabs are fine)',
      ),
  })
  .strict();
export type ProgressRequest = z.infer<typeof ProgressRequest>;

/** Where a run's notifications go, as a preview shows it. */
export const NotifyRouting = z.object({ targets: z.array(z.string()), unknown: z.array(z.string()) });
export type NotifyRouting = z.infer<typeof NotifyRouting>;

export const DELIVERY_STATES = ['pending', 'delivered', 'failed'] as const;

/** One notification to one target, as the delivery log shows it (never a URL or secret). */
export const Delivery = z.object({
  id: z.number().int().positive(),
  webhookId: z.string(),
  target: z.string(),
  event: z.string(),
  runId: z.string().optional(),
  auditSeq: z.number().int(),
  state: z.enum(DELIVERY_STATES),
  attempts: z.number().int().nonnegative(),
  createdAt: z.string(),
  /** pending: when the next attempt is due. */
  nextAttemptAt: z.string().optional(),
  lastStatus: z.number().int().optional(),
  lastError: z.string().optional(),
  deliveredAt: z.string().optional(),
});
export type Delivery = z.infer<typeof Delivery>;

export const DeliveryListQuery = z
  .object({
    state: z.enum(DELIVERY_STATES).optional(),
    runId: runId.optional(),
    target: z.string().max(63).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(50),
    cursor: z.string().max(200).optional(),
  })
  .strict();
export type DeliveryListQuery = z.infer<typeof DeliveryListQuery>;

/** POST /api/notifications/redeliver: every failed delivery (dead letter) again, of one target or all. */
export const RedeliverFailedRequest = z.object({ state: z.literal('failed'), target: z.string().max(63).optional() }).strict();
export type RedeliverFailedRequest = z.infer<typeof RedeliverFailedRequest>;
export const RedeliverFailedResponse = z.object({ redelivered: z.number().int().nonnegative() });

/** Every error answer of the API has this shape. */
export const ApiErrorBody = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    hint: z.string().optional(),
  }),
});
export type ApiErrorBody = z.infer<typeof ApiErrorBody>;

/** Formats zod issues into one line a person can act on: "command: give a command ...". */
export function describeZodError(err: z.ZodError): string {
  return err.issues.map((i) => (i.path.length ? `${i.path.join('.')}: ${i.message}` : i.message)).join('; ');
}

// ---- sign-in (/auth) ------------------------------------------------------

/** GET /api/whoami: the identity plus how it was proven. */
export const WhoAmI = Identity.extend({
  auditor: z.boolean().optional(),
  auth: z.enum(['dev', 'session', 'token']).optional(),
});
export type WhoAmI = z.infer<typeof WhoAmI>;

/** POST /auth/device: a GitHub device-flow sign-in was started. */
export const DeviceLogin = z.object({
  deviceCode: z.string().min(1),
  userCode: z.string().min(1),
  verificationUri: z.string().url(),
  expiresIn: z.number().int().positive(),
  interval: z.number().int().positive(),
});
export type DeviceLogin = z.infer<typeof DeviceLogin>;

/** POST /auth/device/token: still waiting (202), or signed in (200). */
export const DeviceLoginPoll = z.discriminatedUnion('status', [
  z.object({ status: z.literal('pending') }),
  z.object({ status: z.literal('slow_down'), interval: z.number().int().positive() }),
  z.object({ status: z.literal('ok'), token: z.string().min(1), id: z.string(), expiresAt: z.string(), identity: Identity }),
]);
export type DeviceLoginPoll = z.infer<typeof DeviceLoginPoll>;

/** GET /auth/tokens: a person's live sessions and tokens (never the secrets). */
export const CredentialInfo = z.object({
  id: z.string(),
  kind: z.enum(['session', 'token']),
  description: z.string().optional(),
  createdAt: z.string(),
  expiresAt: z.string(),
  lastUsedAt: z.string().optional(),
  current: z.boolean(),
});
export type CredentialInfo = z.infer<typeof CredentialInfo>;

/** POST /auth/tokens: the new token, shown once. */
export const CreatedToken = z.object({ token: z.string().min(1), id: z.string(), expiresAt: z.string() });
export type CreatedToken = z.infer<typeof CreatedToken>;

// ---- four-eyes approval ----------------------------------------------------

export const ApprovalStatus = z.enum(APPROVAL_STATUSES);
export type ApprovalStatus = z.infer<typeof ApprovalStatus>;
export const approvalId = z.string().regex(/^[a-z0-9]{12}$/, 'a request id is 12 lowercase letters or digits');

export const Person = z.object({ login: z.string(), id: z.number().int().positive().optional() });

/** A run that waits for a second person: exactly the Job it would create, and its hash. */
export const ApprovalRequest = z.object({
  id: approvalId,
  status: ApprovalStatus,
  namespace: z.string(),
  deployment: z.string(),
  container: z.string(),
  image: z.string(),
  task: z.string().optional(),
  taskGeneration: z.number().int().nonnegative().optional(),
  /** What the program receives. */
  command: z.array(z.string()),
  reason: z.string().optional(),
  requester: Person,
  /** Who may approve, in words ("teams acme/leads; users carol"). */
  approvers: z.string(),
  /** The run id the Job carries; the run exists once the request is approved. */
  runId: runId,
  /** SHA-256 (hex) of the canonical JSON of `job`. */
  manifestHash: z.string(),
  job: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  expiresAt: z.string(),
  decidedAt: z.string().optional(),
  decidedBy: Person.optional(),
  /** The approver's or denier's reason. */
  decisionReason: z.string().optional(),
  /** Why it expired or became void, for people. */
  message: z.string().optional(),
});
export type ApprovalRequest = z.infer<typeof ApprovalRequest>;

/** POST /api/runs answers 201 with a Run, or 202 with this when the run needs approval first. */
export const PendingApproval = z.object({ approval: ApprovalRequest });
export type PendingApproval = z.infer<typeof PendingApproval>;

export const ApprovalListQuery = z
  .object({
    pending: z.union([z.boolean(), z.stringbool()]).optional(),
    limit: z.coerce.number().int().min(1).max(500).default(100),
  })
  .strict();
export type ApprovalListQuery = z.infer<typeof ApprovalListQuery>;

export const ApprovalDecision = z
  .object({ reason: z.string().trim().max(LIMITS.reasonChars, `reason must be at most ${LIMITS.reasonChars} characters`).optional() })
  .strict();
export type ApprovalDecision = z.infer<typeof ApprovalDecision>;

/** POST /api/runs/preview: the Job, plus what stands between the request and the run. */
export const RunPreview = z.object({
  job: z.record(z.string(), z.unknown()),
  /** A Task run: the argv the program would receive. */
  argv: z.array(z.string()).optional(),
  approval: z.object({ required: z.literal(true), approvers: z.string() }).optional(),
  /** Where the run's notifications would go. */
  notify: NotifyRouting.optional(),
});
export type RunPreview = z.infer<typeof RunPreview>;
