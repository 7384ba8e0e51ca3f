// The HTTP API as the browser speaks it: same-origin cookies, a client tag the
// audit log records, JSON bodies for mutations, and the server's error bodies
// ({error: {code, message, hint}}) turned into ApiError with the words intact.
import { ApiError } from '../../protocol/api-error.js';
import type { ApprovalRequest, AuditEvent, AuditVerifyResult, Delivery, DeploymentSummary, Run, RunPreview, RunRequestInput } from '../../protocol/api.js';
import type { TaskParam, TaskRunRequestInput, TaskSummary } from '../../protocol/tasks.js';
import type { ScheduleSlot, ScheduleSummary } from '../../protocol/schedules.js';

export { ApiError };
export type {
  ApprovalRequest,
  AuditEvent,
  AuditVerifyResult,
  Delivery,
  DeploymentSummary,
  Run,
  RunPreview,
  RunRequestInput,
  ScheduleSlot,
  ScheduleSummary,
  TaskParam,
  TaskRunRequestInput,
  TaskSummary,
};

/** POST /api/runs: the run, or the approval request it became (202). */
export type Started = Run | { approval: ApprovalRequest };
export type { RunStatus } from '../../protocol/api.js';

export const CLIENT_TAG = 'web/0.1.0';
export { RUN_STATUSES, TERMINAL_STATUSES as TERMINAL, AUDIT_EVENT_TYPES as AUDIT_TYPES } from '../../protocol/names.js';

export interface WhoAmI {
  login: string;
  teams: string[];
  name?: string;
  auditor?: boolean;
  /** How this request was authenticated: dev, session (browser cookie) or token. */
  auth?: string;
}

/** Called on any 401: the page switches to sign-in. */
let onUnauthorized: () => void = () => undefined;
export function setUnauthorizedHandler(fn: () => void) {
  onUnauthorized = fn;
}

export async function request<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { 'X-Oddjob-Client': CLIENT_TAG, Accept: 'application/json' };
  if (method === 'POST') headers['Content-Type'] = 'application/json';
  let res: Response;
  try {
    res = await fetch(path, {
      method,
      headers,
      credentials: 'same-origin',
      body: method === 'POST' ? JSON.stringify(body ?? {}) : undefined,
    });
  } catch {
    throw new ApiError(0, 'network', 'cannot reach the oddjob server (network error); check your connection and try again');
  }
  if (res.ok) return (await res.json()) as T;
  throw await errorFrom(res);
}

export async function errorFrom(res: Response): Promise<ApiError> {
  const text = await res.text().catch(() => '');
  let err: ApiError;
  try {
    const b = JSON.parse(text) as { error?: { code?: string; message?: string; hint?: string } };
    err = new ApiError(res.status, b.error?.code ?? `http_${res.status}`, b.error?.message ?? (text || res.statusText), b.error?.hint);
  } catch {
    const words = text.trim().slice(0, 300) || res.statusText || 'request failed';
    err = new ApiError(res.status, `http_${res.status}`, `${res.status}: ${words}`);
  }
  if (res.status === 401) onUnauthorized();
  return err;
}

export const api = {
  whoami: () => request<WhoAmI>('GET', '/api/whoami'),
  deployments: () => request<{ items: DeploymentSummary[] }>('GET', '/api/deployments'),
  createRun: (body: RunRequestInput | TaskRunRequestInput) => request<Started>('POST', '/api/runs', body),
  previewRun: (body: RunRequestInput | TaskRunRequestInput) => request<RunPreview>('POST', '/api/runs/preview', body),
  tasks: () => request<{ items: TaskSummary[] }>('GET', '/api/tasks'),
  requests: (pending: boolean) => request<{ items: ApprovalRequest[] }>('GET', `/api/requests${pending ? '?pending=true' : ''}`),
  approve: (id: string, reason?: string) => request<ApprovalRequest>('POST', `/api/requests/${encodeURIComponent(id)}/approve`, { reason }),
  deny: (id: string, reason: string) => request<ApprovalRequest>('POST', `/api/requests/${encodeURIComponent(id)}/deny`, { reason }),
  getRun: (id: string) => request<Run>('GET', `/api/runs/${encodeURIComponent(id)}`),
  cancelRun: (id: string) => request<Run>('POST', `/api/runs/${encodeURIComponent(id)}/cancel`, {}),
  listRuns: (q: URLSearchParams) => request<{ items: Run[]; nextCursor?: string }>('GET', `/api/runs?${q}`),
  audit: (q: URLSearchParams) => request<{ items: AuditEvent[]; nextCursor?: string }>('GET', `/api/audit?${q}`),
  verifyAudit: () => request<AuditVerifyResult>('GET', '/api/audit/verify'),
  schedules: () => request<{ items: ScheduleSummary[] }>('GET', '/api/schedules'),
  scheduleHistory: (namespace: string, task: string) =>
    request<{ items: ScheduleSlot[] }>('GET', `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/history`),
  suspendSchedule: (namespace: string, task: string, reason: string) =>
    request<ScheduleSummary>('POST', `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/suspend`, { reason }),
  resumeSchedule: (namespace: string, task: string) =>
    request<ScheduleSummary>('POST', `/api/schedules/${encodeURIComponent(namespace)}/${encodeURIComponent(task)}/resume`, {}),
  notifications: (q: URLSearchParams) => request<{ items: Delivery[]; nextCursor?: string }>('GET', `/api/notifications?${q}`),
  redeliver: (id: number) => request<Delivery>('POST', `/api/notifications/${id}/redeliver`, {}),
  /** The NDJSON export, parsed; used for CSV (the NDJSON itself is a plain download link). */
  async auditExport(q: URLSearchParams): Promise<AuditEvent[]> {
    const res = await fetch(`/api/audit/export?${q}`, { credentials: 'same-origin', headers: { 'X-Oddjob-Client': CLIENT_TAG } });
    if (!res.ok) throw await errorFrom(res);
    const text = await res.text();
    return text
      .split('\n')
      .filter((l) => l.trim())
      .map((l) => JSON.parse(l) as AuditEvent);
  },
  async signOut(): Promise<'ok' | 'unsupported'> {
    const res = await fetch('/auth/logout', {
      method: 'POST',
      credentials: 'same-origin',
      headers: { 'X-Oddjob-Client': CLIENT_TAG, 'Content-Type': 'application/json' },
      body: '{}',
    });
    if (res.status === 404 || res.status === 405) return 'unsupported';
    if (!res.ok && res.status !== 401) throw await errorFrom(res);
    return 'ok';
  },
};

/** Every page of a listing, up to `max` items (for exports of the runs view). */
export async function collectPages<T>(fetchPage: (cursor?: string) => Promise<{ items: T[]; nextCursor?: string }>, max = 10_000): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  do {
    const page = await fetchPage(cursor);
    out.push(...page.items);
    cursor = page.nextCursor;
  } while (cursor && out.length < max);
  return out.slice(0, max);
}
