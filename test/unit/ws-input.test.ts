// What a viewer sends is checked frame by frame (server/ws/input.ts), over a real
// WebSocket pair on loopback: each violation closes that socket with the code that
// says why; stdin is passed on, held in order before the attach, and pushed back on
// (the socket paused) while the run's input backlog is full.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { Channel, encodeFrame, encodeResize } from '../../protocol/frames.js';
import { createLogger } from '../../server/logger.js';
import type { ViewerHandle } from '../../server/services.js';
import { EARLY_STDIN_BYTES, ViewerInput } from '../../server/ws/input.js';

async function pair() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1', autoPong: false, maxPayload: 64 * 1024 });
  await new Promise((r) => wss.once('listening', r));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  client.on('error', () => undefined);
  await new Promise((r) => client.once('open', r));
  const server = await serverSide;
  server.on('error', () => undefined);
  const closed = new Promise<{ code: number; reason: string }>((r) => client.once('close', (code, reason) => r({ code, reason: reason.toString() })));
  // ws 8's close() leaves open connections alone: end both sides too, or the test never exits.
  const close = () => (client.terminate(), server.terminate(), wss.close());
  return { wss: { close }, client, server, closed };
}

function fakeHandle(accepts: ViewerHandle['accepts'], opts: { full?: () => boolean } = {}) {
  const stdin: Buffer[] = [];
  const sizes: Array<{ cols: number; rows: number }> = [];
  let drain: (() => void) | undefined;
  const handle: ViewerHandle = {
    accepts,
    stdin: (d) => (stdin.push(Buffer.from(d)), !(opts.full?.() ?? false)),
    stdinDrained: () => new Promise<void>((r) => (drain = r)),
    resize: (s) => void sizes.push(s),
    detach: () => undefined,
  };
  return { handle, stdin, sizes, drain: () => drain?.() };
}

const logger = createLogger('fatal');
const who = { run: 'r1', user: 'alice' };

describe('ViewerInput: protocol violations close that socket with the right code', () => {
  const cases: Array<[string, (c: WebSocket) => void, number]> = [
    ['a text frame', (c) => c.send('hello'), 1003],
    ['an empty binary frame', (c) => c.send(Buffer.alloc(0)), 1008],
    ['channel 1 (stdout) from a viewer', (c) => c.send(encodeFrame(Channel.stdout, 'x')), 1008],
    ['channel 3 (status) from a viewer', (c) => c.send(encodeFrame(Channel.status, '{}')), 1008],
    ['channel 200', (c) => c.send(Buffer.from([200, 1])), 1008],
    ['stdin where the run takes none from this viewer', (c) => c.send(encodeFrame(Channel.stdin, 'x')), 1008],
    ['a malformed resize frame', (c) => c.send(encodeFrame(Channel.resize, '{"cols":')), 1008],
    ['a resize out of range', (c) => c.send(encodeFrame(Channel.resize, '{"cols":0,"rows":5}')), 1008],
    [
      'a ping flood',
      (c) => {
        for (let i = 0; i < 50; i++) c.ping();
      },
      1008,
    ],
  ];
  for (const [what, send, code] of cases) {
    test(`${what} → ${code}`, async () => {
      const { wss, client, server, closed } = await pair();
      try {
        const input = new ViewerInput(server, who, logger);
        server.on('message', (d: Buffer, bin) => input.receive(d, bin));
        input.attached(fakeHandle({ stdin: false, resize: true }).handle);
        send(client);
        const got = await closed;
        assert.equal(got.code, code, `closed with ${got.code} (${got.reason})`);
        assert.ok(got.reason.length > 0, 'the close says why');
      } finally {
        wss.close();
      }
    });
  }
});

describe('ViewerInput: stdin and resize', () => {
  test('stdin sent before the attach is held, in order, and passed on once attached', async () => {
    const { wss, client, server } = await pair();
    try {
      const input = new ViewerInput(server, who, logger);
      const got = new Promise<void>((r) => server.on('message', (d: Buffer, bin) => (input.receive(d, bin), d.subarray(1).toString() === 'c' && r())));
      for (const s of ['a', 'b', 'c']) client.send(encodeFrame(Channel.stdin, s));
      await got;
      const h = fakeHandle({ stdin: true, resize: false });
      input.attached(h.handle);
      assert.equal(Buffer.concat(h.stdin).toString(), 'abc');
    } finally {
      wss.close();
    }
  });

  test('early stdin past the bound pauses the socket until the attach is up', async () => {
    const { wss, client, server } = await pair();
    try {
      const input = new ViewerInput(server, who, logger);
      let n = 0;
      const chunk = Buffer.alloc(32 * 1024, 1);
      const want = Math.ceil(EARLY_STDIN_BYTES / chunk.length) + 1;
      const enough = new Promise<void>((r) => server.on('message', (d: Buffer, bin) => (input.receive(d, bin), ++n === want && r())));
      for (let i = 0; i < want; i++) client.send(encodeFrame(Channel.stdin, chunk));
      await enough;
      assert.equal(server.isPaused, true, 'the socket is paused past the early-stdin bound');
      const h = fakeHandle({ stdin: true, resize: false });
      input.attached(h.handle);
      assert.equal(server.isPaused, false, 'reading resumes once the input has somewhere to go');
      assert.equal(Buffer.concat(h.stdin).length, want * chunk.length);
    } finally {
      wss.close();
    }
  });

  test('a full input backlog pauses the socket until it drains; nothing is lost', async () => {
    const { wss, client, server } = await pair();
    try {
      const input = new ViewerInput(server, who, logger);
      let full = true;
      const h = fakeHandle({ stdin: true, resize: false }, { full: () => full });
      input.attached(h.handle);
      const first = new Promise<void>((r) => server.on('message', (d: Buffer, bin) => (input.receive(d, bin), r())));
      client.send(encodeFrame(Channel.stdin, 'one'));
      await first;
      assert.equal(server.isPaused, true, 'paused while the backlog is full');
      full = false;
      h.drain();
      await new Promise((r) => setImmediate(r));
      assert.equal(server.isPaused, false, 'resumed once drained');
      client.send(encodeFrame(Channel.stdin, 'two'));
      await new Promise((r) => setTimeout(r, 50));
      assert.equal(Buffer.concat(h.stdin).toString(), 'onetwo');
      assert.equal(client.readyState, WebSocket.OPEN);
    } finally {
      wss.close();
    }
  });

  test('a resize flood collapses to the latest size; a viewer without a TTY gets none applied', async () => {
    const { wss, client, server } = await pair();
    try {
      const input = new ViewerInput(server, who, logger);
      const h = fakeHandle({ stdin: false, resize: true });
      input.attached(h.handle);
      let n = 0;
      const all = new Promise<void>((r) => server.on('message', (d: Buffer, bin) => (input.receive(d, bin), ++n === 200 && r())));
      for (let i = 1; i <= 200; i++) client.send(encodeResize({ cols: i, rows: 24 }));
      await all;
      await new Promise((r) => setTimeout(r, 120));
      assert.ok(h.sizes.length >= 1 && h.sizes.length <= 5, `${h.sizes.length} resizes applied for 200 sent`);
      assert.deepEqual(h.sizes.at(-1), { cols: 200, rows: 24 }, 'the last size wins');
      assert.equal(client.readyState, WebSocket.OPEN, 'valid resizes are not a violation');
    } finally {
      wss.close();
    }
  });
});
