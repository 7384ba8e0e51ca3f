// The one logger (pino, JSON to stderr). Credentials never reach the log.
// Levels are words and times ISO 8601, so log pipelines and people read the
// lines without knowing pino's numeric levels or epoch milliseconds.
import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pino, type Logger } from 'pino';
import { pinoHttp } from 'pino-http';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino(
    {
      level,
      base: { service: 'oddjob' },
      formatters: { level: (label) => ({ level: label }) },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: {
        paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', '*.token', '*.password', '*.secret'],
        censor: '[redacted]',
      },
    },
    pino.destination(2),
  );
}

/** Request ids the access log adopts from a proxy: short and printable, nothing a reader could be fooled by. */
const REQUEST_ID = /^[\w.:-]{1,128}$/;

/**
 * The access log: one line per request with its id, which is taken from the
 * X-Request-Id a proxy set (when it looks like one) or made up, and sent back in
 * X-Request-Id so a user's report can be matched to the line.
 */
export function accessLog(logger: Logger) {
  return pinoHttp<IncomingMessage, ServerResponse>({
    logger,
    genReqId(req, res) {
      const given = req.headers['x-request-id'];
      const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
      res.setHeader('X-Request-Id', id);
      return id;
    },
    // Probes and scrapes every few seconds would drown the lines worth reading.
    autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/readyz' || req.url === '/metrics' },
    customLogLevel: (_req, res, err) => (err || res.statusCode >= 500 ? 'error' : 'info'),
    serializers: {
      // Method, path and caller only: query strings may carry cursors, and headers credentials.
      req: (req: { id: unknown; method: string; url: string; remoteAddress?: string }) => ({
        id: req.id,
        method: req.method,
        url: req.url.split('?')[0],
        remoteAddress: req.remoteAddress,
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
  });
}
