// PURE: a notification event → the bytes a target receives. The webhook body has a
// stable, versioned schema (docs/notifications.md); Slack gets Block Kit with every
// piece of user text escaped, so an argv or a progress line cannot mention
// @channel, forge a link, or break out of its code span. No I/O.
import type { NotifyEvent, NotifyEventType } from './events.js';

/** Bumped only for incompatible changes; fields may be added within a version. */
export const WEBHOOK_SCHEMA_VERSION = 1;

export interface WebhookBody {
  version: typeof WEBHOOK_SCHEMA_VERSION;
  type: NotifyEventType;
  /** When the event happened (not when this attempt was made: see the webhook-timestamp header). */
  timestamp: string;
  data: {
    actor: string;
    owner?: string;
    auditSeq: number;
    /** The run's page (--public-url), when the event is about a run. */
    url?: string;
    run?: NotifyEvent['run'];
    text?: string;
    /** approval.* / schedule.* events without a run: where, and what happened in words. */
    where?: NotifyEvent['where'];
    /** approval.*: the request, and its url the requests page (--public-url). */
    request?: NotifyEvent['request'] & { url: string };
    /** schedule.*: the Task, its slots, and why a slot started no run. */
    schedule?: NotifyEvent['schedule'];
    message?: string;
  };
}

export function runUrl(publicUrl: string, runId: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/runs/${encodeURIComponent(runId)}`;
}

export function requestsUrl(publicUrl: string): string {
  return `${publicUrl.replace(/\/+$/, '')}/requests`;
}

export function webhookBody(event: NotifyEvent, publicUrl: string): WebhookBody {
  return {
    version: WEBHOOK_SCHEMA_VERSION,
    type: event.type,
    timestamp: event.time,
    data: {
      actor: event.actor,
      ...(event.owner ? { owner: event.owner } : {}),
      auditSeq: event.auditSeq,
      ...(event.run ? { url: runUrl(publicUrl, event.run.id), run: event.run } : {}),
      ...(event.text !== undefined ? { text: event.text } : {}),
      ...(event.where ? { where: event.where } : {}),
      ...(event.message !== undefined ? { message: event.message } : {}),
      ...(event.request ? { request: { ...event.request, url: requestsUrl(publicUrl) } } : {}),
      ...(event.schedule ? { schedule: event.schedule } : {}),
    },
  };
}

// Control characters (not tab or newline): invisible in Slack, and a way to hide text.
const isControl = (c: string) => {
  const n = c.charCodeAt(0);
  return (n < 32 && c !== '\t' && c !== '\n') || n === 127;
};

/**
 * Text that Slack shows as typed. Slack's mrkdwn needs only &, < and > escaped
 * (everything it links or mentions is inside <...>); bare @here/@channel/@everyone are
 * broken with a zero-width space so no client or legacy `link_names` turns them into
 * pings. Control characters are dropped.
 */
export function escapeSlack(text: string): string {
  return text
    .split('')
    .filter((c) => !isControl(c))
    .join('')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/@(here|channel|everyone)\b/gi, '@\u200b$1');
}

/** Inside a code span a backtick would end it; Slack has no escape for one, so show a look-alike. */
function codeSpan(text: string, max: number): string {
  const clipped = text.length > max ? `${text.slice(0, max)}…` : text;
  return `\`${escapeSlack(clipped).replace(/`/g, 'ˋ').replace(/\n/g, ' ')}\``;
}

