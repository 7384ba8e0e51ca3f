// A viewer that stops reading is cut loose at a bound instead of growing the server's memory.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode, decodeFrame } from '../../protocol/frames.js';
import { SocketViewer } from '../../server/ws/viewer.js';

async function pair() {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise((r) => wss.once('listening', r));
  const serverSide = new Promise<WebSocket>((r) => wss.once('connection', r));
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  await new Promise((r) => client.once('open', r));
  return { wss, client, server: await serverSide };
}

describe('SocketViewer', () => {
  test('a stalled viewer is closed with tooSlow once its queue passes the bound; what was sent arrives whole and in order', async () => {
    const { wss, client, server } = await pair();
    try {
      const viewer = new SocketViewer(server, 8 << 20);
      // The client stops reading: the kernel buffers fill, then ws's, then our queue.
      (client as unknown as { _socket: import('node:net').Socket })._socket.pause();
      const chunk = Buffer.alloc(256 * 1024, 0x61);
      let sent = 0;
      for (let i = 0; i < 200 && server.readyState === WebSocket.OPEN; i++) {
        viewer.output(1, chunk);
        sent += chunk.length;
      }
      assert.equal(server.readyState, WebSocket.CLOSING, 'the viewer was cut before 50 MiB were queued');
      assert.ok(sent < 50 << 20);
      const received: number[] = [];
      const closed = new Promise<number>((r) => client.once('close', (code) => r(code)));
      client.on('message', (m: Buffer) => {
        const f = decodeFrame(m);
        assert.equal(f.channel, 1);
        received.push((f as { data: Buffer }).data.length);
      });
      (client as unknown as { _socket: import('node:net').Socket })._socket.resume();
      assert.equal(await closed, CloseCode.tooSlow);
      assert.ok(received.length > 0 && received.every((n) => n === chunk.length), 'only whole frames, none cut');
      // Writes after the cut are dropped, not queued.
      viewer.output(1, chunk);
    } finally {
      client.terminate();
      wss.close();
    }
  });

  test('a viewer that keeps reading gets everything through the queue, then a normal close', async () => {
    const { wss, client, server } = await pair();
    try {
      const viewer = new SocketViewer(server); // 16 MiB sent at once: past the socket's high-water mark, within the bound
      let bytes = 0;
      client.on('message', (m: Buffer) => (bytes += m.length - 1));
      const closed = new Promise<number>((r) => client.once('close', (code) => r(code)));
      for (let i = 0; i < 256; i++) viewer.output(2, Buffer.alloc(64 * 1024));
      viewer.close();
      assert.equal(await closed, CloseCode.normal);
      assert.equal(bytes, 256 * 64 * 1024);
    } finally {
      client.terminate();
      wss.close();
    }
  });
});
