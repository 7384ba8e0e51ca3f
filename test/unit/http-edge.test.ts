// The HTTP and WebSocket edge on its own: validation, authentication, Origin
// checks and error rendering. Behind the edge are recording doubles of our own
// service interfaces (server/services.ts) — Kubernetes is not involved at this
// layer; the real services are exercised end to end in test/integration.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import request from 'supertest';
import WebSocket from 'ws';
import { createApp } from '../../server/http/app.js';
import { notFound } from '../../server/errors.js';
import { createLogger } from '../../server/logger.js';
import type { AuditService, Authenticator, Identity, RunService, Viewer } from '../../server/services.js';
import { ConfigError, loadConfig } from '../../server/config.js';
import { Channel, decodeFrame, encodeFrame } from '../../protocol/frames.js';

const alice: Identity = { login: 'alice', teams: ['acme/payments'] };
const calls: Array<[string, unknown]> = [];
let identity: Identity | null = alice;
const run = {
  id: 'abcdefabcdef',
  namespace: 'demo',
  deployment: 'api',
  container: 'app',
  image: 'i',
  command: ['true'],
  user: 'alice',
  interactive: true,
  tty: false,
  status: 'running' as const,
  jobName: 'api-oddjob-abcdefabcdef',
  createdAt: new Date().toISOString(),
  outputBytes: 0,
  outputTruncated: false,
};
const stdin: Buffer[] = [];

