// The HTTP edge: Express routes under /api, health and metrics, one error
// middleware. Handlers stay thin: authenticate → validate (zod) → call the
// service → send. WebSocket streams attach to the same server (ws/upgrade.ts).
import http from 'node:http';
import type { Duplex } from 'node:stream';
import { randomUUID } from 'node:crypto';
import express, { type NextFunction, type Request, type Response } from 'express';
import { ipKeyGenerator, rateLimit } from 'express-rate-limit';
import { z } from 'zod';
import {
  ApprovalDecision,
  ApprovalListQuery,
  AuditQuery,
  DeliveryListQuery,
  ProgressRequest,
  RedeliverFailedRequest,
  RunListQuery,
  RunRequest,
  approvalId,
  describeZodError,
  k8sLabelName,
  k8sName,
  runId as runIdSchema,
} from '../../protocol/api.js';
import { TaskRunRequest } from '../../protocol/tasks.js';
import { accessLog, type Logger } from '../logger.js';
import type {
  ApprovalService,
  AuditService,
  Authenticator,
  DeploymentService,
  NotificationService,
  Principal,
  RateCounters,
  ReadinessCheck,
  RequestContext,
  RunService,
  ScheduleService,
  TaskService,
} from '../services.js';
import { SuspendRequest } from '../../protocol/schedules.js';
import { sharedRateLimitStore } from './rate-limit-store.js';
import { checkOrigin } from './origin.js';
import { clientOf } from './client-of.js';
import { checkLoopbackHost } from './host.js';
import { attachStreams } from '../ws/upgrade.js';
import { serveWebUi } from './static.js';
import { ServiceError, badRequest, forbidden, notFound, unauthorized } from '../errors.js';
import type { ApiError } from '../../protocol/api-error.js';
import { httpRefusal, rawErrorResponse, sendError, toApiError } from './errors.js';
import { SERVER_VERSION_HEADER } from '../../protocol/version.js';
import { serverVersion } from '../version.js';
import { metrics, registry } from '../metrics.js';

export interface AppDeps {
  /** Schedules of Tasks; absent: the /api/schedules routes answer 404. */
  schedules?: ScheduleService;
  /** The URL users reach us at (a function: with --port 0 it is known only once listening). */
  publicUrl: string | (() => string);
  /** /auth routes (sign-in, sign-out); absent in edge tests that need none. */
  authRouter?: express.Router;
  /** Express `trust proxy`: whose X-Forwarded-* headers to believe. */
  trustProxy?: boolean | number | string[];
  /** Answer only requests addressed to a loopback name (--auth dev; see http/host.ts). */
  loopbackOnly?: boolean;
  /** false: /metrics is served elsewhere (--metrics-port; see metricsHandler), not on this app. */
  serveMetrics?: boolean;
  /** /api requests per minute per person (per client address when not signed in); default 600. */
  apiRateLimit?: number;
  /** Counters shared by the replicas; without them each process counts on its own. */
  rateCounters?: RateCounters;
  logger: Logger;
  runs: RunService;
  deployments: DeploymentService;
  audit: AuditService;
  /** Tasks and four-eyes approval; absent in edge tests that need neither. */
  tasks?: TaskService;
  approvals?: ApprovalService;
  auth: Authenticator;
  readiness: ReadinessCheck[];
  /** The delivery log; absent: answered with an empty log. */
  notifications?: NotificationService;
}

function parse<S extends z.ZodTypeAny>(schema: S, value: unknown, what: string): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw badRequest(`invalid ${what}: ${describeZodError(r.error)}`);
  return r.data;
}

