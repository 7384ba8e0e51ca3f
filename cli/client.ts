// Typed HTTP client for the oddjob API (protocol/api.ts). Every answer is
// checked against the protocol schema, so a server of another version fails
// with a readable message instead of a crash three calls later.
import { z } from 'zod';
import { TaskSummary, type TaskRunRequest } from '../protocol/tasks.js';
import {
  ApiErrorBody,
  ApprovalRequest,
  PendingApproval,
  AuditEvent,
  AuditVerifyResult,
  Delivery,
  RedeliverFailedResponse,
  DeploymentSummary,
  CreatedToken,
  CredentialInfo,
  DeviceLogin,
  DeviceLoginPoll,
  NamespaceInfo,
  PathCompletion,
  Page,
  WhoAmI,
  Run,
  describeZodError,
  type RunRequest,
  type RunStatus,
  type AuditEventType,
} from '../protocol/api.js';
import { ApiError } from '../protocol/api-error.js';
import { ScheduleSlot, ScheduleSummary } from '../protocol/schedules.js';
import { SERVER_VERSION_HEADER } from '../protocol/version.js';

export { ApiError };

/** The server could not be reached at all (refused, DNS, timeout). */
export class NetworkError extends Error {
  constructor(
    readonly server: string,
    readonly reason: string,
  ) {
    super(`cannot reach the oddjob server at ${server}: ${reason} — is it running? (set --server or ODDJOB_SERVER)`);
    this.name = 'NetworkError';
  }
}

/** "ECONNREFUSED" and friends, dug out of undici's `TypeError: fetch failed`. */
export function networkReason(err: unknown): string {
  let e = err as { code?: unknown; cause?: unknown; message?: unknown; name?: unknown } | undefined;
  if (e?.name === 'TimeoutError') return 'no answer in time';
  for (let i = 0; e && i < 5; i++) {
    if (typeof e.code === 'string' && /^E[A-Z]+$|^UND_ERR/.test(e.code)) return e.code;
    if (e.cause === undefined) break;
    e = e.cause as typeof e;
  }
  return typeof e?.message === 'string' ? e.message : String(err);
}

export interface ClientOptions {
  server: string;
  token?: string;
  /** Sent as X-Oddjob-Client: cli/<version>. */
  version: string;
  timeoutMs?: number;
  /** Called with the X-Oddjob-Version header of every answer (null when absent). */
  onServerVersion?: (version: string | null) => void;
}

type Query = Record<string, string | number | boolean | undefined>;

export interface RunListFilter {
  mine?: boolean;
  namespace?: string;
  deployment?: string;
  status?: RunStatus;
  limit?: number;
  cursor?: string;
}

export interface AuditFilter {
  user?: string;
  deployment?: string;
  namespace?: string;
  type?: AuditEventType;
  status?: RunStatus;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
}

const RunPage = Page(Run);
const AuditPage = Page(AuditEvent);
const DeploymentPage = Page(DeploymentSummary);

export class OddjobClient {
  readonly server: string;
  private readonly token: string | undefined;
  private readonly version: string;
  private readonly timeoutMs: number;
  private readonly onServerVersion: ((version: string | null) => void) | undefined;

  constructor(opts: ClientOptions) {
    this.server = opts.server.replace(/\/+$/, '');
    this.token = opts.token;
    this.version = opts.version;
    this.timeoutMs = opts.timeoutMs ?? 60_000;
    this.onServerVersion = opts.onServerVersion;
  }

  /** Headers for HTTP and the WebSocket upgrade alike. */
  headers(): Record<string, string> {
    const h: Record<string, string> = { 'X-Oddjob-Client': `cli/${this.version}` };
    if (this.token) h.Authorization = `Bearer ${this.token}`;
    return h;
  }

  whoami(): Promise<WhoAmI> {
    return this.json('GET', '/api/whoami', WhoAmI);
  }

  startDeviceLogin(): Promise<DeviceLogin> {
    return this.json('POST', '/auth/device', DeviceLogin);
  }

  pollDeviceLogin(deviceCode: string, description: string): Promise<DeviceLoginPoll> {
    return this.json('POST', '/auth/device/token', DeviceLoginPoll, { body: { deviceCode, description } });
  }

