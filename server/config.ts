// The server's configuration: one table of settings (flag, env, default, help),
// parsed once at start with zod and frozen. A bad value stops the start with a
// message that names the setting and its env variable.
import { z } from 'zod';
import { readFileSync } from 'node:fs';
import { timingProblem } from './leader/election.js';
import { parseAuditors } from './policy/auditors.js';
import { durationSeconds } from '../protocol/duration.js';
import { NotifyConfigError, loadNotifyConfig, type NotifyConfig } from './notify/config.js';
import { type DbTarget, DbTargetError, describeTarget, parseDbTarget } from './store/target.js';

export class ConfigError extends Error {}

const dnsLabel = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const dnsSubdomain = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function duration(v: string): number {
  return durationSeconds(v);
}

function bytes(v: string): number {
  const m = /^(\d+)(Ki|Mi|Gi)?$/.exec(v.trim());
  if (!m) throw new Error(`"${v}" is not a size; use bytes or Ki/Mi/Gi, like 16Mi`);
  return Number(m[1]) * ({ Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[m[2] as 'Ki'] ?? 1);
}

// No secrets in messages: zod issues here name the setting, never echo the value.
const httpUrl = z
  .string()
  .refine((v) => {
    try {
      const u = new URL(v);
      return (u.protocol === 'http:' || u.protocol === 'https:') && !u.username && !u.password && !u.search && !u.hash;
    } catch {
      return false;
    }
  }, 'must be an http(s) URL without credentials, query or fragment, like https://oddjob.example.com')
  .transform((v) => v.replace(/\/+$/, ''));

function trustProxy(v: string): false | number | string[] {
  if (v === 'false') return false;
  if (v === 'true') {
    // Express's `true` believes the left-most X-Forwarded-For entry, which the client
    // writes: anyone could pick the address that rate limits and the audit log see.
    throw new Error(
      "true would believe any client's X-Forwarded-For (a client picks its own address); give the number of proxies in front of oddjob (e.g. 1 for one Ingress controller) or their addresses/CIDRs",
    );
  }
  if (/^\d+$/.test(v)) return Number(v);
  const entries = list(v);
  for (const e of entries) {
    if (!/^[0-9a-fA-F:.]+(\/\d{1,3})?$/.test(e) && !['loopback', 'linklocal', 'uniquelocal'].includes(e)) {
      throw new Error(`"${e}" is not an address, CIDR or loopback/linklocal/uniquelocal`);
    }
  }
  return entries;
}

function list(v: string): string[] {
  return v
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}

interface Setting {
  flag: string;
  env: string;
  help: string;
  default?: string;
}

/** Every setting, in the order `oddjob server --help` shows them. */
export const SETTINGS = {
  host: { flag: '--host', env: 'ODDJOB_HOST', default: '127.0.0.1', help: 'address to listen on' },
  port: { flag: '--port', env: 'ODDJOB_PORT', default: '8080', help: 'port to listen on (0: any free port)' },
  namespaces: { flag: '--namespaces', env: 'ODDJOB_NAMESPACES', help: 'comma-separated namespaces to serve (required); others do not exist for users' },
  kubeconfig: { flag: '--kubeconfig', env: 'ODDJOB_KUBECONFIG', help: 'kubeconfig file (default: the in-cluster service account)' },
  metricsPort: {
    flag: '--metrics-port',
    env: 'ODDJOB_METRICS_PORT',
    help: 'serve /metrics on this port (same address) instead of --port, so nothing that routes --port (an Ingress) exposes it',
  },
  db: {
    flag: '--db',
    env: 'ODDJOB_DB',
    default: './oddjob.db',
    help: 'the store (audit log, runs, output, sign-ins): a SQLite file, or postgres://USER@HOST:PORT/DATABASE for several replicas',
  },
  dbPasswordFile: {
    flag: '--db-password-file',
    env: 'ODDJOB_DB_PASSWORD_FILE',
    help: "with a postgres:// --db: file holding the password (else the URL's, else PGPASSWORD)",
  },
  auth: { flag: '--auth', env: 'ODDJOB_AUTH', default: 'github', help: 'github | dev (dev: one fixed identity, loopback only)' },
  devUser: { flag: '--dev-user', env: 'ODDJOB_DEV_USER', default: 'dev', help: 'with --auth dev: the login everyone gets' },
  devTeams: { flag: '--dev-teams', env: 'ODDJOB_DEV_TEAMS', default: '', help: 'with --auth dev: comma-separated org/team slugs' },
  githubOrg: {
    flag: '--github-org',
    env: 'ODDJOB_GITHUB_ORG',
    help: 'with --auth github (required unless --allow-any-github-user): people must be members of this org; also the org of bare team slugs in annotations',
  },
  allowAnyGithubUser: {
    flag: '--allow-any-github-user',
    env: 'ODDJOB_ALLOW_ANY_GITHUB_USER',
    default: 'false',
    help: 'with --auth github and no --github-org: let every GitHub account sign in (true | false); refused unless said explicitly',
  },
  publicUrl: {
    flag: '--public-url',
    env: 'ODDJOB_PUBLIC_URL',
    help: 'URL users reach oddjob at: the OAuth callback and Origin checks derive from it (required with --auth github); default http://HOST:PORT',
  },
  githubClientId: { flag: '--github-client-id', env: 'ODDJOB_GITHUB_CLIENT_ID', help: "with --auth github: the OAuth app's client id" },
  githubClientSecret: {
    flag: '--github-client-secret',
    env: 'ODDJOB_GITHUB_CLIENT_SECRET',
    help: "with --auth github: the OAuth app's client secret (prefer the env variable or the -file option)",
  },
  githubClientSecretFile: {
    flag: '--github-client-secret-file',
    env: 'ODDJOB_GITHUB_CLIENT_SECRET_FILE',
    help: 'file holding the client secret (e.g. a mounted Kubernetes Secret)',
  },
  sessionSecret: {
    flag: '--session-secret',
    env: 'ODDJOB_SESSION_SECRET',
    help: 'with --auth github: at least 32 random bytes; keys the sign-in state and encrypts stored GitHub tokens (same on every replica)',
  },
  sessionSecretFile: { flag: '--session-secret-file', env: 'ODDJOB_SESSION_SECRET_FILE', help: 'file holding the session secret' },
  githubUrl: { flag: '--github-url', env: 'ODDJOB_GITHUB_URL', default: 'https://github.com', help: 'GitHub web URL (GitHub Enterprise Server: https://HOST)' },
  githubApiUrl: {
    flag: '--github-api-url',
    env: 'ODDJOB_GITHUB_API_URL',
    help: 'GitHub API URL; default https://api.github.com, or GITHUB_URL/api/v3 for Enterprise Server',
  },
  teamRefresh: {
    flag: '--team-refresh',
    env: 'ODDJOB_TEAM_REFRESH',
    default: '10m',
    help: 'how stale team membership may get before it is re-checked with GitHub (at most 15m)',
  },
  sessionTtl: { flag: '--session-ttl', env: 'ODDJOB_SESSION_TTL', default: '12h', help: 'lifetime of a browser session' },
  tokenTtl: {
    flag: '--token-ttl',
    env: 'ODDJOB_TOKEN_TTL',
    default: '30d',
    help: 'lifetime of a CLI token from `oddjob login` (and the maximum for created tokens)',
  },
  auditors: {
    flag: '--auditors',
    env: 'ODDJOB_AUDITORS',
    default: '',
    help: 'comma-separated logins and org/team slugs who may read the whole audit log (others see their own events)',
  },
  trustProxy: {
    flag: '--trust-proxy',
    env: 'ODDJOB_TRUST_PROXY',
    default: 'false',
    help: 'false | hop count (proxies in front of oddjob) | comma-separated proxy addresses/CIDRs whose X-Forwarded-* headers are believed',
  },
  authRateLimit: { flag: '--auth-rate-limit', env: 'ODDJOB_AUTH_RATE_LIMIT', default: '60', help: 'sign-in requests per minute per client address' },
  apiRateLimit: {
    flag: '--api-rate-limit',
    env: 'ODDJOB_API_RATE_LIMIT',
    default: '600',
    help: '/api requests per minute per signed-in person (per client address before sign-in), refused ones included',
  },
  defaultTimeout: { flag: '--default-timeout', env: 'ODDJOB_DEFAULT_TIMEOUT', default: '1h', help: 'time limit of a run when the user gives none' },
  maxTimeout: {
    flag: '--max-timeout',
    env: 'ODDJOB_MAX_TIMEOUT',
    default: '24h',
    help: 'upper bound for any run (max-duration annotations can only lower it)',
  },
  ttlAfterFinished: {
    flag: '--ttl-after-finished',
    env: 'ODDJOB_TTL_AFTER_FINISHED',
    default: '1h',
    help: 'how long finished Jobs stay before Kubernetes deletes them',
  },
  approvalTtl: {
    flag: '--approval-ttl',
    env: 'ODDJOB_APPROVAL_TTL',
    default: '24h',
    help: 'how long a run request waits for approval before it expires (four-eyes; oddjob.io/approval: required)',
  },
  startTimeout: { flag: '--start-timeout', env: 'ODDJOB_START_TIMEOUT', default: '5m', help: 'how long a pod may stay pending before the run fails' },
  maxOutput: { flag: '--max-output', env: 'ODDJOB_MAX_OUTPUT', default: '16Mi', help: 'output kept per run for `oddjob logs`' },
  outputRetention: {
    flag: '--output-retention',
    env: 'ODDJOB_OUTPUT_RETENTION',
    default: '30d',
    help: "how long a finished run's output is kept (audit events stay); pruned hourly",
  },
  splitLogStreams: {
    flag: '--split-log-streams',
    env: 'ODDJOB_SPLIT_LOG_STREAMS',
    default: 'auto',
    help: 'keep stdout and stderr apart via the log API: auto | true | false',
  },
  notifications: {
    flag: '--notifications',
    env: 'ODDJOB_NOTIFICATIONS',
    help: 'YAML file of notification targets (Slack, signed webhooks) that Deployments route to with oddjob.io/notify; see docs/notifications.md',
  },
  leaderLease: {
    flag: '--leader-lease',
    env: 'ODDJOB_LEADER_LEASE',
    default: 'oddjob',
    help: 'name of the coordination.k8s.io Lease the replicas elect a leader with; the leader alone runs singleton work (output retention)',
  },
  leaderLeaseNamespace: {
    flag: '--leader-lease-namespace',
    env: 'ODDJOB_LEADER_LEASE_NAMESPACE',
    help: "namespace of that Lease; default: the server's own namespace in a cluster, else the first of --namespaces",
  },
  leaderLeaseDuration: {
    flag: '--leader-lease-duration',
    env: 'ODDJOB_LEADER_LEASE_DURATION',
    default: '15s',
    help: 'how long standbys wait, after the last renewal they saw, before taking the lease (a killed leader is replaced within this plus 1.2 retry periods)',
  },
  leaderRenewDeadline: {
    flag: '--leader-renew-deadline',
    env: 'ODDJOB_LEADER_RENEW_DEADLINE',
    default: '10s',
    help: 'a leader that has not renewed the lease for this long stops its singleton work (must be below the lease duration)',
  },
  leaderRetryPeriod: {
    flag: '--leader-retry-period',
    env: 'ODDJOB_LEADER_RETRY_PERIOD',
    default: '2s',
    help: 'how often each replica reads the lease and the leader renews it (a released lease is taken within 1.2 of these)',
  },
  logLevel: { flag: '--log-level', env: 'ODDJOB_LOG_LEVEL', default: 'info', help: 'trace | debug | info | warn | error' },
} satisfies Record<string, Setting>;
type Key = keyof typeof SETTINGS;
/** true/false settings that may be given as a bare flag. */
const SWITCHES: ReadonlySet<Key> = new Set<Key>(['allowAnyGithubUser']);

const schema = z.object({
  host: z.string().min(1),
  port: z.coerce.number().int().min(0).max(65535),
  namespaces: z
    .string({ error: 'is required: the namespaces oddjob serves, e.g. --namespaces payments,billing' })
    .transform(list)
    .pipe(z.array(z.string().regex(dnsLabel, 'each namespace must be a DNS label')).min(1, 'must name at least one namespace')),
  kubeconfig: z.string().optional(),
  metricsPort: z.coerce
    .number({ error: 'must be a port number' })
    .int()
    .min(1, 'must be a port from 1 to 65535')
    .max(65535, 'must be a port from 1 to 65535')
    .optional(),
  db: z.string().min(1),
  dbPasswordFile: z.string().min(1).optional(),
  auth: z.enum(['github', 'dev']),
  devUser: z.string().regex(/^[A-Za-z0-9-]{1,39}$/, 'must be a GitHub-style login'),
  devTeams: z
    .string()
    .transform(list)
    .pipe(z.array(z.string().regex(/^[a-z0-9-]+\/[a-z0-9_-]+$/i, 'each team must be org/slug'))),
  githubOrg: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,39}$/, 'must be a GitHub organization login')
    .optional(),
  allowAnyGithubUser: z.enum(['true', 'false'], { error: 'must be true or false' }).transform((v) => v === 'true'),
  publicUrl: httpUrl.optional(),
  githubClientId: z
    .string()
    .regex(/^[A-Za-z0-9._-]{1,100}$/, 'does not look like an OAuth client id')
    .optional(),
  githubClientSecret: z.string().min(1).optional(),
  githubClientSecretFile: z.string().min(1).optional(),
  sessionSecret: z.string().min(1).optional(),
  sessionSecretFile: z.string().min(1).optional(),
  githubUrl: httpUrl,
  githubApiUrl: httpUrl.optional(),
  teamRefresh: z
    .string()
    .transform((v, ctx) => wrap(v, ctx, duration))
    .pipe(z.number().max(900, 'must be at most 15m: removed team members must lose access within that bound')),
  sessionTtl: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  tokenTtl: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  auditors: z.string().transform((v, ctx) => wrap(v, ctx, (x) => parseAuditors(list(x)))),
  trustProxy: z.string().transform((v, ctx) => wrap(v, ctx, trustProxy)),
  authRateLimit: z.coerce.number().int().min(1, 'must be at least 1').max(100_000),
  apiRateLimit: z.coerce.number({ error: 'must be a number of requests per minute' }).int().min(1, 'must be at least 1').max(1_000_000),
  defaultTimeout: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  maxTimeout: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  ttlAfterFinished: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  startTimeout: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  approvalTtl: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  maxOutput: z.string().transform((v, ctx) => wrap(v, ctx, bytes)),
  outputRetention: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  splitLogStreams: z.enum(['auto', 'true', 'false']),
  notifications: z.string().min(1).optional(),
  logLevel: z.enum(['trace', 'debug', 'info', 'warn', 'error']),
  leaderLease: z.string().regex(dnsSubdomain, 'must be a DNS subdomain name (lower-case letters, digits, - and .), like oddjob'),
  leaderLeaseNamespace: z.string().regex(dnsLabel, 'must be a namespace name (a DNS label)').optional(),
  leaderLeaseDuration: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  leaderRenewDeadline: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
  leaderRetryPeriod: z.string().transform((v, ctx) => wrap(v, ctx, duration)),
});

