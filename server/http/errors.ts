// The one place that renders errors. A ServiceError (server/errors.ts) becomes
// the API's error answer, an ApiError: its kind picks the HTTP status, and every
// refusal carries the same JSON body {error: {code, message, hint}} whether it
// answers an HTTP request (errorHandler in app.ts) or a WebSocket upgrade
// (ws/upgrade.ts). Anything else is a 500 whose details go to the log only.
import { STATUS_CODES } from 'node:http';
import type { Response } from 'express';
import { ApiError } from '../../protocol/api-error.js';
import { ServiceError, type ErrorKind } from '../errors.js';

const STATUS: Record<ErrorKind, number> = {
  invalid: 400,
  unauthenticated: 401,
  forbidden: 403,
  not_found: 404,
  conflict: 409,
  gone: 410,
  rejected: 422,
  rate_limited: 429,
  internal: 500,
  upstream: 502,
  unavailable: 503,
};

/** Refusals that exist only at the HTTP edge (method, media type, body or header size) name their status themselves. */
export const httpRefusal = (status: number, code: string, message: string, hint?: string) => new ApiError(status, code, message, hint);

/** The answer for `err`, or undefined when it is not one we made (a bug: the caller logs it and answers 500). */
export function toApiError(err: ServiceError | ApiError): ApiError;
export function toApiError(err: unknown): ApiError | undefined;
export function toApiError(err: unknown): ApiError | undefined {
  if (err instanceof ApiError) return err;
  if (err instanceof ServiceError) return new ApiError(STATUS[err.kind], err.code, err.message, err.hint);
  return undefined;
}

export function errorJson(e: ApiError): string {
  return JSON.stringify({ error: { code: e.code, message: e.message, ...(e.hint ? { hint: e.hint } : {}) } });
}

export function sendError(res: Response, err: ServiceError | ApiError): void {
  const e = toApiError(err);
  res.status(e.status).type('application/json').send(errorJson(e));
}

/** A whole HTTP/1.1 response, for a socket that never reached Express (bad requests, refused upgrades); closes the connection. */
export function rawErrorResponse(e: ApiError): string {
  const body = errorJson(e);
  return (
    `HTTP/1.1 ${e.status} ${STATUS_CODES[e.status] ?? 'Error'}\r\nContent-Type: application/json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