  async logout(): Promise<void> {
    await this.request('POST', '/auth/logout', {});
  }

  async tokens(): Promise<CredentialInfo[]> {
    return (await this.json('GET', '/auth/tokens', Page(CredentialInfo))).items;
  }

  createToken(description: string, expiresIn?: string): Promise<CreatedToken> {
    return this.json('POST', '/auth/tokens', CreatedToken, { body: { description, expiresIn } });
  }

  async revokeToken(id: string): Promise<void> {
    await this.request('DELETE', `/auth/tokens/${encodeURIComponent(id)}`, {});
  }

  async namespaces(): Promise<string[]> {
    return (await this.json('GET', '/api/namespaces', Page(NamespaceInfo))).items.map((n) => n.name);
  }

  async completePaths(namespace: string, deployment: string, word: string, container?: string): Promise<PathCompletion> {
    const path = `/api/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(deployment)}/paths`;
    return this.json('GET', path, PathCompletion, { query: { word, container } });
  }

  async deployments(namespace?: string): Promise<DeploymentSummary[]> {
    return (await this.json('GET', '/api/deployments', DeploymentPage, { query: { namespace } })).items;
  }

  createRun(req: RunRequest): Promise<Run> {
    return this.json('POST', '/api/runs', Run, { body: req });
  }

  /** A run, or (202) the approval request it became. */
  async startRun(req: RunRequest | TaskRunRequest): Promise<{ run: Run } | { approval: ApprovalRequest }> {
    const r = await this.json('POST', '/api/runs', Run.or(PendingApproval), { body: req });
    return 'approval' in r ? { approval: r.approval } : { run: r };
  }

  async tasks(namespace?: string): Promise<TaskSummary[]> {
    return (await this.json('GET', '/api/tasks', Page(TaskSummary), { query: { namespace } })).items;
  }

  async requests(pending: boolean): Promise<ApprovalRequest[]> {
    return (await this.json('GET', '/api/requests', Page(ApprovalRequest), { query: { pending: pending ? 'true' : undefined } })).items;
  }

  getRequest(id: string): Promise<ApprovalRequest> {
    return this.json('GET', `/api/requests/${encodeURIComponent(id)}`, ApprovalRequest);
  }

  approve(id: string, reason?: string): Promise<ApprovalRequest> {
    return this.json('POST', `/api/requests/${encodeURIComponent(id)}/approve`, ApprovalRequest, { body: { reason } });
  }

  deny(id: string, reason: string): Promise<ApprovalRequest> {
    return this.json('POST', `/api/requests/${encodeURIComponent(id)}/deny`, ApprovalRequest, { body: { reason } });
  }

  listRuns(f: RunListFilter): Promise<{ items: Run[]; nextCursor?: string }> {
    // `mine=false` would read as true through z.coerce.boolean on the server: omit it instead.
    return this.json('GET', '/api/runs', RunPage, { query: { ...f, mine: f.mine ? 'true' : undefined } });
  }

  getRun(id: string): Promise<Run> {
    return this.json('GET', `/api/runs/${encodeURIComponent(id)}`, Run);
  }

  cancelRun(id: string): Promise<Run> {
    return this.json('POST', `/api/runs/${encodeURIComponent(id)}/cancel`, Run);
  }

  schedules(namespace?: string): Promise<ScheduleSummary[]> {
    return this.json('GET', '/api/schedules', Page(ScheduleSummary), { query: { namespace } }).then((p) => p.items);
  }

  scheduleHistory(namespace: string, task: string, limit: number): Promise<ScheduleSlot[]> {
    const path = `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/history`;
    return this.json('GET', path, Page(ScheduleSlot), { query: { limit: String(limit) } }).then((p) => p.items);
  }

  suspendSchedule(namespace: string, task: string, reason: string): Promise<ScheduleSummary> {
    return this.json('POST', `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/suspend`, ScheduleSummary, { body: { reason } });
  }

  resumeSchedule(namespace: string, task: string): Promise<ScheduleSummary> {
    return this.json('POST', `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/resume`, ScheduleSummary);
  }

  audit(f: AuditFilter): Promise<{ items: AuditEvent[]; nextCursor?: string }> {
    return this.json('GET', '/api/audit', AuditPage, { query: { ...f } });
  }

