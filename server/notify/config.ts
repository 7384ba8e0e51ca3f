// The operator's notification targets (`--notifications FILE`, YAML), validated with
// zod at start. Targets are the operator's alone: owners name them in annotations,
// never give a URL, so no annotation can make oddjob call an address of its choosing.
// Secrets (Slack URLs and tokens, webhook secrets) are read from files here and kept
// in memory; no message from this module contains one.
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { parseDuration } from '../../protocol/duration.js';
import { NOTIFY_EVENT_TYPES, type NotifyEventType } from './events.js';

export class NotifyConfigError extends Error {}

export type NotifyTarget =
  | { name: string; kind: 'slack-webhook'; url: string; events?: ReadonlySet<NotifyEventType> }
  | { name: string; kind: 'slack-api'; token: string; channel: string; apiUrl: string; events?: ReadonlySet<NotifyEventType> }
  | { name: string; kind: 'webhook'; url: string; secret: string; events?: ReadonlySet<NotifyEventType> };

export interface DeliverySettings {
  /** Give up on a delivery this long after its event (seconds). */
  maxAgeSeconds: number;
  /** One attempt's time limit (seconds): a hanging receiver holds one slot this long at most. */
  timeoutSeconds: number;
  /** Attempts in flight per target. */
  concurrency: number;
  /** Ceiling of the first retry delay and the cap of all of them (seconds). */
  retryBaseSeconds: number;
  retryCapSeconds: number;
  /** How long settled deliveries stay in the delivery log (seconds). */
  keepSeconds: number;
}

export interface NotifyConfig {
  targets: ReadonlyMap<string, NotifyTarget>;
  delivery: DeliverySettings;
}

export const TARGET_NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

const duration = z.string().transform((v, ctx) => {
  const r = parseDuration(v);
  if (!r.ok) {
    ctx.addIssue({ code: 'custom', message: r.error });
    return z.NEVER;
  }
  return r.seconds;
});

const events = z
  .array(z.enum(NOTIFY_EVENT_TYPES, { error: `must be one of ${NOTIFY_EVENT_TYPES.join(', ')}` }))
  .min(1, 'list at least one event, or leave `events` out for all of them')
  .optional();
const file = z.string({ error: 'must be the path of a file' }).min(1, 'must be the path of a file');

