// Why a request cannot be served, as the services, the auth layer and the
// Kubernetes edge say it: a kind, a stable code for programs, a message for
// people and a hint of what to do. Nothing here knows about HTTP: the one
// mapping to a status and a JSON body is http/errors.ts (for HTTP answers and
// refused WebSocket upgrades alike).

export type ErrorKind =
  | 'invalid' // the request itself is wrong
  | 'unauthenticated'
  | 'forbidden'
  | 'not_found'
  | 'conflict'
  | 'gone' // it existed, and expired
  | 'rejected' // Kubernetes refused what we built from the request
  | 'rate_limited'
  | 'unavailable' // a dependency (Kubernetes, GitHub, the audit store) cannot be used now
  | 'upstream' // a dependency answered something we cannot use
  | 'internal';

const DEFAULT_CODE: Record<ErrorKind, string> = {
  invalid: 'invalid_request',
  unauthenticated: 'unauthenticated',
  forbidden: 'forbidden',
  not_found: 'not_found',
  conflict: 'conflict',
  gone: 'expired',
  rejected: 'rejected_by_kubernetes',
  rate_limited: 'rate_limited',
  unavailable: 'unavailable',
  upstream: 'bad_gateway',
  internal: 'internal',
};

export class ServiceError extends Error {
  readonly code: string;
  constructor(
    readonly kind: ErrorKind,
    message: string,
    readonly hint?: string,
    code?: string,
  ) {
    super(message);
    this.name = 'ServiceError';
    this.code = code ?? DEFAULT_CODE[kind];
  }
}

export const badRequest = (message: string, hint?: string) => new ServiceError('invalid', message, hint);
export const unauthorized = (message = 'not signed in', hint = 'run `oddjob login` (or set ODDJOB_TOKEN)') =>
  new ServiceError('unauthenticated', message, hint);
export const forbidden = (message: string, hint?: string) => new ServiceError('forbidden', message, hint);
export const notFound = (message: string) => new ServiceError('not_found', message);
export const conflict = (message: string) => new ServiceError('conflict', message);
export const unavailable = (message: string, hint?: string) => new ServiceError('unavailable', message, hint);

/**
 * A namespace this server does not serve. Only ever said to a signed-in caller
 * (everything under /api is), who may see the served namespaces: naming them is
 * the hint that makes `-n` easy to get right.
 */
export const namespaceNotServed = (namespace: string, served: readonly string[]) =>
  new ServiceError(
    'not_found',
    `namespace ${namespace} is not served by this oddjob server`,
    served.length ? `namespaces you can use: ${served.join(', ')} (pass -n NAME)` : 'this server serves no namespaces',
    'namespace_not_served',
  );
