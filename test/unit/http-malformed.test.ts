// Requests that never get as far as a route: malformed HTTP (refused by Node's
// parser), malformed WebSocket handshakes (which ws would refuse in plain text)
// and paging cursors we did not issue. Each must still get the API's JSON error
// shape and a 4xx. The same cases run against the real server, among 1,000
// others, in test/integration/faults.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import net, { type AddressInfo } from 'node:net';
import WebSocket from 'ws';
import { createApp } from '../../server/http/app.js';
import { InvalidCursorError } from '../../server/store/cursor.js';
import { notFound } from '../../server/errors.js';
import { createLogger } from '../../server/logger.js';
import type { RunService } from '../../server/services.js';
import { sendRaw } from '../support/hostile.js';

const run = {
  id: 'abcdefabcdef',
  namespace: 'demo',
  deployment: 'api',
  container: 'app',
  image: 'i',
  command: ['true'],
  user: 'alice',
  interactive: false,
  tty: false,
  status: 'succeeded' as const,
  jobName: 'api-oddjob-abcdefabcdef',
  createdAt: new Date().toISOString(),
  outputBytes: 0,
  outputTruncated: false,
};
const runs: RunService = {
  createRun: async () => run,
  previewRun: async () => ({ job: {} }),
  async readOutput() {
    throw new Error('not used');
  },
  async getRun(_ctx, id) {
    if (id !== run.id) throw notFound(`run ${id} not found`);
    return run;
  },
  async listRuns(_ctx, q) {
    if (q.cursor !== undefined) throw new InvalidCursorError('not a cursor issued by oddjob');
    return { items: [run] };
  },
  cancelRun: async () => run,
  async postProgress() {
    throw new Error('not used by these tests');
  },
  async attachViewer(_ctx, _id, _opts, viewer) {
    viewer.status({ kind: 'end', status: 'succeeded', exitCode: 0, outputBytes: 0, outputTruncated: false });
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

let base: string;
let close: () => Promise<void>;
before(async () => {
  const { server, dispose } = createApp({
    publicUrl: 'http://oddjob.test',
    logger: createLogger('fatal'),
    runs,
    deployments: { servedNamespaces: () => ['demo'], listRunnable: async () => [], completePaths: async () => ({ state: 'unavailable' as const, paths: [] }) },
    audit: { query: async () => ({ items: [] }), async *iterate() {}, verify: async () => ({ ok: true, checked: 0 }) },
    auth: { mode: 'dev', authenticate: async () => ({ identity: { login: 'alice', teams: [] }, via: 'dev', auditor: true }) },
    readiness: [],
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = dispose;
});
after(() => close());

async function send(raw: string) {
  const res = await sendRaw(base, Buffer.from(raw, 'latin1'));
  assert.match(res.headers['content-type'] ?? '', /^application\/json/, `not JSON: ${res.status} ${res.body}`);
  return { status: res.status, error: (JSON.parse(res.body) as { error: { code: string; message: string } }).error };
}

const WS = 'Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n';

describe('malformed requests get JSON errors', () => {
  test('HTTP the parser refuses: 400 / 431 in the API error shape', async () => {
    const line = await send('GET /api/ru ns HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.equal(line.status, 400);
    assert.equal(line.error.code, 'invalid_request');
    assert.equal((await send('POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n')).status, 400);
    const big = await send(`GET /api/runs HTTP/1.1\r\nHost: x\r\nX-Big: ${'b'.repeat(20_000)}\r\n\r\n`);
    assert.equal(big.status, 431);
    assert.match(big.error.message, /headers are too large/);
  });

  test('a body announced as 10 GiB is refused at once, without reading it', async () => {
    const t0 = Date.now();
    const res = await send(`POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: ${10 * 2 ** 30}\r\n\r\n{`);
    assert.equal(res.status, 413);
    assert.equal(res.error.code, 'too_large');
    assert.ok(Date.now() - t0 < 2000, 'answered without waiting for the body');
  });

  test('a chunked upload is cut off once it passes 64 KiB, not read to its end', async () => {
    const { hostname, port } = new URL(base);
    const socket = net.connect(Number(port), hostname);
    socket.on('error', () => undefined); // the server closes while we still send
    const answer = new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (d) => (got += d));
      socket.on('close', () => resolve(got));
    });
    socket.write('POST /api/runs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n');
    const chunk = Buffer.alloc(16 * 1024, 0x61);
    // An endless upload: 16 KiB every 10 ms until the server answers.
    const timer = setInterval(() => socket.writable && socket.write(Buffer.concat([Buffer.from('4000\r\n'), chunk, Buffer.from('\r\n')])), 10);
    try {
      const text = await Promise.race([answer, new Promise<string>((r) => setTimeout(() => r('(no answer in 3 s)'), 3000))]);
      assert.match(text, /^HTTP\/1\.1 413 /, text.slice(0, 200));
      assert.match(text, /"code":"too_large"/);
    } finally {
      clearInterval(timer);
      socket.destroy();
    }
  });

  test('a paging cursor we did not issue is a 400, not a 500', async () => {
    const res = await fetch(`${base}/api/runs?cursor=bogus`);
    assert.equal(res.status, 400);
    const body = (await res.json()) as { error: { code: string; message: string } };
    assert.equal(body.error.code, 'invalid_request');
    assert.match(body.error.message, /invalid cursor/);
  });

  test('malformed WebSocket handshakes: JSON 4xx before ws sees them', async () => {
    const path = `/api/runs/${run.id}/stream`;
    const cases: Array<[string, string, number, RegExp]> = [
      ['bad percent-encoding in the id', `GET /api/runs/%E0%A4%A/stream HTTP/1.1\r\nHost: x\r\n${WS}\r\n`, 400, /percent-encoding/],
      ['no key', `GET ${path} HTTP/1.1\r\nHost: x\r\n${WS.replace(/Sec-WebSocket-Key: .*\r\n/, '')}\r\n`, 400, /Sec-WebSocket-Key/],
      ['version 7', `GET ${path} HTTP/1.1\r\nHost: x\r\n${WS.replace('Version: 13', 'Version: 7')}\r\n`, 400, /Sec-WebSocket-Version/],
      ['not websocket', `GET ${path} HTTP/1.1\r\nHost: x\r\n${WS.replace('Upgrade: websocket', 'Upgrade: h2c')}\r\n`, 400, /WebSocket upgrades/],
      ['POST', `POST ${path} HTTP/1.1\r\nHost: x\r\n${WS}\r\n`, 405, /GET/],
      ['bad subprotocol offer', `GET ${path} HTTP/1.1\r\nHost: x\r\n${WS}Sec-WebSocket-Protocol: a,,a\r\n\r\n`, 400, /Sec-WebSocket-Protocol/],
    ];
    for (const [what, raw, status, message] of cases) {
      const res = await send(raw);
      assert.equal(res.status, status, what);
      assert.match(res.error.message, message, what);
    }
  });

  test('a well-formed handshake still opens the stream', async () => {
    const ws = new WebSocket(`${base.replace('http', 'ws')}/api/runs/${run.id}/stream?from=0&follow=1`);
    const closed = await new Promise<number>((resolve, reject) => {
      ws.on('close', (code) => resolve(code));
      ws.on('error', reject);
    });
    assert.equal(closed, 1000);
  });
});
