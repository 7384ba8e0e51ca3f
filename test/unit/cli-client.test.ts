// The HTTP client against a real local server: headers, schema checks, error shapes and messages.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ApiError, NetworkError, OddjobClient, networkReason } from '../../cli/client.js';
import { CliError, formatError } from '../../cli/errors.js';

let server: Server;
let base: string;
let seen: { method?: string; url?: string; headers?: IncomingHttpHeaders; body?: string } = {};

before(async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => (body += c));
    req.on('end', () => {
      seen = { method: req.method, url: req.url, headers: req.headers, body };
      const json = (status: number, v: unknown) => {
        res.writeHead(status, { 'content-type': 'application/json' });
        res.end(JSON.stringify(v));
      };
      const path = req.url!.split('?')[0];
      if (path === '/api/whoami') return json(200, { login: 'alice', teams: ['acme/payments'] });
      if (path === '/api/deployments') return json(200, { items: [{ bogus: true }] });
      if (path === '/api/runs' && req.method === 'POST')
        return json(403, { error: { code: 'forbidden', message: 'deployment default/closed is not opted in', hint: 'ask its owners' } });
      if (path === '/api/runs') return json(200, { items: [] });
      if (path === '/api/audit/verify') {
        res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' });
        return res.end('<html>upstream down</html>');
      }
      if (path === '/api/runs/aaaaaaaaaaaa') return json(401, { error: { code: 'unauthenticated', message: 'not signed in' } });
      res.writeHead(200);
      res.end('not json');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
after(() => new Promise<void>((r) => server.close(() => r())));

describe('OddjobClient', () => {
  const client = () => new OddjobClient({ server: `${base}/`, token: 'tkn', version: '1.2.3' });

  test('sends the token and the client header; parses the answer', async () => {
    assert.deepEqual(await client().whoami(), { login: 'alice', teams: ['acme/payments'] });
    assert.equal(seen.headers?.authorization, 'Bearer tkn');
    assert.equal(seen.headers?.['x-oddjob-client'], 'cli/1.2.3');
  });
  test('no token, no Authorization header', async () => {
    await new OddjobClient({ server: base, version: '1' }).whoami();
    assert.equal(seen.headers?.authorization, undefined);
  });
  test('query: mine only when true, unset filters left out', async () => {
    await client().listRuns({ mine: false, namespace: 'payments', status: undefined, limit: 5 });
    assert.equal(seen.url, '/api/runs?namespace=payments&limit=5');
    await client().listRuns({ mine: true });
    assert.equal(seen.url, '/api/runs?mine=true');
  });
  test('API errors carry status, code, message and hint', async () => {
    const err = await client()
      .createRun({ namespace: 'default', deployment: 'closed', command: ['x'], interactive: false, tty: false, noSidecars: false })
      .catch((e) => e);
    assert.ok(err instanceof ApiError);
    assert.equal(err.status, 403);
    assert.equal(err.code, 'forbidden');
    assert.equal(formatError(err), 'oddjob: deployment default/closed is not opted in\n  hint: ask its owners\n');
    assert.equal(seen.headers?.['content-type'], 'application/json');
    assert.deepEqual(JSON.parse(seen.body!), { namespace: 'default', deployment: 'closed', command: ['x'], interactive: false, tty: false, noSidecars: false });
  });
  test('401 without a hint gets one', async () => {
    const err = (await client()
      .getRun('aaaaaaaaaaaa')
      .catch((e) => e)) as ApiError;
    assert.match(err.hint ?? '', /ODDJOB_TOKEN/);
  });
  test('a non-JSON error page is summarised, not dumped', async () => {
    const err = (await client()
      .auditVerify()
      .catch((e) => e)) as ApiError;
    assert.equal(err.status, 502);
    assert.match(err.message, /GET \/api\/audit\/verify failed: HTTP 502 Bad Gateway/);
  });
  test('an answer that does not match the protocol says so', async () => {
    await assert.rejects(client().deployments(), /does not match this CLI.*items\.0/);
    await assert.rejects(client().getRun('bbbbbbbbbbbb'), /is not JSON/);
  });
  test('unreachable server: one actionable line', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const err = await new OddjobClient({ server: `http://127.0.0.1:${port}`, version: '1' }).whoami().catch((e) => e);
    assert.ok(err instanceof NetworkError);
    assert.equal(err.message, `cannot reach the oddjob server at http://127.0.0.1:${port}: ECONNREFUSED — is it running? (set --server or ODDJOB_SERVER)`);
  });
  test('stream URLs switch to ws(s) and carry from/follow', () => {
    assert.equal(client().streamUrl('abc', 42, true), `${base.replace('http', 'ws')}/api/runs/abc/stream?from=42&follow=1`);
    assert.equal(
      new OddjobClient({ server: 'https://o.example.com/base', version: '1' }).streamUrl('x', 0, false),
      'wss://o.example.com/base/api/runs/x/stream?from=0&follow=0',
    );
  });
});

describe('error formatting', () => {
  test('networkReason digs the code out of nested causes', () => {
    assert.equal(networkReason(Object.assign(new TypeError('fetch failed'), { cause: { code: 'ECONNRESET' } })), 'ECONNRESET');
    assert.equal(networkReason(Object.assign(new TypeError('fetch failed'), { cause: new Error('other') })), 'other');
  });
  test('formatError: message, optional hint, stack only in debug', () => {
    assert.equal(formatError(new CliError('bad', { hint: 'do this' })), 'oddjob: bad\n  hint: do this\n');
    assert.equal(formatError('plain'), 'oddjob: plain\n');
    assert.match(formatError(new Error('x'), true), /^oddjob: x\nError: x\n\s+at /);
  });
});
