// The one logger (pino, JSON to stderr). Credentials never reach the log.
import { pino, type Logger } from 'pino';

export type { Logger };

export function createLogger(level: string): Logger {
  return pino({
    level,
    base: { service: 'oddjob' },
    redact: {
      paths: ['req.headers.authorization', 'req.headers.cookie', 'headers.authorization', 'headers.cookie', '*.token', '*.password', '*.secret'],
      censor: '[redacted]',
    },
  }, pino.destination(2));
}
