// One delivery attempt to one target, over HTTP. Standard Webhooks for webhooks
// (signed with the `standardwebhooks` library, the one receivers verify with), Slack
// incoming webhooks, and the Slack Web API (post on start, update in place on finish).
// What comes back is a verdict for the worker; error texts name what went wrong and
// never the URL, token or secret (a Slack webhook URL is itself a credential).
import { Webhook } from 'standardwebhooks';
import type { NotifyTarget } from './config.js';
import { isRunEnd } from './events.js';
import { slackMessage, webhookBody } from './message.js';
import type { OutboxRow } from './outbox.js';

export type SendResult =
  | { ok: true; status: number; slack?: { channel: string; ts: string } }
  | {
      ok: false;
      status?: number;
      error: string;
      retryAfterMs?: number;
      /** Retrying cannot help until the operator fixes the target (a revoked token, an archived channel): give up now. */
      permanent?: boolean;
    };

/**
 * Slack Web API errors that no retry fixes: the token, its scopes, the channel. The
 * rest (ratelimited, internal_error, service_unavailable, request_timeout, fatal_error,
 * and codes Slack adds later) are retried until the delivery maxAge.
 */
const SLACK_API_PERMANENT = new Set([
  'not_authed',
  'invalid_auth',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'no_permission',
  'missing_scope',
  'not_allowed_token_type',
  'ekm_access_denied',
  'org_login_required',
  'team_access_not_granted',
  'channel_not_found',
  'not_in_channel',
  'is_archived',
  'restricted_action',
  'restricted_action_read_only_channel',
  'restricted_action_thread_only_channel',
  'restricted_action_non_threadable_channel',
  'invalid_blocks',
  'invalid_arguments',
  'msg_too_long',
  'too_many_attachments',
]);

/** chat.update cannot touch the run's message (deleted, too old): post a new one instead of losing the outcome. */
const SLACK_UPDATE_GONE = new Set(['message_not_found', 'cant_update_message', 'edit_window_closed']);

export interface SendContext {
  publicUrl: string;
  timeoutMs: number;
  userAgent: string;
  now: () => Date;
  /** Aborts the attempt (the server is stopping); it is then retried like a failure. */
  signal?: AbortSignal;
  /** The Slack message of this run for this target, if one was posted (Web API only). */
  slackThread?: { channel: string; ts: string };
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or nonsense. */
export function retryAfterMs(header: string | null, now: number): number | undefined {
  if (!header) return undefined;
  if (/^\d+$/.test(header.trim())) return Math.min(Number(header.trim()), 86_400) * 1000;
  const at = Date.parse(header);
  return Number.isNaN(at) ? undefined : Math.min(Math.max(0, at - now), 86_400_000);
}

/** A network failure in words, without the address (Node puts host:port in the cause's message). */
function describeFailure(err: unknown, timeoutMs: number): string {
  const e = err as { name?: string; cause?: { code?: string; name?: string } };
  if (e.name === 'TimeoutError' || e.cause?.name === 'TimeoutError') return `no answer within ${timeoutMs / 1000}s`;
  if (e.name === 'AbortError') return 'interrupted: the server stopped during the attempt';
  const code = e.cause?.code;
  if (typeof code === 'string' && /^[A-Z_]+$/.test(code)) return `could not connect (${code})`;
  return 'could not connect';
}

/** At most a short, plain token of an error answer: Slack's error codes, never a page of HTML. */
function shortCode(text: string): string {
  const t = text.trim().slice(0, 80);
  return /^[A-Za-z0-9_.:-]+$/.test(t) ? t : '(non-text answer)';
}

async function post(url: string, headers: Record<string, string>, body: string, ctx: SendContext): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'user-agent': ctx.userAgent, ...headers },
    body,
    // A redirect would send the signed body (or the bot token) somewhere the operator did not name.
    redirect: 'manual',
    signal: ctx.signal ? AbortSignal.any([AbortSignal.timeout(ctx.timeoutMs), ctx.signal]) : AbortSignal.timeout(ctx.timeoutMs),
  });
}

async function readBounded(res: Response, max = 16 * 1024): Promise<string> {
  // A hostile or broken receiver must not make us buffer an endless answer.
  const reader = res.body?.getReader();
  if (!reader) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
    if (size > max) {
      await reader.cancel();
      break;
    }
  }
  return Buffer.concat(chunks).toString('utf8').slice(0, max);
}

function httpFailure(res: Response, ctx: SendContext, detail?: string): Extract<SendResult, { ok: false }> {
  return {
    ok: false,
    status: res.status,
    error: `HTTP ${res.status}${detail ? ` ${detail}` : ''}`,
    retryAfterMs: res.status === 429 || res.status === 503 ? retryAfterMs(res.headers.get('retry-after'), ctx.now().getTime()) : undefined,
  };
}