  /** NDJSON, passed through as bytes: an export is only useful if it is exactly what the server holds. */
  async auditExport(f: AuditFilter): Promise<ReadableStream<Uint8Array>> {
    const res = await this.request('GET', '/api/audit/export', { query: { ...f }, timeout: false });
    if (!res.body) throw new Error('the server sent an empty export');
    return res.body;
  }

  notifications(q: { state?: string; runId?: string; target?: string; limit?: number; cursor?: string }): Promise<{ items: Delivery[]; nextCursor?: string }> {
    return this.json('GET', '/api/notifications', Page(Delivery), { query: { ...q } });
  }

  redeliverFailed(target?: string): Promise<{ redelivered: number }> {
    return this.json('POST', '/api/notifications/redeliver', RedeliverFailedResponse, { body: { state: 'failed', ...(target ? { target } : {}) } });
  }

  redeliver(id: number): Promise<Delivery> {
    return this.json('POST', `/api/notifications/${id}/redeliver`, Delivery);
  }

  /** With the run's own credential (ODDJOB_RUN_TOKEN) as this client's token. */
  postProgress(runId: string, message: string): Promise<{ runId: string }> {
    return this.json('POST', `/api/runs/${encodeURIComponent(runId)}/progress`, z.object({ runId: z.string() }), { body: { message } });
  }

  auditVerify(): Promise<AuditVerifyResult> {
    return this.json('GET', '/api/audit/verify', AuditVerifyResult);
  }

  /** ws(s):// URL of a run's output stream, resuming after `from` bytes. */
  streamUrl(id: string, from: number, follow: boolean): string {
    const u = new URL(`${this.server}/api/runs/${encodeURIComponent(id)}/stream`);
    u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    u.searchParams.set('from', String(from));
    u.searchParams.set('follow', follow ? '1' : '0');
    return u.toString();
  }

  private async json<S extends z.ZodTypeAny>(method: string, path: string, schema: S, opts: { query?: Query; body?: unknown } = {}): Promise<z.infer<S>> {
    const res = await this.request(method, path, opts);
    let data: unknown;
    try {
      data = await res.json();
    } catch {
      throw new Error(`the server's answer to ${method} ${path} is not JSON (is ${this.server} an oddjob server?)`);
    }
    const parsed = schema.safeParse(data);
    if (!parsed.success) {
      throw new Error(`the server's answer to ${method} ${path} does not match this CLI (version skew?): ${describeZodError(parsed.error)}`);
    }
    return parsed.data;
  }

  private async request(method: string, path: string, opts: { query?: Query; body?: unknown; timeout?: boolean }): Promise<Response> {
    const url = new URL(this.server + path);
    for (const [k, v] of Object.entries(opts.query ?? {})) {
      if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
    }
    const headers = this.headers();
    if (opts.body !== undefined) headers['Content-Type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: opts.body === undefined ? undefined : JSON.stringify(opts.body),
        signal: opts.timeout === false ? undefined : AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
    } catch (err) {
      throw new NetworkError(this.server, networkReason(err));
    }
    this.onServerVersion?.(res.headers.get(SERVER_VERSION_HEADER));
    if (!res.ok) throw await apiErrorFrom(res, method, path);
    return res;
  }
}

/** Builds an ApiError from an error answer, whatever shape the body has. */
export async function apiErrorFrom(res: { status: number; statusText?: string; text(): Promise<string> }, method: string, path: string): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const parsed = ApiErrorBody.safeParse(body);
  if (parsed.success) {
    const { code, message, hint } = parsed.data.error;
    return new ApiError(res.status, code, message, hint ?? defaultHint(res.status));
  }
  const detail = text.trim().split('\n')[0]?.slice(0, 200);
  return new ApiError(
    res.status,
    `http_${res.status}`,
    `${method} ${path} failed: HTTP ${res.status}${res.statusText ? ` ${res.statusText}` : ''}${detail ? ` (${detail})` : ''}`,
    defaultHint(res.status),
  );
}

function defaultHint(status: number): string | undefined {
  if (status === 401) return 'run `oddjob login` (or set ODDJOB_TOKEN)';
  return undefined;
}
