// Safe defaults at the edge, on the real app with doubles of our own services:
// --auth dev answers only loopback Host names (HTTP and WebSocket), /api is rate
// limited per person with refused requests counted, and /readyz tells anonymous
// callers nothing about the namespaces it serves.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createDevAuthenticator } from '../../server/auth/dev.js';
import { isLoopbackHost } from '../../server/http/host.js';
import { createApp } from '../../server/http/app.js';
import { forbidden, unauthorized } from '../../server/errors.js';
import { createLogger } from '../../server/logger.js';
import type { Authenticator, ReadinessCheck, RunService } from '../../server/services.js';

const run = {
  id: 'abcdefabcdef',
  namespace: 'demo',
  deployment: 'api',
  container: 'app',
  image: 'i',
  command: ['true'],
  user: 'dev',
  interactive: false,
  tty: false,
  status: 'running' as const,
  jobName: 'j',
  createdAt: new Date().toISOString(),
  outputBytes: 0,
  outputTruncated: false,
};
let denials = 0;
const runs: RunService = {
  async createRun() {
    denials++;
    throw forbidden('not allowed on this deployment');
  },
  async previewRun() {
    return { job: {} };
  },
  async readOutput() {
    throw new Error('not used');
  },
  async getRun() {
    return run;
  },
  async listRuns() {
    return { items: [run] };
  },
  async cancelRun() {
    return run;
  },
  async postProgress() {
    throw new Error('not used by these tests');
  },
  async attachViewer(_ctx, _id, _opts, viewer) {
    viewer.status({ type: 'end', status: 'succeeded', exitCode: 0, outputBytes: 0, outputTruncated: false } as never);
    viewer.close();
    return {
      accepts: { stdin: false, resize: false },
      stdin: () => true,
      stdinDrained: async () => undefined,
      resize: () => undefined,
      detach: () => undefined,
    };
  },
};
const deps = (auth: Authenticator, extra: object = {}) => ({
  publicUrl: 'http://localhost:1',
  logger: createLogger('fatal'),
  runs,
  deployments: { servedNamespaces: () => ['demo'], listRunnable: async () => [], completePaths: async () => ({ state: 'unavailable' as const, paths: [] }) },
  audit: { query: async () => ({ items: [] }), async *iterate() {}, verify: async () => ({ ok: true, checked: 0 }) },
  auth,
  readiness: [] as ReadinessCheck[],
  ...extra,
});

async function listen(app: ReturnType<typeof createApp>) {
  await new Promise<void>((r) => app.server.listen(0, '127.0.0.1', r));
  return (app.server.address() as AddressInfo).port;
}

/** A request with the Host header we choose (fetch does not let us set it). */
function get(port: number, path: string, headers: Record<string, string> = {}, method = 'GET', body?: string) {
  return new Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }>((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method, headers, setHost: headers.host === undefined }, (res) => {
      let b = '';
      res.on('data', (d) => (b += d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: b }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

describe('--auth dev: loopback Host names only (DNS rebinding)', () => {
  let app: ReturnType<typeof createApp>;
  let port: number;
  before(async () => {
    app = createApp(deps(createDevAuthenticator({ login: 'dev', teams: [] }), { loopbackOnly: true }));
    port = await listen(app);
  });
  after(() => app.dispose());

  test('which names count as loopback', () => {
    for (const h of [
      'localhost',
      'localhost:8080',
      'LOCALHOST:1',
      '127.0.0.1',
      '127.0.0.1:8080',
      '127.1.2.3:9',
      '[::1]',
      '[::1]:8080',
      '[0:0:0:0:0:0:0:1]:80',
    ]) {
      assert.ok(isLoopbackHost(h), h);
    }
    for (const h of [
      undefined,
      '',
      'evil.example',
      'evil.example:8080',
      'localhost.evil.example',
      '127.0.0.1.nip.io',
      '10.0.0.1',
      '0.0.0.0:8080',
      '[::]',
      '[::2]',
      '128.0.0.1',
      '127.0.0.256',
      'localhost:8080@evil',
      '127.0.0.1 evil',
    ]) {
      assert.ok(!isLoopbackHost(h), String(h));
    }
  });
  test('HTTP under a loopback name is answered', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`]) {
      const r = await get(port, '/api/whoami', { host });
      assert.equal(r.status, 200, `${host}: ${r.body}`);
      assert.equal(JSON.parse(r.body).login, 'dev');
    }
  });
  test('HTTP under any other name gets 421 and nothing else, on every path', async () => {
    for (const path of ['/api/whoami', '/api/runs', '/api/audit', '/metrics', '/readyz', '/', '/auth/info']) {
      const r = await get(port, path, { host: `rebind.evil.example:${port}` });
      assert.equal(r.status, 421, `${path}: ${r.body}`);
      const e = JSON.parse(r.body).error;
      assert.equal(e.code, 'misdirected');
      assert.match(e.message, /--auth dev .*localhost, 127\.0\.0\.1 or \[::1\], not "rebind\.evil\.example:\d+"/);
      assert.doesNotMatch(r.body, /"login"|oddjob_http_request|abcdefabcdef/);
    }
    const post = await get(port, '/api/runs', { host: 'evil.example', 'content-type': 'application/json' }, 'POST', '{}');
    assert.equal(post.status, 421);
    assert.equal(denials, 0, 'nothing reached the run service');
  });
  test('a WebSocket upgrade under another name is refused before upgrading; under localhost it streams', async () => {
    const refused = await new Promise<number>((resolve, reject) => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/api/runs/${run.id}/stream?from=0`, { headers: { host: `evil.example:${port}` } });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode!));
      ws.on('open', () => reject(new Error('the upgrade was accepted')));
      ws.on('error', () => undefined);
    });
    assert.equal(refused, 421);
    const opened = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`ws://localhost:${port}/api/runs/${run.id}/stream?from=0`);
      ws.on('open', () => {
        ws.close();
        resolve(true);
      });
      ws.on('unexpected-response', () => resolve(false));
      ws.on('error', () => resolve(false));
    });
    assert.ok(opened, 'a loopback-named upgrade is accepted');
  });
});

