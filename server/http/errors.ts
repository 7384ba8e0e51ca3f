// One error type for the HTTP edge. Anything thrown in a handler that is not an
// HttpError becomes a 500 with a generic message (the details go to the log only).
export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'HttpError';
  }
}

export const badRequest = (message: string, hint?: string) => new HttpError(400, 'invalid_request', message, hint);
export const unauthorized = (message = 'not signed in', hint = 'run `oddjob login` (or set ODDJOB_TOKEN)') =>
  new HttpError(401, 'unauthenticated', message, hint);
export const forbidden = (message: string, hint?: string) => new HttpError(403, 'forbidden', message, hint);
export const notFound = (message: string) => new HttpError(404, 'not_found', message);
export const conflict = (message: string) => new HttpError(409, 'conflict', message);
export const unavailable = (message: string, hint?: string) => new HttpError(503, 'unavailable', message, hint);