const runs: RunService = {
  async createRun(_ctx, req) {
    calls.push(['createRun', req]);
    if ('deployment' in req && req.deployment === 'boom') throw new Error('secret internal detail');
    return run;
  },
  async previewRun(_ctx, req) {
    calls.push(['previewRun', req]);
    return { job: { kind: 'Job', metadata: { name: `${'deployment' in req ? req.deployment : req.task}-oddjob-preview` } } };
  },
  async getRun(_ctx, id) {
    if (id !== run.id) throw notFound(`run ${id} not found`);
    return run;
  },
  async readOutput(_ctx, id) {
    if (id !== run.id) throw notFound(`run ${id} not found`);
    const chunks = [
      { channel: 1 as const, data: Buffer.from('out 1\n') },
      { channel: 2 as const, data: Buffer.from('err 1\n') },
      { channel: 1 as const, data: Buffer.from([0xff, 0x00, 0x0a]) },
    ];
    return {
      run,
      chunks: (async function* () {
        yield* chunks;
      })(),
    };
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
  async attachViewer(_ctx, _id, opts, viewer: Viewer) {
    calls.push(['attachViewer', opts]);
    viewer.output(1, Buffer.from('out'));
    viewer.output(2, Buffer.from('err'));
    return {
      accepts: { stdin: true, resize: true },
      stdin: (d) => (stdin.push(d), true),
      stdinDrained: async () => undefined,
      resize: () => undefined,
      detach: () => undefined,
    };
  },
};
const audit: AuditService = {
  query: async () => ({ items: [] }),
  async *iterate() {},
  verify: async () => ({ ok: true, checked: 0 }),
};
const auth: Authenticator = { mode: 'dev', authenticate: async () => (identity ? { identity, via: 'token', auditor: true } : null) };

let base: string;
let close: () => Promise<void>;
before(async () => {
  const { server, dispose } = createApp({
    publicUrl: 'http://oddjob.test',
    logger: createLogger('fatal'),
    runs,
    deployments: { servedNamespaces: () => ['demo'], listRunnable: async () => [], completePaths: async () => ({ state: 'unavailable' as const, paths: [] }) },
    audit,
    auth,
    readiness: [],
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = dispose;
});
after(() => close());

const body = { namespace: 'demo', deployment: 'api', command: ['node', '-e', '1'] };

describe('HTTP API edge', () => {
  test('a valid run request reaches the service with defaults applied', async () => {
    const r = await request(base).post('/api/runs').send(body).expect(201);
    assert.equal(r.body.id, run.id);
    assert.deepEqual(calls.at(-1), ['createRun', { ...body, interactive: false, tty: false, noSidecars: false }]);
  });
  const bad: Array<[string, object, RegExp]> = [
    ['unknown field', { ...body, image: 'evil:1' }, /image/],
    ['empty command', { ...body, command: [] }, /give a command/],
    ['command of the wrong type', { ...body, command: 'rm -rf /' }, /command/],
    ['namespace that is not a DNS label', { ...body, namespace: '../kube-system' }, /namespace/],
    ['NUL in an argument', { ...body, command: ['a\u0000b'] }, /NUL/],
    ['negative timeout', { ...body, timeoutSeconds: -1 }, /timeoutSeconds/],
  ];
  for (const [name, b, msg] of bad) {
    test(`400: ${name}`, async () => {
      const r = await request(base).post('/api/runs').send(b).expect(400);
      assert.equal(r.body.error.code, 'invalid_request');
      assert.match(r.body.error.message, msg);
    });
  }
  test('a Job preview is validated like a run and answers 200 with the manifest', async () => {
    const r = await request(base).post('/api/runs/preview').send(body).expect(200);
    assert.equal(r.body.job.metadata.name, 'api-oddjob-preview');
    assert.deepEqual(calls.at(-1), ['previewRun', { ...body, interactive: false, tty: false, noSidecars: false }]);
    const bad = await request(base)
      .post('/api/runs/preview')
      .send({ ...body, command: [] })
      .expect(400);
    assert.match(bad.body.error.message, /give a command/);
    await request(base).post('/api/runs/preview').set('content-type', 'text/plain').send('hi').expect(415);
    assert.notEqual(calls.at(-1)?.[0], 'createRun');
  });
  test('400: body that is not JSON', async () => {
    const r = await request(base).post('/api/runs').set('content-type', 'application/json').send('{"namespace":').expect(400);
    assert.match(r.body.error.message, /not valid JSON/);
  });
  test('413: body over 64 KiB', async () => {
    const r = await request(base)
      .post('/api/runs')
      .send({ ...body, reason: 'x'.repeat(70_000) })
      .expect(413);
    assert.match(r.body.error.message, /64 KiB/);
  });
  test('415: not JSON at all', async () => {
    await request(base).post('/api/runs').set('content-type', 'text/plain').send('hi').expect(415);
  });
  test('400: bad run id; 404 from the service keeps its message', async () => {
    await request(base).get('/api/runs/..%2F..%2Fetc').expect(400);
    const r = await request(base).get('/api/runs/zzzzzzzzzzzz').expect(404);
    assert.equal(r.body.error.message, 'run zzzzzzzzzzzz not found');
  });
  test('GET /api/runs/ID/log downloads the stored output as it was, whole or one stream', async () => {
    const get = async (query: string) => {
      const r = await fetch(`${base}/api/runs/${run.id}/log${query}`);
      assert.equal(r.status, 200);
      return { headers: r.headers, body: Buffer.from(await r.arrayBuffer()) };
    };
    const all = await get('');
    assert.equal(all.headers.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(all.headers.get('content-disposition'), `attachment; filename="oddjob-${run.id}.log"`);
    assert.equal(all.headers.get('x-content-type-options'), 'nosniff');
    assert.deepEqual(all.body, Buffer.concat([Buffer.from('out 1\nerr 1\n'), Buffer.from([0xff, 0x00, 0x0a])]));
    const err = await get('?stream=stderr');
    assert.equal(err.headers.get('content-disposition'), `attachment; filename="oddjob-${run.id}-stderr.log"`);
    assert.equal(err.body.toString(), 'err 1\n');
    assert.deepEqual((await get('?stream=stdout')).body, Buffer.concat([Buffer.from('out 1\n'), Buffer.from([0xff, 0x00, 0x0a])]));
    await request(base).get(`/api/runs/${run.id}/log?stream=both`).expect(400);
    await request(base).get('/api/runs/zzzzzzzzzzzz/log').expect(404);
  });
  test('404 JSON for an unknown API path', async () => {
    const r = await request(base).get('/api/nope').expect(404);
    assert.equal(r.body.error.code, 'not_found');
  });
  test('500 hides internals and gives a request id', async () => {
    const r = await request(base)
      .post('/api/runs')
      .send({ ...body, deployment: 'boom' })
      .expect(500);
    assert.doesNotMatch(JSON.stringify(r.body), /secret internal detail|at .*\.ts/);
    assert.match(r.body.error.message, /request id [0-9a-f-]{36}/);
  });
  test('401 with the login hint when nobody is signed in', async () => {
    identity = null;
    try {
      const r = await request(base).get('/api/whoami').expect(401);
      assert.match(r.body.error.hint, /oddjob login/);
    } finally {
      identity = alice;
    }
  });
  test('the served namespaces: listed to a signed-in caller, never to an anonymous one', async () => {
    const r = await request(base).get('/api/namespaces').expect(200);
    assert.deepEqual(r.body, { items: [{ name: 'demo' }] });
    identity = null;
    try {
      const anon = await request(base).get('/api/namespaces').expect(401);
      assert.doesNotMatch(JSON.stringify(anon.body), /demo/);
    } finally {
      identity = alice;
    }
  });
  test('security headers, no x-powered-by', async () => {
    const r = await request(base).get('/healthz').expect(200);
    assert.equal(r.headers['x-powered-by'], undefined);
    assert.equal(r.headers['x-content-type-options'], 'nosniff');
    assert.match(r.headers['content-security-policy'] ?? '', /default-src 'self'/);
  });
  test('every answer names the server version, a 401 too (the CLI warns on skew)', async () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    assert.equal((await request(base).get('/healthz').expect(200)).headers['x-oddjob-version'], version);
    identity = null;
    try {
      assert.equal((await request(base).get('/api/whoami').expect(401)).headers['x-oddjob-version'], version);
    } finally {
      identity = alice;
    }
  });
  test('/metrics speaks Prometheus', async () => {
    const r = await request(base).get('/metrics').expect(200);
    assert.match(r.text, /oddjob_http_request_duration_seconds/);
  });
});

function ws(path: string, headers: Record<string, string> = {}) {
  return new WebSocket(`${base.replace('http', 'ws')}${path}`, { headers });
}
function refusal(sock: WebSocket): Promise<number> {
  return new Promise((resolve, reject) => {
    sock.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
    sock.on('open', () => reject(new Error('upgrade should have been refused')));
    sock.on('error', () => undefined);
  });
}

describe('WebSocket edge', () => {
  test('a browser from another origin is refused before the upgrade', async () => {
    assert.equal(await refusal(ws(`/api/runs/${run.id}/stream`, { origin: 'https://evil.example' })), 403);
  });
  test('anonymous is refused with 401', async () => {
    identity = null;
    try {
      assert.equal(await refusal(ws(`/api/runs/${run.id}/stream`)), 401);
    } finally {
      identity = alice;
    }
  });
  test('bad id or from → 400; unknown run → 404', async () => {
    assert.equal(await refusal(ws('/api/runs/NOPE/stream')), 400);
    assert.equal(await refusal(ws(`/api/runs/${run.id}/stream?from=-1`)), 400);
    assert.equal(await refusal(ws('/api/runs/zzzzzzzzzzzz/stream')), 404);
  });
  test('the public origin (or none, for CLIs) streams frames both ways', async () => {
    const sock = ws(`/api/runs/${run.id}/stream?from=7&follow=1`, { origin: 'http://oddjob.test' });
    const frames: Array<[number, string]> = [];
    await new Promise<void>((resolve, reject) => {
      sock.on('message', (m: Buffer) => {
        const f = decodeFrame(m);
        if (f.channel === 1 || f.channel === 2) frames.push([f.channel, f.data.toString()]);
        if (frames.length === 2) resolve();
      });
      sock.on('error', reject);
    });
    assert.deepEqual(frames, [
      [1, 'out'],
      [2, 'err'],
    ]);
    assert.deepEqual(calls.at(-1), ['attachViewer', { from: 7, follow: true }]);
    sock.send(encodeFrame(Channel.stdin, 'typed\n'));
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(Buffer.concat(stdin).toString(), 'typed\n');
    sock.close();
  });
});

describe('server config', () => {
  const ok = ['--namespaces', 'demo', '--auth', 'dev'];
  test('defaults and env; flags win', () => {
    const c = loadConfig([...ok, '--port', '9000'], { ODDJOB_PORT: '1234', ODDJOB_DEFAULT_TIMEOUT: '10m' });
    assert.equal(c.port, 9000);
    assert.equal(c.defaultTimeout, 600);
    assert.equal(c.maxOutput, 16 * 1024 * 1024);
    assert.ok(Object.isFrozen(c));
  });
  const bad: Array<[string[], RegExp]> = [
    [['--auth', 'dev'], /--namespaces \(ODDJOB_NAMESPACES\): is required/],
    [[...ok, '--port', 'http'], /--port \(ODDJOB_PORT\)/],
    [[...ok, '--default-timeout', '5 minutes'], /--default-timeout \(ODDJOB_DEFAULT_TIMEOUT\): "5 minutes" is not a duration/],
    [[...ok, '--namespaces', 'Demo'], /DNS label/],
    [[...ok, '--host', '0.0.0.0'], /--auth dev gives every caller/],
    [[...ok, '--bogus'], /unknown option --bogus/],
    [[...ok, '--db'], /--db needs a value/],
    [[...ok, '--default-timeout', '2d', '--max-timeout', '1d'], /above --max-timeout/],
    [
      [...ok, '--notifications', '/nonexistent/notify.yaml'],
      /--notifications \/nonexistent\/notify\.yaml: cannot read it \(no such file\) \(ODDJOB_NOTIFICATIONS\)/,
    ],
  ];
  for (const [argv, msg] of bad) {
    test(`refused: ${argv.join(' ')}`, () =>
      assert.throws(
        () => loadConfig(argv, {}),
        (e: Error) => e instanceof ConfigError && msg.test(e.message),
      ));
  }
});
