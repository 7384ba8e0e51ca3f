// Where a mutation may come from. See checkOrigin.
import type { Request } from 'express';
import type { Principal } from '../services.js';
import { forbidden } from '../errors.js';

/**
 * Cookie-authenticated mutations must come from our own pages. Browsers send Origin
 * on every cross-origin request and on same-origin POSTs; Sec-Fetch-Site covers the
 * rest. A bearer token is never attached by a browser on its own, so it needs neither.
 */
export function checkOrigin(req: Request, publicUrl: string, p: Principal | null): void {
  const origin = req.headers.origin;
  const allowed = new URL(publicUrl).origin;
  if (origin !== undefined && origin !== allowed) throw forbidden(`requests from ${origin} are not accepted`, `use oddjob at ${allowed}`);
  if (p?.via === 'session' && origin === undefined && req.headers['sec-fetch-site'] !== 'same-origin') {
    throw forbidden('this request did not come from an oddjob page', `use oddjob at ${allowed}`);
  }
}
