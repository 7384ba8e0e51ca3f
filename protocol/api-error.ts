// An error answer of the API as a client sees it ({error: {code, message, hint}}),
// shared by the CLI and the web UI. Zod-free, so the browser bundle stays small.
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
