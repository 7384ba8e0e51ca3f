// A viewer that stops reading is cut loose at a bound instead of growing the server's memory.
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { describe, test } from 'node:test';
import WebSocket, { WebSocketServer } from 'ws';
import { CloseCode, decodeFrame } from '../../protocol/frames.js';
import { MAX_QUEUED_BYTES, SocketViewer } from '../../server/ws/viewer.js';
import { OutputHub } from '../../server/runs/hub.js';
import { testStores } from '../support/stores.js';

const stores = testStores('ws-viewer');

/** A hub whose run has `mib` MiB of stored output (lines of 1 KiB). */
async function storedRun(mib: number) {
  const store = (await stores.open('sqlite', { maxOutputBytesPerRun: 64 << 20 })).output;
  const hub = await OutputHub.open('r1', store);
  const line = Buffer.alloc(1024, 0x61);
  const writes: Promise<void>[] = [];
  for (let i = 0; i < mib * 1024; i += 64) writes.push(hub.appendMany(Array.from({ length: 64 }, () => ({ channel: 1 as const, data: line }))));
  await Promise.all(writes);
  return hub;
}

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
      const viewer = new SocketViewer(server); // 4 MiB sent at once: past the socket's high-water mark, within the bound
      let bytes = 0;
      client.on('message', (m: Buffer) => (bytes += m.length - 1));
      const closed = new Promise<number>((r) => client.once('close', (code) => r(code)));
      const n = MAX_QUEUED_BYTES / (64 * 1024);
      for (let i = 0; i < n; i++) viewer.output(2, Buffer.alloc(64 * 1024));
      viewer.close();
      assert.equal(await closed, CloseCode.normal);
      assert.equal(bytes, n * 64 * 1024);
    } finally {
      client.terminate();
      wss.close();
    }
  });

  test('a replay is paced by the socket: 24 MiB of stored output reach a reading viewer whole, in order, then live output', async () => {
    const { wss, client, server } = await pair();
    try {
      const hub = await storedRun(24);
      let bytes = 0;
      const frames: number[] = [];
      client.on('message', (m: Buffer) => {
        frames.push(m[0]!);
        if (m[0] === 1) bytes += m.length - 1;
      });
      const viewer = new SocketViewer(server);
      hub.attach(viewer, 0, true);
      void hub.append(1, Buffer.from('live')); // appended mid-replay: the replay reaches it (store or memory)
      await new Promise<void>((r) => {
        const t = setInterval(() => bytes >= (24 << 20) + 4 && (clearInterval(t), r()), 20);
      });
      assert.equal(bytes, (24 << 20) + 4, 'every stored byte, once, and the live chunk');
      assert.equal(server.readyState, WebSocket.OPEN, 'a reading viewer is never cut loose by a replay');
    } finally {
      client.terminate();
      wss.close();
    }
  });

  test('a viewer that never reads is handed only about one socket worth of a 24 MiB replay', async () => {
    const { wss, client, server } = await pair();
    try {
      const hub = await storedRun(24);
      (client as unknown as { _socket: import('node:net').Socket })._socket.pause();
      let handed = 0;
      const viewer = new SocketViewer(server);
      const counting = Object.assign(Object.create(viewer) as SocketViewer, {
        output: (ch: 1 | 2, d: Buffer) => ((handed += d.length), viewer.output(ch, d)),
      });
      hub.attach(counting, 0, true);
      await new Promise((r) => setTimeout(r, 300));
      assert.ok(handed < 8 << 20, `${(handed / 1048576).toFixed(1)} MiB of the replay read into memory for a viewer that reads nothing`);
      assert.equal(server.readyState, WebSocket.OPEN, 'it is not cut: it just gets no more until it reads');
    } finally {
      client.terminate();
      wss.close();
    }
  });
});