export function createApp(deps: AppDeps) {
  const { logger, runs, deployments, audit, auth } = deps;
  const publicUrl = typeof deps.publicUrl === 'string' ? () => deps.publicUrl as string : deps.publicUrl;
  const requests = metrics.httpRequestSeconds;

  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.set('trust proxy', deps.trustProxy ?? false);
  app.use(accessLog(logger));
  if (deps.loopbackOnly) {
    app.use((req, _res, next) => {
      checkLoopbackHost(req);
      next();
    });
  }
  app.use((req, res, next) => {
    // Every answer, errors included: the CLI warns on major.minor skew (protocol/version.ts).
    res.setHeader(SERVER_VERSION_HEADER, serverVersion);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.setHeader('X-Frame-Options', 'DENY');
    res.setHeader('Referrer-Policy', 'no-referrer');
    res.setHeader(
      'Content-Security-Policy',
      "default-src 'self'; script-src 'self'; style-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    const end = requests.startTimer({ method: req.method });
    res.on('finish', () => end({ route: (req.route?.path as string | undefined) ?? 'unmatched', status: String(res.statusCode) }));
    next();
  });
  // No route takes a body over 64 KiB. Refuse one as soon as that is known: body-parser
  // would first read (and discard) all of it, 10 GiB or however much is sent, before
  // answering 413. Connection: close, so the rest of the upload is not read either.
  app.use((req, res, next) => {
    const length = Number(req.headers['content-length'] ?? 0);
    if (length > MAX_BODY_BYTES) {
      res.setHeader('Connection', 'close');
      next(tooLarge());
      return;
    }
    if (req.headers['transfer-encoding'] !== undefined) {
      // A chunked body announces no length: count it as it arrives.
      let seen = 0;
      req.on('data', (chunk: Buffer) => {
        seen += chunk.length;
        if (seen <= MAX_BODY_BYTES || res.headersSent) return;
        res.setHeader('Connection', 'close');
        res.once('finish', () => req.socket.destroy());
        sendError(res, tooLarge());
      });
    }
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok\n');
  });
  // Anonymous: says which check failed, never why. The reasons name served namespaces
  // and internal errors; they go to the server log (once per change, not per probe).
  let lastNotReady = '';
  app.get('/readyz', async (_req, res) => {
    for (const check of deps.readiness) {
      try {
        await check.check();
      } catch (err) {
        const why = `${check.name}: ${(err as Error).message}`;
        if (why !== lastNotReady) logger.warn({ check: check.name, reason: (err as Error).message }, 'not ready');
        lastNotReady = why;
        res.status(503).type('text/plain').send(`not ready: ${check.name} (details in the server log)\n`);
        return;
      }
    }
    lastNotReady = '';
    res.type('text/plain').send('ok\n');
  });
  const serveMetricsText = async (_req: http.IncomingMessage, res: http.ServerResponse) => {
    res.writeHead(200, { 'Content-Type': registry.contentType }).end(await registry.metrics());
  };
  if (deps.serveMetrics !== false) app.get('/metrics', serveMetricsText);

  if (deps.authRouter) app.use('/auth', deps.authRouter);

  // A run's own progress, authorized by its run-scoped credential alone: it is no
  // person's credential, so it never reaches the /api authentication below, and the
  // /api routes never accept it (it is not a token the authenticator knows).
  const progressLimit = rateLimit({
    windowMs: 60_000,
    limit: 120,
    standardHeaders: 'draft-8',
    legacyHeaders: false,
    keyGenerator: (req) => `addr:${ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? '')}`,
    handler: (_req, res) => sendError(res, new ServiceError('rate_limited', 'too many progress messages from this address', 'post less often')),
  });
  app.post('/api/runs/:id/progress', progressLimit, express.json({ limit: '4kb', strict: true }), async (req, res) => {
    const id = parse(runIdSchema, req.params.id, 'run id');
    const m = /^Bearer (\S{1,200})$/.exec(req.headers.authorization ?? '');
    if (!m) throw unauthorized('a run credential is required (Authorization: Bearer $ODDJOB_RUN_TOKEN)', "it is in the run's pod as ODDJOB_RUN_TOKEN");
    if (!req.is('application/json')) throw httpRefusal(415, 'unsupported_media_type', 'send {"message": "..."} as application/json');
    const { message } = parse(ProgressRequest, req.body, 'progress message');
    const run = await runs.postProgress(id, m[1]!, message, clientOf(req));
    res.status(201).json({ runId: run.id, progress: run.progress });
  });

  const api = express.Router();
  // Identity first: nothing under /api answers anonymous callers. The answer is kept
  // until the rate limit below has counted the request, so refused ones count too.
  api.use(async (req, _res, next) => {
    try {
      const principal = await auth.authenticate(req);
      if (!principal) throw unauthorized();
      locals(req).principal = principal;
      locals(req).ctx = { identity: principal.identity, client: clientOf(req), auditor: principal.auditor };
    } catch (err) {
      locals(req).refusal = err;
    }
    next();
  });
  // Per person, not per address: one person's script must not starve their colleagues
  // behind the same NAT, and a person cannot escape it by changing address. Every
  // request counts, refused ones (401, 403 run.denied, 400) included: each denial is an
  // audit record, a synced write, and the log must not be floodable.
  api.use(
    rateLimit({
      windowMs: 60_000,
      limit: deps.apiRateLimit ?? 600,
      ...(deps.rateCounters
        ? { store: sharedRateLimitStore(deps.rateCounters, 'api', (err) => deps.logger.warn({ err }, 'rate limit counted in memory: the store cannot count')) }
        : {}),
      standardHeaders: 'draft-8',
      legacyHeaders: false,
      keyGenerator: (req) => {
        const p = locals(req as Request).principal;
        if (p) return `user:${p.identity.id ?? p.identity.login.toLowerCase()}`;
        return `addr:${ipKeyGenerator(req.ip ?? req.socket.remoteAddress ?? '')}`;
      },
      handler: (req, res, _next, options) => {
        const p = locals(req as Request).principal;
        sendError(
          res,
          new ServiceError(
            'rate_limited',
            `too many API requests ${p ? `by ${p.identity.login}` : 'from this address'}: at most ${options.limit as number} a minute`,
            `wait ${res.getHeader('Retry-After') ?? 60} seconds; an operator can raise --api-rate-limit`,
          ),
        );
      },
    }),
  );
  api.use((req, _res, next) => {
    const l = locals(req);
    if (l.refusal !== undefined) return next(l.refusal);
    // CSRF: a cookie rides along on cross-site requests, so a cookie-authenticated
    // mutation must also prove it came from our own pages.
    if (!SAFE_METHODS.has(req.method)) checkOrigin(req, publicUrl(), l.principal!);
    next();
  });
  api.use(express.json({ limit: '64kb', strict: true }));
  const ctx = (req: Request): RequestContext => locals(req).ctx!;

  const principal = (req: Request): Principal => locals(req).principal!;
  api.get('/whoami', (req, res) => {
    const p = principal(req);
    res.json({ ...p.identity, auditor: p.auditor, auth: p.via });
  });
  // Signed in (the middleware above) is enough: the served namespaces are no secret
  // from people who may use oddjob, and the CLI picks its default from them.
  api.get('/namespaces', (_req, res) => {
    res.json({ items: deployments.servedNamespaces().map((name) => ({ name })) });
  });
  api.get('/deployments', async (req, res) => {
    const { namespace } = parse(z.object({ namespace: z.string().max(63).optional() }).strict(), req.query, 'query');
    res.json({ items: await deployments.listRunnable(ctx(req), namespace) });
  });
  api.get('/namespaces/:namespace/deployments/:name/paths', async (req, res) => {
    const q = parse(z.object({ container: z.string().max(63).optional(), word: z.string().max(1024).default('') }).strict(), req.query, 'query');
    const p = parse(z.object({ namespace: z.string().max(63), name: z.string().max(253) }), req.params, 'path');
    res.json(await deployments.completePaths(ctx(req), { namespace: p.namespace, deployment: p.name, ...q }));
  });
  // A run targets a Deployment (deploy/NAME -- CMD) or a Task (task/NAME --param k=v).
  const runTarget = (body: unknown) =>
    body !== null && typeof body === 'object' && 'task' in body ? parse(TaskRunRequest, body, 'task run request') : parse(RunRequest, body, 'run request');
  api.post('/runs', async (req, res) => {
    if (!req.is('application/json')) throw httpRefusal(415, 'unsupported_media_type', 'send the run request as application/json');
    const created = await runs.createRun(ctx(req), runTarget(req.body));
    // 202: nothing runs yet; the body is the approval request to wait on.
    res.status('approval' in created ? 202 : 201).json(created);
  });
  api.post('/runs/preview', async (req, res) => {
    // Authorized exactly like a run; creates nothing. A refusal is audited (marked as a preview).
    if (!req.is('application/json')) throw httpRefusal(415, 'unsupported_media_type', 'send the run request as application/json');
    res.json(await runs.previewRun(ctx(req), runTarget(req.body)));
  });
  const tasks = () => deps.tasks ?? raise(notFound('this server has no Tasks'));
  const approvals = () => deps.approvals ?? raise(notFound('this server has no approvals'));
  api.get('/tasks', async (req, res) => {
    const { namespace } = parse(z.object({ namespace: z.string().max(63).optional() }).strict(), req.query, 'query');
    res.json({ items: await tasks().listTasks(ctx(req), namespace) });
  });
  api.get('/requests', async (req, res) => {
    res.json({ items: await approvals().listRequests(ctx(req), parse(ApprovalListQuery, req.query, 'query')) });
  });
  api.get('/requests/:id', async (req, res) => {
    res.json(await approvals().getRequest(ctx(req), parse(approvalId, req.params.id, 'request id')));
  });
  api.post('/requests/:id/approve', async (req, res) => {
    const { reason } = parse(ApprovalDecision, req.body ?? {}, 'approval');
    res.json(await approvals().approve(ctx(req), parse(approvalId, req.params.id, 'request id'), reason || undefined));
  });
  api.post('/requests/:id/deny', async (req, res) => {
    const { reason } = parse(ApprovalDecision, req.body ?? {}, 'denial');
    if (!reason) throw badRequest('a denial needs a reason', 'oddjob deny ID --reason "why not"');
    res.json(await approvals().deny(ctx(req), parse(approvalId, req.params.id, 'request id'), reason));
  });
  api.get('/runs', async (req, res) => {
    res.json(await runs.listRuns(ctx(req), parse(RunListQuery, req.query, 'query')));
  });
  api.get('/runs/:id', async (req, res) => {
    res.json(await runs.getRun(ctx(req), parse(runIdSchema, req.params.id, 'run id')));
  });
  api.get('/runs/:id/log', async (req, res) => {
    // The stored output as a file (curl, the web page's download button): bytes as the
    // program wrote them, stdout and stderr in the order produced, or one of them.
    const id = parse(runIdSchema, req.params.id, 'run id');
    const { stream } = parse(z.object({ stream: z.enum(['all', 'stdout', 'stderr']).default('all') }).strict(), req.query, 'query');
    const { run, chunks } = await runs.readOutput(ctx(req), id);
    const only = stream === 'stdout' ? 1 : stream === 'stderr' ? 2 : undefined;
    res.type('text/plain; charset=utf-8');
    res.setHeader('Content-Disposition', `attachment; filename="oddjob-${run.id}${only ? `-${stream}` : ''}.log"`);
    res.setHeader('Cache-Control', 'no-store');
    if (run.outputTruncated) res.setHeader('X-Oddjob-Output-Truncated', 'true');
    for await (const c of chunks) {
      if (only && c.channel !== only) continue;
      if (!res.write(c.data)) await new Promise((r) => res.once('drain', r));
      if (res.destroyed) return;
    }
    res.end();
  });
  api.post('/runs/:id/cancel', async (req, res) => {
    res.json(await runs.cancelRun(ctx(req), parse(runIdSchema, req.params.id, 'run id')));
  });
  api.get('/audit', async (req, res) => {
    const q = scopeAudit(principal(req), parse(AuditQuery, req.query, 'query'));
    try {
      res.json(await audit.query(q));
    } catch (err) {
      if (/cursor/i.test((err as Error).message)) throw badRequest((err as Error).message);
      throw err;
    }
  });
  api.get('/audit/export', async (req, res) => {
    // Every matching event: the default page size does not apply to an export.
    const q = scopeAudit(principal(req), parse(AuditQuery.omit({ limit: true, cursor: true }), req.query, 'query'));
    res.type('application/x-ndjson');
    for await (const event of audit.iterate(q)) {
      if (!res.write(`${JSON.stringify(event)}\n`)) await new Promise((r) => res.once('drain', r));
      if (res.destroyed) return;
    }
    res.end();
  });
  api.get('/audit/verify', async (req, res) => {
    if (!principal(req).auditor) throw forbidden('only auditors may verify the whole audit log', 'ask an operator to add you to --auditors');
    res.json(await audit.verify());
  });
  const { schedules } = deps;
  if (schedules) {
    const taskRef = (req: Request) => ({
      namespace: parse(k8sLabelName, req.params.namespace, 'namespace'),
      name: parse(k8sName, req.params.task, 'task name'),
    });
    api.get('/schedules', async (req, res) => {
      const { namespace } = parse(z.object({ namespace: z.string().max(63).optional() }).strict(), req.query, 'query');
      res.json({ items: await schedules.list(ctx(req), namespace) });
    });
    api.get('/schedules/:namespace/:task/history', async (req, res) => {
      const q = parse(
        z.object({ limit: z.coerce.number().int().min(1).max(1000).default(50), before: z.string().datetime().optional() }).strict(),
        req.query,
        'query',
      );
      res.json({ items: await schedules.history(ctx(req), taskRef(req), q) });
    });
    api.post('/schedules/:namespace/:task/suspend', async (req, res) => {
      const { reason } = parse(SuspendRequest, req.body, 'suspend request');
      res.json(await schedules.suspend(ctx(req), taskRef(req), reason));
    });
    api.post('/schedules/:namespace/:task/resume', async (req, res) => {
      res.json(await schedules.resume(ctx(req), taskRef(req)));
    });
  }
  const requireAuditor = (req: Request, what: string) => {
    if (!principal(req).auditor) throw forbidden(`only auditors may ${what}`, 'ask an operator to add you to --auditors');
  };
  api.get('/notifications', async (req, res) => {
    requireAuditor(req, 'read the notification delivery log');
    const q = parse(DeliveryListQuery, req.query, 'query');
    res.json(deps.notifications ? await deps.notifications.list(q) : { items: [] });
  });
  api.post('/notifications/redeliver', async (req, res) => {
    requireAuditor(req, 'redeliver notifications');
    const body = parse(RedeliverFailedRequest, req.body ?? {}, 'body');
    const redelivered = deps.notifications ? await deps.notifications.redeliverFailed(ctx(req), body.target) : 0;
    res.json({ redelivered });
  });
  api.post('/notifications/:id/redeliver', async (req, res) => {
    requireAuditor(req, 'redeliver notifications');
    const id = parse(z.coerce.number().int().positive(), req.params.id, 'delivery id');
    const delivery = deps.notifications ? await deps.notifications.redeliver(ctx(req), id) : undefined;
    if (!delivery) throw notFound(`delivery ${id} not found, or an attempt of it is in flight right now (see oddjob notifications)`);
    res.json(delivery);
  });
  api.use((_req, _res, next) => next(notFound('no such API endpoint')));
  app.use('/api', api);
  // The web UI (web/dist) at /, with client routes falling back to index.html.
  app.use(serveWebUi());

  // One place that turns errors into answers; stacks go to the log only.
  app.use((err: unknown, req: Request, res: Response, _next: NextFunction) => {
    let e = toApiError(err) ?? parserFailure(err);
    if (!e) {
      const id = String(req.id ?? randomUUID());
      logger.error({ err, requestId: id, path: req.path }, 'unexpected error');
      e = httpRefusal(500, 'internal', `internal error (see the server log, request id ${id})`);
    }
    if (res.headersSent) {
      res.destroy();
      return;
    }
    sendError(res, e);
  });

  const server = http.createServer(app);
  // Requests Node's HTTP parser rejects (bad request line, header, length, chunk) never
  // reach Express; answer them in the same JSON shape instead of an empty 400.
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Duplex) => {
    // Mid-response (a pipelined request went bad) there is no clean way to answer: drop it.
    const inFlight = (socket as Duplex & { _httpMessage?: { headersSent?: boolean } })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const status = err.code === 'HPE_HEADER_OVERFLOW' ? 431 : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 408 : 400;
    const message =
      status === 431 ? 'the request headers are too large' : status === 408 ? 'the request took too long to arrive' : 'the request is not valid HTTP/1.1';
    socket.end(rawErrorResponse(httpRefusal(status, status === 400 ? 'invalid_request' : status === 431 ? 'too_large' : 'timeout', message)));
  });
  const streams = attachStreams(server, { publicUrl, auth, runs, logger });
  return {
    app,
    server,
    /** For a separate metrics listener: answers GET /metrics, 404 to everything else. */
    metricsHandler(req: http.IncomingMessage, res: http.ServerResponse) {
      if (req.method === 'GET' && new URL(req.url ?? '/', 'http://x').pathname === '/metrics') void serveMetricsText(req, res).catch(() => res.destroy());
      else res.writeHead(404, { 'Content-Type': 'text/plain' }).end('only /metrics is served on this port\n');
    },
    async dispose() {
      streams.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function raise(err: unknown): never {
  throw err;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);
/** The largest request body any route accepts (the run request's limit). */
const MAX_BODY_BYTES = 64 * 1024;
const tooLarge = () => httpRefusal(413, 'too_large', 'the request body is larger than 64 KiB');

/** What body-parser, Express and the cursor decoder throw, in the API's terms; undefined for anything else. */
function parserFailure(err: unknown): ApiError | undefined {
  const typed = err as { type?: string; status?: number; message?: string; name?: string } | undefined;
  if (typed?.type === 'entity.too.large') return tooLarge();
  if (typed?.type === 'entity.parse.failed') return toApiError(badRequest('the request body is not valid JSON'));
  if (typed?.name === 'InvalidCursorError') return toApiError(badRequest(typed.message ?? 'invalid cursor'));
  if (typed?.status && typed.status >= 400 && typed.status < 500) return toApiError(badRequest(typed.message ?? 'bad request'));
  return undefined;
}

/** Auditors read every event; everyone else reads the events they caused. */
function scopeAudit<Q extends { user?: string }>(p: Principal, q: Q): Q & { actorId?: number } {
  if (p.auditor) return q;
  if (q.user !== undefined && q.user.toLowerCase() !== p.identity.login.toLowerCase()) {
    throw forbidden(`you may read only your own audit events, not ${q.user}'s`, "auditors (--auditors) may read everyone's");
  }
  // By account, not only by login: a recycled login must not read its predecessor's events.
  return { ...q, user: p.identity.login, actorId: p.identity.id };
}

interface Locals {
  ctx?: RequestContext;
  principal?: Principal;
  /** Why authentication refused the request, answered once it has been counted. */
  refusal?: unknown;
}

function locals(req: Request): Locals {
  return ((req as unknown as { oddjob: Locals }).oddjob ??= {});
}
