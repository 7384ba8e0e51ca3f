// Business errors (server/errors.ts) and their one rendering (server/http/errors.ts):
// each kind has its status, every answer the same JSON body, and whatever is not
// ours is left for the caller to log as a bug.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ApiError } from '../../protocol/api-error.js';
import { ApiErrorBody } from '../../protocol/api.js';
import { ServiceError, badRequest, conflict, forbidden, notFound, unauthorized, unavailable, type ErrorKind } from '../../server/errors.js';
import { errorJson, httpRefusal, rawErrorResponse, toApiError } from '../../server/http/errors.js';

describe('ServiceError → API answer', () => {
  const table: [ServiceError, number, string][] = [
    [badRequest('bad'), 400, 'invalid_request'],
    [unauthorized(), 401, 'unauthenticated'],
    [forbidden('no'), 403, 'forbidden'],
    [notFound('gone'), 404, 'not_found'],
    [conflict('twice'), 409, 'conflict'],
    [new ServiceError('gone', 'expired'), 410, 'expired'],
    [new ServiceError('rejected', 'no'), 422, 'rejected_by_kubernetes'],
    [new ServiceError('rate_limited', 'slow down'), 429, 'rate_limited'],
    [new ServiceError('internal', 'oops'), 500, 'internal'],
    [new ServiceError('upstream', 'GitHub said nonsense'), 502, 'bad_gateway'],
    [unavailable('later', 'try again'), 503, 'unavailable'],
    [new ServiceError('forbidden', 'state mismatch', undefined, 'invalid_state'), 403, 'invalid_state'],
  ];
  for (const [err, status, code] of table) {
    test(`${err.kind} (${err.code}) → ${status}`, () => {
      const e = toApiError(err);
      assert.ok(e instanceof ApiError);
      assert.deepEqual([e.status, e.code, e.message, e.hint], [status, code, err.message, err.hint]);
    });
  }

  test('every kind has a status', () => {
    const kinds: ErrorKind[] = [
      'invalid',
      'unauthenticated',
      'forbidden',
      'not_found',
      'conflict',
      'gone',
      'rejected',
      'rate_limited',
      'unavailable',
      'upstream',
      'internal',
    ];
    for (const k of kinds) assert.ok(toApiError(new ServiceError(k, 'x')).status >= 400, k);
  });

  test('anything else is not ours to render', () => {
    assert.equal(toApiError(new Error('boom')), undefined);
    assert.equal(toApiError('boom'), undefined);
  });

  test('the body is the API error shape, hint only when there is one', () => {
    assert.deepEqual(JSON.parse(errorJson(toApiError(unavailable('later', 'try again')))), {
      error: { code: 'unavailable', message: 'later', hint: 'try again' },
    });
    assert.deepEqual(JSON.parse(errorJson(toApiError(notFound('run x not found')))), { error: { code: 'not_found', message: 'run x not found' } });
    assert.ok(ApiErrorBody.safeParse(JSON.parse(errorJson(toApiError(forbidden('no', 'ask'))))).success);
  });

  test('a raw answer (refused upgrade, malformed request) is a complete HTTP response with the same body', () => {
    const raw = rawErrorResponse(httpRefusal(405, 'method_not_allowed', 'a stream is opened with GET'));
    const [head, body] = raw.split('\r\n\r\n') as [string, string];
    assert.match(head, /^HTTP\/1\.1 405 Method Not Allowed\r\n/);
    assert.match(head, /\r\nContent-Length: (\d+)/);
    assert.equal(Number(/Content-Length: (\d+)/.exec(head)![1]), Buffer.byteLength(body));
    assert.match(head, /\r\nConnection: close$/);
    assert.deepEqual(JSON.parse(body), { error: { code: 'method_not_allowed', message: 'a stream is opened with GET' } });
  });
});
