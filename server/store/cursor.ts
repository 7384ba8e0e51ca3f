// Opaque paging cursors for the store's listings (audit events, runs).
/** Raised for a paging cursor that this store did not issue. */
export class InvalidCursorError extends Error {
  constructor(detail: string) {
    super(`invalid cursor: ${detail}; use the nextCursor of a previous page, or omit it to start from the newest`);
    this.name = 'InvalidCursorError';
  }
}

// Cursors are a tagged key: the tag keeps a runs cursor from being accepted by the
// audit log (and vice versa), and the encoding keeps clients from relying on the form.
export function encodeCursor(tag: string, key: number): string {
  return Buffer.from(`${tag}:${key}`, 'utf8').toString('base64url');
}

export function decodeCursor(tag: string, cursor: string): number {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) throw new InvalidCursorError('not base64url');
  const m = /^([a-z]+):([1-9][0-9]{0,15})$/.exec(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!m) throw new InvalidCursorError('not a cursor issued by oddjob');
  if (m[1] !== tag) throw new InvalidCursorError(`it belongs to another listing (${m[1]}), not ${tag}`);
  const key = Number(m[2]);
  if (!Number.isSafeInteger(key)) throw new InvalidCursorError('out of range');
  return key;
}