export async function sendDelivery(target: NotifyTarget, row: OutboxRow, ctx: SendContext): Promise<SendResult> {
  try {
    switch (target.kind) {
      case 'webhook':
        return await sendWebhook(target, row, ctx);
      case 'slack-webhook':
        return await sendSlackWebhook(target, row, ctx);
      case 'slack-api':
        return await sendSlackApi(target, row, ctx);
    }
  } catch (err) {
    return { ok: false, error: describeFailure(err, ctx.timeoutMs) };
  }
}

async function sendWebhook(target: Extract<NotifyTarget, { kind: 'webhook' }>, row: OutboxRow, ctx: SendContext): Promise<SendResult> {
  const body = JSON.stringify(webhookBody(row.event, ctx.publicUrl));
  // The timestamp is this attempt's (receivers reject stale ones); the id is the message's.
  const now = ctx.now();
  const headers = {
    'webhook-id': row.webhookId,
    'webhook-timestamp': String(Math.floor(now.getTime() / 1000)),
    'webhook-signature': new Webhook(target.secret).sign(row.webhookId, now, body),
  };
  const res = await post(target.url, headers, body, ctx);
  await res.body?.cancel();
  return res.ok ? { ok: true, status: res.status } : httpFailure(res, ctx);
}

async function sendSlackWebhook(target: Extract<NotifyTarget, { kind: 'slack-webhook' }>, row: OutboxRow, ctx: SendContext): Promise<SendResult> {
  const res = await post(target.url, {}, JSON.stringify(slackMessage(row.event, ctx.publicUrl)), ctx);
  const text = await readBounded(res);
  // Incoming webhooks answer 200 "ok", or an error status whose body is the reason
  // (invalid_payload, channel_not_found, ...).
  if (res.ok) return { ok: true, status: res.status };
  const failure = httpFailure(res, ctx, shortCode(text));
  // 4xx names a problem with the webhook itself (invalid_token, no_service,
  // channel_not_found, channel_is_archived, action_prohibited): retrying cannot help.
  const permanent = res.status >= 400 && res.status < 500 && res.status !== 408 && res.status !== 429;
  return permanent ? { ...failure, permanent } : failure;
}

async function sendSlackApi(target: Extract<NotifyTarget, { kind: 'slack-api' }>, row: OutboxRow, ctx: SendContext): Promise<SendResult> {
  const message = slackMessage(row.event, ctx.publicUrl);
  const thread = ctx.slackThread;
  if (thread && isRunEnd(row.eventType)) {
    // The run's message says how it ended, instead of a second message.
    const updated = await callSlack(target, 'chat.update', { channel: thread.channel, ts: thread.ts, ...message }, ctx);
    if (updated.ok || !updated.gone) return updated.result;
    return (await callSlack(target, 'chat.postMessage', { channel: target.channel, ...message }, ctx)).result;
  }
  if (thread && row.eventType === 'run.progress') {
    return (await callSlack(target, 'chat.postMessage', { channel: thread.channel, thread_ts: thread.ts, ...message }, ctx)).result;
  }
  const posted = await callSlack(target, 'chat.postMessage', { channel: target.channel, ...message }, ctx);
  if (posted.ok && row.eventType === 'run.started' && posted.answer && typeof posted.answer.ts === 'string' && typeof posted.answer.channel === 'string') {
    return { ok: true, status: posted.result.status ?? 200, slack: { channel: posted.answer.channel, ts: posted.answer.ts } };
  }
  return posted.result;
}

async function callSlack(
  target: Extract<NotifyTarget, { kind: 'slack-api' }>,
  method: 'chat.postMessage' | 'chat.update',
  payload: Record<string, unknown>,
  ctx: SendContext,
): Promise<{ ok: boolean; result: SendResult; gone?: boolean; answer?: { channel?: unknown; ts?: unknown } }> {
  const res = await post(
    `${target.apiUrl}/${method}`,
    { authorization: `Bearer ${target.token}`, 'content-type': 'application/json; charset=utf-8' },
    JSON.stringify(payload),
    ctx,
  );
  const text = await readBounded(res);
  // Rate limited: HTTP 429 with Retry-After (seconds) and {"ok":false,"error":"ratelimited"}.
  if (!res.ok) return { ok: false, result: httpFailure(res, ctx, `from ${method}`) };
  let answer: { ok?: unknown; error?: unknown; channel?: unknown; ts?: unknown };
  try {
    answer = JSON.parse(text) as typeof answer;
  } catch {
    return { ok: false, result: { ok: false, status: res.status, error: `${method} answered with something other than JSON` } };
  }
  // Slack answers HTTP 200 for most failures ({"ok":false,"error":"invalid_auth"}): only ok:true is a delivery.
  if (answer.ok !== true) {
    const code = typeof answer.error === 'string' ? shortCode(answer.error) : 'unknown_error';
    const permanent = SLACK_API_PERMANENT.has(code);
    return {
      ok: false,
      gone: method === 'chat.update' && SLACK_UPDATE_GONE.has(code),
      result: { ok: false, status: res.status, error: `${method}: ${code}`, ...(permanent ? { permanent } : {}) },
    };
  }
  return { ok: true, result: { ok: true, status: res.status }, answer };
}