describe('/api rate limit', () => {
  const LIMIT = 5;
  // alice and bob by token; "bad" is a token that does not authenticate.
  const auth: Authenticator = {
    mode: 'github',
    async authenticate(req) {
      const who = String(req.headers.authorization ?? '').replace(/^Bearer /, '');
      if (who === '') return null;
      if (who === 'bad') throw unauthorized('this token is not valid');
      return { identity: { login: who, teams: [], id: who === 'alice' ? 1 : 2 }, via: 'token', auditor: false };
    },
  };
  let app: ReturnType<typeof createApp>;
  let port: number;
  before(async () => {
    app = createApp(deps(auth, { apiRateLimit: LIMIT }));
    port = await listen(app);
  });
  after(() => app.dispose());

  test('per person: refused requests count, the next gets 429 with Retry-After, others are unaffected', async () => {
    denials = 0;
    const body = JSON.stringify({ namespace: 'demo', deployment: 'api', command: ['true'] });
    const as = (who: string) => ({ authorization: `Bearer ${who}`, 'content-type': 'application/json' });
    for (let i = 0; i < LIMIT; i++) assert.equal((await get(port, '/api/runs', as('alice'), 'POST', body)).status, 403);
    assert.equal(denials, LIMIT);
    const limited = await get(port, '/api/runs', as('alice'), 'POST', body);
    assert.equal(limited.status, 429, limited.body);
    assert.equal(denials, LIMIT, 'a limited request does not reach the service (no audit record)');
    const retry = Number(limited.headers['retry-after']);
    assert.ok(retry > 0 && retry <= 60, `Retry-After: ${limited.headers['retry-after']}`);
    const e = JSON.parse(limited.body).error;
    assert.equal(e.code, 'rate_limited');
    assert.match(e.message, /too many API requests by alice: at most 5 a minute/);
    assert.match(e.hint, /wait \d+ seconds; an operator can raise --api-rate-limit/);
    // GETs count against the same budget.
    assert.equal((await get(port, '/api/runs', as('alice'))).status, 429);
    // Another person from the same address is not affected.
    assert.equal((await get(port, '/api/runs', as('bob'))).status, 200);
  });
  test('before authentication, by address: invalid tokens and anonymous calls are limited too', async () => {
    for (let i = 0; i < LIMIT; i++) assert.equal((await get(port, '/api/whoami', { authorization: 'Bearer bad' })).status, 401);
    const r = await get(port, '/api/whoami', {});
    assert.equal(r.status, 429, r.body);
    assert.match(JSON.parse(r.body).error.message, /from this address/);
    assert.ok(Number(r.headers['retry-after']) > 0);
  });
});

describe('/metrics on its own port (--metrics-port)', () => {
  test('the main port does not answer /metrics; the metrics listener answers only /metrics', async () => {
    const app = createApp(deps(createDevAuthenticator({ login: 'dev', teams: [] }), { serveMetrics: false }));
    const port = await listen(app);
    const side = http.createServer(app.metricsHandler);
    await new Promise<void>((r) => side.listen(0, '127.0.0.1', r));
    const sidePort = (side.address() as AddressInfo).port;
    try {
      const main = await get(port, '/metrics');
      assert.notEqual(main.status, 200);
      assert.doesNotMatch(main.body, /oddjob_http_request_duration_seconds|process_cpu/);
      const m = await get(sidePort, '/metrics');
      assert.equal(m.status, 200);
      assert.match(m.body, /process_cpu_user_seconds_total/);
      assert.equal((await get(sidePort, '/api/whoami')).status, 404);
    } finally {
      side.close();
      await app.dispose();
    }
  });
});

describe('/readyz', () => {
  test('names the failing check to anonymous callers, not the namespaces in its reason', async () => {
    const app = createApp(
      deps(createDevAuthenticator({ login: 'dev', teams: [] }), {
        readiness: [
          {
            name: 'kubernetes-watches',
            check: async () => {
              throw new Error('pod watch for namespace secret-payments-prod has not synced');
            },
          },
        ],
      }),
    );
    const port = await listen(app);
    try {
      const r = await get(port, '/readyz');
      assert.equal(r.status, 503);
      assert.match(r.body, /not ready: kubernetes-watches/);
      assert.doesNotMatch(r.body, /secret-payments-prod|namespace/);
    } finally {
      await app.dispose();
    }
  });
});
