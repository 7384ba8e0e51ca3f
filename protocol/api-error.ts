// An error answer of the API ({error: {code, message, hint}} with its HTTP
// status): what the server's HTTP edge renders (server/http/errors.ts) and what
// the CLI and the web UI read back. Zod-free, so the browser bundle stays small.
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly hint?: string,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}
