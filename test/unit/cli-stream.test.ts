// followRun against a real local WebSocket server: resume without gap or
// duplicate, backpressure, error handling, give-up, detach, interactive stdin.
import { after, before, beforeEach, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough, Writable } from 'node:stream';
import WebSocket, { WebSocketServer } from 'ws';
import { Channel, CloseCode, decodeFrame, encodeFrame, encodeStatus, type StatusFrame } from '../../protocol/frames.js';
import { ApiError, OddjobClient } from '../../cli/client.js';
import { StreamError, followRun, type FollowOptions } from '../../cli/stream.js';

type Handler = (ws: WebSocket, req: IncomingMessage, q: URLSearchParams) => void;
let handler: Handler;
let upgradeStatus: number | undefined;
/** What GET /api/runs/aaaaaaaaaaaa answers: the run in this status, or 404 when undefined. */
let runStatus: (() => string) | undefined;
let server: Server;
let wss: WebSocketServer;
let client: OddjobClient;

before(async () => {
  server = createServer((req, res) => {
    const status = runStatus?.();
    if (req.url !== '/api/runs/aaaaaaaaaaaa' || !status) {
      res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { code: 'not_found', message: 'run not found' } }));
      return;
    }
    const run = {
      id: 'aaaaaaaaaaaa',
      namespace: 'ns',
      deployment: 'api',
      container: 'app',
      image: 'img',
      command: ['x'],
      user: 'alice',
      interactive: false,
      tty: false,
      status,
      jobName: 'j',
      createdAt: new Date().toISOString(),
    };
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(run));
  });
  wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    if (upgradeStatus) {
      const body = JSON.stringify(
        upgradeStatus === 503
          ? { error: { code: 'unavailable', message: 'the server is starting' } }
          : { error: { code: 'forbidden', message: 'run aaaaaaaaaaaa belongs to bob' } },
      );
      socket.end(`HTTP/1.1 ${upgradeStatus} X\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\nconnection: close\r\n\r\n${body}`);
      return;
    }
    wss.handleUpgrade(req, socket, head, (ws) => handler(ws, req, new URL(req.url!, 'http://x').searchParams));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  client = new OddjobClient({ server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, token: 't', version: 'test' });
});
after(async () => {
  for (const c of wss.clients) c.terminate();
  await new Promise<void>((r) => server.close(() => r()));
});
beforeEach(() => {
  upgradeStatus = undefined;
  runStatus = undefined;
});

class Sink extends Writable {
  chunks: Buffer[] = [];
  constructor(
    private readonly delayMs = 0,
    highWaterMark = 16 * 1024,
  ) {
    super({ highWaterMark });
  }
  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (e?: Error) => void) {
    this.chunks.push(chunk);
    if (this.delayMs) setTimeout(cb, this.delayMs);
    else cb();
  }
  text() {
    return Buffer.concat(this.chunks).toString('utf8');
  }
  bytes() {
    return Buffer.concat(this.chunks);
  }
}

const end = (e: Partial<Extract<StatusFrame, { kind: 'end' }>> = {}): Buffer =>
  encodeStatus({ kind: 'end', status: 'succeeded', exitCode: 0, outputBytes: 0, outputTruncated: false, ...e });

function follow(extra: Partial<FollowOptions> = {}) {
  const stdout = new Sink();
  const stderr = new Sink();
  const p = followRun({ client, runId: 'aaaaaaaaaaaa', follow: true, stdout, stderr, retry: { initialMs: 10, maxMs: 40, giveUpMs: 400 }, ...extra });
  return { p, stdout: (extra.stdout as Sink | undefined) ?? stdout, stderr };
}

/** An ordered output log served from any offset, as the server's hub does. */
function outputLog(chunks: Array<[1 | 2, string]>) {
  const log = chunks.map(([c, s]) => ({ channel: c, data: Buffer.from(s) }));
  const total = log.reduce((n, c) => n + c.data.length, 0);
  const from = (offset: number) => {
    const out: Buffer[] = [];
    let pos = 0;
    for (const c of log) {
      const endPos = pos + c.data.length;
      if (endPos > offset) out.push(encodeFrame(c.channel, c.data.subarray(Math.max(0, offset - pos))));
      pos = endPos;
    }
    return out;
  };
  return { total, from };
}