function wrap<T>(v: string, ctx: z.RefinementCtx, f: (v: string) => T): T {
  try {
    return f(v);
  } catch (err) {
    ctx.addIssue({ code: 'custom', message: (err as Error).message });
    return z.NEVER;
  }
}

export type ServerConfig = Readonly<
  Omit<z.infer<typeof schema>, 'notifications'> & {
    publicUrl?: string;
    githubApiUrl: string;
    dbTarget: DbTarget;
    notifications?: NotifyConfig;
    notificationsFile?: string;
  }
>;

/** argv is what follows `oddjob server`. Flags win over env, env over defaults. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv): ServerConfig {
  const byFlag = new Map(Object.entries(SETTINGS).map(([k, s]) => [s.flag, k as Key]));
  const raw: Partial<Record<Key, string>> = {};
  for (const [k, s] of Object.entries(SETTINGS) as Array<[Key, Setting]>) {
    const v = env[s.env];
    if (v !== undefined && v !== '') raw[k] = v;
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const eq = arg.indexOf('=');
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    const key = byFlag.get(flag);
    if (!key) throw new ConfigError(`unknown option ${flag}`);
    // A switch may be given bare: --allow-any-github-user.
    const bare = eq < 0 && SWITCHES.has(key) && (argv[i + 1] === undefined || argv[i + 1]!.startsWith('--'));
    const value = bare ? 'true' : eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    raw[key] = value;
  }
  for (const [k, s] of Object.entries(SETTINGS) as Array<[Key, Setting]>) if (raw[k] === undefined && s.default !== undefined) raw[k] = s.default;

  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const key = issue.path[0] as Key;
    const s = SETTINGS[key];
    throw new ConfigError(`${s.flag} (${s.env}): ${issue.message}`);
  }
  const c = parsed.data;
  if (c.auth === 'dev' && !isLoopback(c.host)) {
    throw new ConfigError(
      `--auth dev gives every caller the identity "${c.devUser}"; it only listens on a loopback address, not ${c.host}. Use --host 127.0.0.1 (and kubectl port-forward or an SSH tunnel to reach it).`,
    );
  }
  if (c.metricsPort !== undefined && c.metricsPort === c.port) {
    throw new ConfigError(`--metrics-port (${c.metricsPort}) must differ from --port: it exists to keep /metrics off the port users reach`);
  }
  checkLeaseTiming(c);
  if (c.defaultTimeout > c.maxTimeout) throw new ConfigError(`--default-timeout (${c.defaultTimeout}s) is above --max-timeout (${c.maxTimeout}s)`);
  const githubClientSecret = secret(c.githubClientSecret, c.githubClientSecretFile, 'githubClientSecret', 'githubClientSecretFile');
  const sessionSecret = secret(c.sessionSecret, c.sessionSecretFile, 'sessionSecret', 'sessionSecretFile');
  if (c.auth === 'github') {
    const need = (key: Key, why: string) => new ConfigError(`${SETTINGS[key].flag} (${SETTINGS[key].env}) is required with --auth github: ${why}`);
    if (!c.publicUrl) throw need('publicUrl', 'the GitHub OAuth callback (PUBLIC_URL/auth/github/callback) and the Origin checks derive from it');
    if (!c.githubClientId) throw need('githubClientId', 'create a GitHub OAuth app (Settings → Developer settings → OAuth Apps) and pass its client id');
    if (!githubClientSecret) throw need('githubClientSecret', "pass the OAuth app's client secret through the env variable or --github-client-secret-file");
    if (!sessionSecret) throw need('sessionSecret', 'generate one with `openssl rand -base64 48` and give every replica the same value');
    if (Buffer.byteLength(sessionSecret) < 32) {
      throw new ConfigError(`--session-secret (ODDJOB_SESSION_SECRET) must be at least 32 bytes; generate one with \`openssl rand -base64 48\``);
    }
    if (!c.githubOrg && !c.allowAnyGithubUser) {
      throw new ConfigError(
        '--github-org (ODDJOB_GITHUB_ORG) is not set, so every GitHub account in the world could sign in. ' +
          'Name the organization whose members may use oddjob (--github-org acme), or, if that is really what you want, say so with --allow-any-github-user',
      );
    }
  }
  const dbTarget = dbTargetOf(c.db, c.dbPasswordFile, env);
  const githubApiUrl = c.githubApiUrl ?? (c.githubUrl === 'https://github.com' ? 'https://api.github.com' : `${c.githubUrl}/api/v3`);
  return Object.freeze({
    ...c,
    notifications: notificationsFrom(c.notifications),
    notificationsFile: c.notifications,
    githubClientSecret,
    sessionSecret,
    githubApiUrl,
    dbTarget: Object.freeze(dbTarget),
    // The URL without its password: the config is logged and shown.
    db: describeTarget(dbTarget),
    namespaces: Object.freeze([...c.namespaces]) as string[],
    devTeams: Object.freeze([...c.devTeams]) as string[],
  });
}

function notificationsFrom(path: string | undefined): NotifyConfig | undefined {
  if (path === undefined) return undefined;
  try {
    return loadNotifyConfig(path);
  } catch (err) {
    if (err instanceof NotifyConfigError) throw new ConfigError(`${err.message} (ODDJOB_NOTIFICATIONS)`);
    throw err;
  }
}

function dbTargetOf(db: string, passwordFile: string | undefined, env: NodeJS.ProcessEnv): DbTarget {
  try {
    return parseDbTarget(db, { passwordFile, env });
  } catch (err) {
    if (err instanceof DbTargetError) throw new ConfigError(`--db (ODDJOB_DB): ${err.message}`);
    throw err;
  }
}

function checkLeaseTiming(c: { leaderLeaseDuration: number; leaderRenewDeadline: number; leaderRetryPeriod: number }): void {
  const problem = timingProblem({
    leaseDurationMs: c.leaderLeaseDuration * 1000,
    renewDeadlineMs: c.leaderRenewDeadline * 1000,
    retryPeriodMs: c.leaderRetryPeriod * 1000,
  });
  if (problem) throw new ConfigError(`--leader-lease-duration, --leader-renew-deadline, --leader-retry-period: ${problem}`);
}

/** A secret from its setting or its -file setting (one, not both); files are trimmed. */
function secret(value: string | undefined, file: string | undefined, key: Key, fileKey: Key): string | undefined {
  if (value !== undefined && file !== undefined) {
    throw new ConfigError(`give ${SETTINGS[key].flag} or ${SETTINGS[fileKey].flag}, not both`);
  }
  if (file === undefined) return value;
  try {
    const text = readFileSync(file, 'utf8').trim();
    if (!text) throw new Error('the file is empty');
    return text;
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message;
    throw new ConfigError(`${SETTINGS[fileKey].flag} (${SETTINGS[fileKey].env}): cannot read ${file}: ${why}`);
  }
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

export function helpText(): string {
  const rows = Object.values(SETTINGS).map((s: Setting) => {
    const left = `  ${s.flag} <value>`;
    return `${left.padEnd(30)}${s.help}\n${''.padEnd(30)}env ${s.env}${s.default !== undefined ? `, default ${s.default === '' ? '(none)' : s.default}` : ''}`;
  });
  return [
    'Usage: oddjob server [options]',
    '',
    'Runs the oddjob service: the HTTP API, the output streams, the audit log.',
    '',
    'Options (each also from its environment variable; flags win):',
    ...rows,
    '',
    'Example (local demo, one fixed identity):',
    '  oddjob server --auth dev --dev-user alice --dev-teams acme/payments \\',
    '    --namespaces demo --kubeconfig .cluster/kubeconfig',
    '',
  ].join('\n');
}