const Target = z
  .object({
    slack: z
      .union(
        [
          z.strictObject({ webhookUrlFile: file }),
          z.strictObject({
            tokenFile: file,
            channel: z.string().regex(/^[#@]?[A-Za-z0-9._-]{1,80}$/, 'must be a channel name (#ops) or id (C0123ABC)'),
            apiUrl: z.string().optional(),
          }),
        ],
        { error: 'slack needs either {webhookUrlFile} (incoming webhook) or {tokenFile, channel} (Web API), and nothing else' },
      )
      .optional(),
    webhook: z.strictObject({ url: z.string(), secretFile: file }).optional(),
    events,
  })
  .strict()
  .refine((t) => (t.slack ? 1 : 0) + (t.webhook ? 1 : 0) === 1, 'a target is exactly one of slack or webhook');

const Schema = z.strictObject({
  /** Tests only: allow http:// to loopback addresses (a local receiver). */
  insecureLoopbackHttp: z.boolean().default(false),
  delivery: z
    .strictObject({
      maxAge: duration.default(3 * 86_400),
      timeout: duration.default(10),
      concurrency: z.number().int().min(1).max(64).default(4),
      retryBase: duration.default(5),
      retryCap: duration.default(6 * 3600),
      keep: duration.default(30 * 86_400),
    })
    .default({ maxAge: 3 * 86_400, timeout: 10, concurrency: 4, retryBase: 5, retryCap: 6 * 3600, keep: 30 * 86_400 }),
  targets: z.record(z.string().regex(TARGET_NAME, 'target names are lowercase letters, digits and "-" (like ops-slack)'), Target, {
    error: (i) => (i.input === undefined ? 'is required: a map from target names to targets' : 'must be a map from target names to targets'),
  }),
});

function isLoopbackHost(host: string): boolean {
  return host === 'localhost' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** undefined when fine; else what is wrong, without echoing the URL (it may be a secret). */
export function urlProblem(raw: string, insecureLoopbackHttp: boolean): string | undefined {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return 'is not a URL';
  }
  if (u.username || u.password) return 'must not carry credentials (user:password@)';
  if (u.hash) return 'must not have a #fragment';
  if (u.protocol === 'https:') return undefined;
  if (u.protocol === 'http:' && insecureLoopbackHttp && isLoopbackHost(u.hostname)) return undefined;
  if (u.protocol === 'http:') {
    return isLoopbackHost(u.hostname)
      ? 'is http://: allowed only for a loopback receiver with `insecureLoopbackHttp: true` (tests)'
      : 'must be https:// (notifications carry who ran what, and a signature that must not be replayed from the wire)';
  }
  return 'must be an https:// URL';
}

/** Standard Webhooks secrets: `whsec_` + base64 of 24 to 64 random bytes. */
export function webhookSecretProblem(secret: string): string | undefined {
  const m = /^whsec_([A-Za-z0-9+/]+={0,2})$/.exec(secret);
  if (!m) return 'is not a Standard Webhooks secret: it must be whsec_ followed by base64 (generate one with: echo "whsec_$(openssl rand -base64 32)")';
  const bytes = Buffer.from(m[1]!, 'base64').length;
  if (bytes < 24 || bytes > 64) return `decodes to ${bytes} bytes; a Standard Webhooks secret is 24 to 64 random bytes`;
  return undefined;
}

function describeIssues(issues: readonly z.core.$ZodIssue[]): string {
  // A misspelled key explains a "missing" one: report unknown keys first.
  const issue = issues.find((i) => i.code === 'unrecognized_keys') ?? issues[0]!;
  const at = issue.path.length ? issue.path.join('.') : '(top level)';
  if (issue.code === 'unrecognized_keys') return `${at}: unknown key${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}`;
  if (issue.code === 'invalid_key') return `${at}: ${issue.issues[0]?.message ?? issue.message}`;
  return `${at}: ${issue.message}`;
}

/** Reads and validates the file; every error names the file and the setting, never a secret. */
export function loadNotifyConfig(path: string): NotifyConfig {
  const where = `--notifications ${path}`;
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new NotifyConfigError(`${where}: cannot read it (${code === 'ENOENT' ? 'no such file' : (err as Error).message})`);
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (err) {
    throw new NotifyConfigError(`${where}: not valid YAML: ${(err as Error).message.split('\n')[0]}`);
  }
  const parsed = Schema.safeParse(doc ?? {});
  if (!parsed.success) {
    throw new NotifyConfigError(`${where}: ${describeIssues(parsed.error.issues)}`);
  }
  const c = parsed.data;
  const targets = new Map<string, NotifyTarget>();
  const readSecret = (at: string, file: string): string => {
    let value: string;
    try {
      value = readFileSync(file, 'utf8').trim();
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new NotifyConfigError(`${where}: ${at}: cannot read ${file} (${code === 'ENOENT' ? 'no such file' : (code ?? (err as Error).message)})`);
    }
    if (!value) throw new NotifyConfigError(`${where}: ${at}: ${file} is empty`);
    return value;
  };
  const checkUrl = (at: string, url: string, secret: boolean) => {
    const problem = urlProblem(url, c.insecureLoopbackHttp);
    if (problem) throw new NotifyConfigError(`${where}: ${at}${secret ? ' (the URL in that file)' : ''} ${problem}`);
  };
  for (const [name, t] of Object.entries(c.targets)) {
    const ev = t.events ? new Set(t.events) : undefined;
    const at = `targets.${name}`;
    if (t.webhook) {
      checkUrl(`${at}.webhook.url`, t.webhook.url, false);
      const secret = readSecret(`${at}.webhook.secretFile`, t.webhook.secretFile);
      const problem = webhookSecretProblem(secret);
      if (problem) throw new NotifyConfigError(`${where}: ${at}.webhook.secretFile: the secret in ${t.webhook.secretFile} ${problem}`);
      targets.set(name, { name, kind: 'webhook', url: t.webhook.url, secret, events: ev });
    } else if (t.slack && 'webhookUrlFile' in t.slack) {
      const url = readSecret(`${at}.slack.webhookUrlFile`, t.slack.webhookUrlFile);
      checkUrl(`${at}.slack.webhookUrlFile`, url, true);
      targets.set(name, { name, kind: 'slack-webhook', url, events: ev });
    } else if (t.slack) {
      const token = readSecret(`${at}.slack.tokenFile`, t.slack.tokenFile);
      if (/\s/.test(token)) throw new NotifyConfigError(`${where}: ${at}.slack.tokenFile: the token in ${t.slack.tokenFile} contains whitespace`);
      const apiUrl = (t.slack.apiUrl ?? 'https://slack.com/api').replace(/\/+$/, '');
      checkUrl(`${at}.slack.apiUrl`, apiUrl, false);
      targets.set(name, { name, kind: 'slack-api', token, channel: t.slack.channel, apiUrl, events: ev });
    }
  }
  return {
    targets,
    delivery: {
      maxAgeSeconds: c.delivery.maxAge,
      timeoutSeconds: c.delivery.timeout,
      concurrency: c.delivery.concurrency,
      retryBaseSeconds: c.delivery.retryBase,
      retryCapSeconds: c.delivery.retryCap,
      keepSeconds: c.delivery.keep,
    },
  };
}

/** No targets: every annotation naming one is reported as unknown. */
export const NO_NOTIFICATIONS: NotifyConfig = {
  targets: new Map(),
  delivery: { maxAgeSeconds: 3 * 86_400, timeoutSeconds: 10, concurrency: 4, retryBaseSeconds: 5, retryCapSeconds: 6 * 3600, keepSeconds: 30 * 86_400 },
};