describe('followRun', () => {
  test('stdout and stderr go to their own streams; headers and from/follow are sent', async () => {
    let req: IncomingMessage | undefined;
    let q: URLSearchParams | undefined;
    handler = (ws, r, query) => {
      req = r;
      q = query;
      ws.send(encodeStatus({ kind: 'progress', message: 'waiting for pod: pulling image' }));
      ws.send(encodeFrame(Channel.stdout, 'out\n'));
      ws.send(encodeFrame(Channel.stderr, 'err\n'));
      ws.send(end({ status: 'failed', exitCode: 7, outputBytes: 8 }));
      ws.close(1000);
    };
    const { p, stdout, stderr } = follow();
    const r = await p;
    assert.equal(r.kind, 'end');
    assert.equal(r.kind === 'end' && r.end.exitCode, 7);
    assert.equal(r.received, 8);
    assert.equal(stdout.text(), 'out\n');
    assert.equal(stderr.text(), 'oddjob: waiting for pod: pulling image\nerr\n');
    assert.equal(req?.headers.authorization, 'Bearer t');
    assert.equal(req?.headers['x-oddjob-client'], 'cli/test');
    assert.equal(q?.get('from'), '0');
    assert.equal(q?.get('follow'), '1');
  });

  test('a dropped connection resumes from the bytes received: no gap, no duplicate', async () => {
    const log = outputLog([
      [1, 'line 1\n'],
      [2, 'warn 1\n'],
      [1, 'line 2\n'],
      [1, 'line 3\n'],
      [2, 'warn 2\n'],
      [1, 'line 4\n'],
    ]);
    const froms: number[] = [];
    handler = (ws, _r, q) => {
      const from = Number(q.get('from'));
      froms.push(from);
      ws.send(encodeStatus({ kind: 'progress', message: 'waiting for pod: starting' }));
      const frames = log.from(from);
      if (froms.length === 1) {
        for (const f of frames.slice(0, 3)) ws.send(f);
        // Abrupt: no close frame, as when a proxy or the server process dies.
        setTimeout(() => ws.terminate(), 30);
      } else if (froms.length === 2) {
        ws.close(CloseCode.goingAway, 'server shutting down'); // a graceful restart: also resumes
      } else {
        for (const f of frames) ws.send(f);
        ws.send(end({ outputBytes: log.total }));
        ws.close(1000);
      }
    };
    const { p, stdout, stderr } = follow();
    const r = await p;
    assert.equal(r.kind, 'end');
    assert.equal(r.received, log.total);
    assert.deepEqual(froms, [0, 21, 21]);
    assert.equal(stdout.text(), 'line 1\nline 2\nline 3\nline 4\n');
    // Progress repeated by every new connection is printed once.
    assert.equal(
      stderr.text(),
      'oddjob: waiting for pod: starting\nwarn 1\noddjob: stream interrupted (closed with code 1001: server shutting down); reconnecting...\noddjob: stream reconnected; resuming\nwarn 2\n',
    );
  });

  test('backpressure: a slow stdout pauses the socket and still gets every byte in order', async () => {
    const chunk = (i: number) => Buffer.alloc(4096, 97 + (i % 26));
    handler = (ws) => {
      for (let i = 0; i < 200; i++) ws.send(encodeFrame(Channel.stdout, chunk(i)));
      ws.send(end({ outputBytes: 200 * 4096 }));
      ws.close(1000);
    };
    let pauses = 0;
    const orig = WebSocket.prototype.pause;
    WebSocket.prototype.pause = function (this: WebSocket) {
      pauses++;
      return orig.call(this);
    };
    try {
      const slow = new Sink(1, 8192);
      const r = await follow({ stdout: slow }).p;
      assert.equal(r.kind, 'end');
      assert.ok(pauses > 0, 'the socket was paused while stdout drained');
      assert.deepEqual(slow.bytes(), Buffer.concat(Array.from({ length: 200 }, (_, i) => chunk(i))));
    } finally {
      WebSocket.prototype.pause = orig;
    }
  });

  test('binary output passes through untouched', async () => {
    const all = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    handler = (ws) => {
      ws.send(encodeFrame(Channel.stdout, all));
      ws.send(end({ outputBytes: 256 }));
      ws.close(1000);
    };
    const { p, stdout } = follow();
    await p;
    assert.deepEqual(stdout.bytes(), all);
  });

  test('an error frame ends the follow with its code and message', async () => {
    handler = (ws) => {
      ws.send(encodeStatus({ kind: 'error', code: 'forbidden', message: 'run aaaaaaaaaaaa belongs to bob' }));
      ws.close(CloseCode.policy);
    };
    await assert.rejects(follow().p, (e: unknown) => e instanceof StreamError && e.code === 'forbidden' && /belongs to bob/.test(e.message));
  });

  test('close 4404 is "not found", not a reason to retry', async () => {
    let n = 0;
    handler = (ws) => {
      n++;
      ws.close(CloseCode.notFound, 'run aaaaaaaaaaaa not found');
    };
    await assert.rejects(follow().p, (e: unknown) => e instanceof StreamError && e.code === 'not_found');
    assert.equal(n, 1);
  });

  test('a 4xx on the upgrade is final and carries the API error', async () => {
    upgradeStatus = 403;
    await assert.rejects(follow().p, (e: unknown) => e instanceof ApiError && e.status === 403 && /belongs to bob/.test(e.message));
  });

  test('gives up after the retry window with a message that says what to do', async () => {
    upgradeStatus = 503;
    const { p, stderr } = follow();
    await assert.rejects(p, (e: unknown) => e instanceof StreamError && e.code === 'unreachable' && /logs aaaaaaaaaaaa -f/.test(e.hint ?? ''));
    assert.match(stderr.text(), /^oddjob: stream interrupted \(the server is starting\); reconnecting...\n$/);
  });

  test('a run that is still alive is worth waiting for: past the window it keeps trying, says so, and resumes', async () => {
    upgradeStatus = 503;
    let checks = 0;
    runStatus = () => {
      // The outage lasts two give-up windows; then the stream comes back with the end.
      if (++checks === 2) {
        upgradeStatus = undefined;
        handler = (ws) => ws.send(end({ exitCode: 0 }));
      }
      return 'running';
    };
    const { p, stderr } = follow();
    const r = await p;
    assert.equal(r.kind, 'end');
    assert.equal(checks, 2);
    assert.match(stderr.text(), /^oddjob: run aaaaaaaaaaaa is still running; still trying to get its output back \(lost \d+s ago: the server is starting\)$/m);
    assert.match(stderr.text(), /^oddjob: stream reconnected; resuming$/m);
  });

  test('on a terminal, start-up progress is one rewritten line with the elapsed time, cleared before the output', async () => {
    handler = (ws) => {
      ws.send(encodeStatus({ kind: 'progress', message: 'pulling image demo:1' }));
      ws.send(encodeStatus({ kind: 'progress', message: 'creating the container' }));
      ws.send(encodeStatus({ kind: 'running', podName: 'p' }));
      ws.send(encodeFrame(Channel.stdout, 'hi\n'));
      ws.send(end({ outputBytes: 3 }));
    };
    const stderr = Object.assign(new Sink(), { isTTY: true });
    const { p, stdout } = follow({ stderr });
    await p;
    assert.equal(stdout.text(), 'hi\n');
    assert.match(
      stderr.text(),
      // eslint-disable-next-line no-control-regex -- the terminal control sequences are what is tested
      /^\r\x1b\[2Koddjob: pulling image demo:1 \(\d+s\)\r\x1b\[2Koddjob: creating the container \(\d+s\)(\r\x1b\[2Koddjob: creating the container \(\d+s\))*\r\x1b\[2K$/,
    );
  });

  test('once the command runs, a notice about the output (a gap) is shown where it comes, between the output', async () => {
    const stderr = new Sink();
    const stdout = new Sink();
    handler = (ws) => {
      ws.send(encodeStatus({ kind: 'running', podName: 'p' }));
      ws.send(encodeFrame(1, Buffer.from('before\n')));
      ws.send(encodeStatus({ kind: 'progress', message: 'OUTPUT LOST: an unknown amount of output is missing here (rotated)' }));
      ws.send(encodeFrame(1, Buffer.from('after\n')));
      ws.send(end());
    };
    await follow({ stdout, stderr }).p;
    assert.equal(stdout.text(), 'before\nafter\n');
    assert.equal(stderr.text(), 'oddjob: OUTPUT LOST: an unknown amount of output is missing here (rotated)\n');
  });

  test('a run still starting past the threshold gets a notice naming where it is stuck', async () => {
    const stderr = new Sink();
    handler = (ws) => {
      ws.send(encodeStatus({ kind: 'progress', message: 'pulling image demo:1' }));
      // Ends once the notice is out (or after 2 s, so a CLI without the notice fails instead of hanging).
      const give = Date.now() + 2000;
      const t = setInterval(() => {
        if (!stderr.text().includes('still starting') && Date.now() < give) return;
        clearInterval(t);
        ws.send(end());
      }, 5);
    };
    await follow({ stderr, slowStartMs: 30 }).p;
    assert.equal(stderr.text(), 'oddjob: pulling image demo:1\noddjob: still starting after 0 s: pulling image demo:1\n');
  });

  test('a run that ended while the stream was lost: give up, pointing at its stored output', async () => {
    upgradeStatus = 503;
    runStatus = () => 'succeeded';
    await assert.rejects(
      follow().p,
      (e: unknown) => e instanceof StreamError && /the run has ended \(succeeded\)/.test(e.message) && e.hint === 'its output: oddjob logs aaaaaaaaaaaa',
    );
  });

  test('follow=0: a normal close without an end frame means "printed all there is"', async () => {
    handler = (ws, _r, q) => {
      assert.equal(q.get('follow'), '0');
      ws.send(encodeFrame(Channel.stdout, 'so far\n'));
      ws.close(1000);
    };
    const { p, stdout } = follow({ follow: false });
    assert.deepEqual(await p, { kind: 'closed', received: 7 });
    assert.equal(stdout.text(), 'so far\n');
  });

  test('abort detaches without waiting for the run', async () => {
    handler = (ws) => ws.send(encodeFrame(Channel.stdout, 'working\n'));
    const ac = new AbortController();
    const { p, stdout } = follow({ signal: ac.signal });
    while (!stdout.text()) await new Promise((r) => setTimeout(r, 5));
    ac.abort();
    assert.deepEqual(await p, { kind: 'detached', received: 8 });
  });

  test('interactive: stdin waits for the running container, EOF is an empty frame, the size follows', async () => {
    const got: Array<ReturnType<typeof decodeFrame>> = [];
    let serverWs: WebSocket | undefined;
    handler = (ws) => {
      serverWs = ws;
      ws.on('message', (m: Buffer) => {
        got.push(decodeFrame(m));
        if (got.some((f) => f.channel === 0 && f.data.length === 0)) {
          ws.send(end({ status: 'failed', exitCode: 3 }));
          ws.close(1000);
        }
      });
      ws.send(encodeStatus({ kind: 'progress', message: 'waiting for pod: creating' }));
    };
    const stdin = new PassThrough();
    const stdout = Object.assign(new Sink(), { columns: 120, rows: 40, isTTY: true });
    const { p } = follow({ stdout, interactive: { stdin, tty: true, stdinOpen: true } });
    stdin.write('hello\n');
    stdin.end('exit\n');
    await new Promise((r) => setTimeout(r, 100));
    assert.equal(got.length, 0, 'nothing is sent before the container runs');
    serverWs!.send(encodeStatus({ kind: 'running', podName: 'api-oddjob-x' }));
    const r = await p;
    assert.equal(r.kind === 'end' && r.end.exitCode, 3);
    assert.deepEqual(got[0], { channel: 4, resize: { cols: 120, rows: 40 } });
    const input = Buffer.concat(got.filter((f) => f.channel === 0).map((f) => (f as { data: Buffer }).data));
    assert.equal(input.toString(), 'hello\nexit\n');
    assert.deepEqual(got.at(-1), { channel: 0, data: Buffer.alloc(0) });
  });
});