/** The argv as a person would type it, quoted where needed (display only; nothing runs it). */
export function displayArgv(argv: readonly string[]): string {
  return argv.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${s % 60 ? ` ${s % 60}s` : ''}`;
  const h = Math.floor(m / 60);
  return `${h}h${m % 60 ? ` ${m % 60}m` : ''}`;
}

const HEADLINE: Record<NotifyEventType, { emoji: string; verb: string }> = {
  'run.started': { emoji: ':arrow_forward:', verb: 'started' },
  'run.succeeded': { emoji: ':white_check_mark:', verb: 'succeeded' },
  'run.failed': { emoji: ':x:', verb: 'failed' },
  'run.deadline': { emoji: ':hourglass:', verb: 'hit its deadline' },
  'run.lost': { emoji: ':grey_question:', verb: 'was lost' },
  'run.cancelled': { emoji: ':no_entry_sign:', verb: 'was cancelled' },
  'run.progress': { emoji: ':speech_balloon:', verb: 'reports progress' },
  'approval.requested': { emoji: ':raised_hand:', verb: 'needs approval' },
  'approval.granted': { emoji: ':ok_hand:', verb: 'was approved' },
  'approval.denied': { emoji: ':no_good:', verb: 'was denied' },
  'approval.expired': { emoji: ':hourglass:', verb: 'expired undecided' },
  'approval.voided': { emoji: ':wastebasket:', verb: 'was voided: the target changed' },
  'schedule.missed': { emoji: ':warning:', verb: 'missed a scheduled slot' },
  'schedule.denied': { emoji: ':warning:', verb: 'scheduled run was denied' },
  'schedule.failed': { emoji: ':x:', verb: 'scheduled run failed' },
};

export interface SlackMessage {
  /** Fallback for notifications and clients without blocks; escaped like the blocks. */
  text: string;
  blocks: object[];
}

/** Who, where, exit code, duration, the argv, the reason: the body of a run's message. */
function runBlocks(event: NotifyEvent, run: NonNullable<NotifyEvent['run']>): object[] {
  const fields = [`*Who*\n${escapeSlack(event.owner ?? event.actor)}`, `*Container*\n${escapeSlack(run.container)}`];
  if (run.exitCode !== undefined) fields.push(`*Exit code*\n${run.exitCode}`);
  if (run.durationMs !== undefined) fields.push(`*Duration*\n${formatDuration(run.durationMs)}`);
  if (event.owner) fields.push(`*By*\n${escapeSlack(event.actor)}`);
  const context = [`*Command* ${codeSpan(displayArgv(run.command), 1000)}`];
  if (run.reason) context.push(`*Reason* ${escapeSlack(run.reason.slice(0, 500))}`);
  if (run.message) context.push(escapeSlack(run.message.slice(0, 500)));
  return [
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
    { type: 'context', elements: context.map((text) => ({ type: 'mrkdwn', text })) },
  ];
}

/** Who asked, who decided, what would run and why: the body of an approval message. */
function requestBlocks(event: NotifyEvent, request: NonNullable<NotifyEvent['request']>): object[] {
  const fields = [`*Requested by*\n${escapeSlack(event.owner ?? event.actor)}`];
  if (event.owner) fields.push(`*By*\n${escapeSlack(event.actor)}`);
  if (request.task) fields.push(`*Task*\n${escapeSlack(request.task)}`);
  const context: string[] = [];
  if (request.command) context.push(`*Command* ${codeSpan(displayArgv(request.command), 1000)}`);
  if (request.reason) context.push(`*Reason* ${escapeSlack(request.reason.slice(0, 500))}`);
  return [
    { type: 'section', fields: fields.map((text) => ({ type: 'mrkdwn', text })) },
    ...(context.length ? [{ type: 'context', elements: context.map((text) => ({ type: 'mrkdwn', text })) }] : []),
  ];
}

/** Block Kit for one event. Section texts stay far below Slack's 3000-character limit. */
export function slackMessage(event: NotifyEvent, publicUrl: string): SlackMessage {
  const h = HEADLINE[event.type];
  const run = event.run;
  const place = run ?? event.where;
  const where = place ? `${escapeSlack(place.namespace)}${place.deployment ? `/${escapeSlack(place.deployment)}` : ''}` : '';
  const request = event.request;
  const sched = event.schedule;
  const link = run
    ? `<${runUrl(publicUrl, run.id)}|run ${run.id}>`
    : request
      ? `<${requestsUrl(publicUrl)}|request ${escapeSlack(request.id)}>`
      : sched
        ? `task ${escapeSlack(sched.task)}`
        : '';
  const headline = `${h.emoji} *${link || escapeSlack(event.type)}* on *${where}* ${h.verb}`;
  const blocks: object[] = [{ type: 'section', text: { type: 'mrkdwn', text: headline } }];
  if (event.type === 'run.progress' && event.text !== undefined) {
    blocks.push({ type: 'section', text: { type: 'mrkdwn', text: `> ${escapeSlack(event.text).replace(/\n/g, '\n> ')}` } });
  }
  if (!run && event.message) blocks.push({ type: 'context', elements: [{ type: 'mrkdwn', text: escapeSlack(event.message.slice(0, 500)) }] });
  if (run) blocks.push(...runBlocks(event, run));
  else if (request) blocks.push(...requestBlocks(event, request));
  const subject = run ? `run ${run.id}` : request ? `request ${request.id}` : sched ? `task ${sched.task}` : event.type;
  const text = `${subject} on ${place ? `${place.namespace}${place.deployment ? `/${place.deployment}` : ''}` : ''} ${h.verb}${event.text !== undefined ? `: ${event.text.slice(0, 200)}` : ''}`;
  return { text: escapeSlack(text), blocks };
}
