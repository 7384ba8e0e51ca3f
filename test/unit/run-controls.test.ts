// Input through a replica that does not own the run (runs/control.ts over
// store/controls.ts), on both engines: bytes arrive whole and in order with the terminal
// sizes between them; a sender that never stops is held to the bounds, whatever it sends;
// input for a session another replica held is refused with the reason.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { describe, test } from 'node:test';
import pino from 'pino';
import { LOCAL_HIGH_WATER, RemoteInput, STORE_HIGH_WATER, feedStoredInput } from '../../server/runs/control.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('controls');
const logger = pino({ level: 'silent' });

for (const engine of ENGINES) {
  describe(`input through another replica (${engine})`, () => {
    test('stdin arrives byte-exact and in order, sizes between the right bytes; the store stays under its bound against a slow reader', async () => {
      const owner = await stores.open(engine);
      const viewerSide = await stores.reopen(owner.target);
      await owner.leases.claim('run1', 'A', 600_000);
      const got: Buffer[] = [];
      const events: string[] = [];
      let gotBytes = 0;
      // A slow program: each write fills its buffer, and it reads one when the test says so.
      let release: (() => void) | undefined;
      const target = {
        write(data: Buffer) {
          got.push(data);
          gotBytes += data.length;
          return false;
        },
        stdinDrained: () => new Promise<void>((r) => (release = r)),
        resize(size: { cols: number; rows: number }) {
          events.push(`${gotBytes}:${size.cols}x${size.rows}`);
        },
      };
      const stop = feedStoredInput({ runId: 'run1', owner: 'A', controls: owner.controls, wakeups: owner.wakeups, target, logger, pollMs: 20 });
      let closed: string | undefined;
      const input = new RemoteInput({
        runId: 'run1',
        controls: viewerSide.controls,
        wakeups: viewerSide.wakeups,
        logger,
        onClosed: (m) => (closed = m),
        pollMs: 20,
      });
      const total = 16 << 20;
      const sent = randomBytes(total);
      const expectedSizes: string[] = [];
      let maxBacklog = 0;
      // The reader takes one write whenever the test looks, like a program that reads slowly.
      const reader = setInterval(() => {
        release?.();
        release = undefined;
      }, 1);
      try {
        for (let at = 0, i = 0; at < total; i++) {
          const n = Math.min(total - at, 1 + ((i * 7919) % (48 << 10)));
          const ok = input.write(sent.subarray(at, at + n));
          at += n;
          if (i % 97 === 0) {
            input.resize({ cols: 10 + (i % 200), rows: 5 });
            expectedSizes.push(`${at}:${10 + (i % 200)}x5`);
          }
          if (!ok) {
            maxBacklog = Math.max(maxBacklog, await owner.controls.backlog('run1'));
            await input.drained();
          }
        }
        while (gotBytes < total && closed === undefined) {
          maxBacklog = Math.max(maxBacklog, await owner.controls.backlog('run1'));
          await new Promise((r) => setTimeout(r, 10));
        }
        // Rows are deleted once handed on: the last batch's delete follows its writes.
        while ((await owner.controls.backlog('run1')) > 0) await new Promise((r) => setTimeout(r, 10));
      } finally {
        clearInterval(reader);
        stop();
        input.close();
      }
      assert.equal(closed, undefined);
      assert.ok(Buffer.concat(got).equals(sent), 'byte-exact, in order');
      assert.deepEqual(events, expectedSizes, 'each size reaches the run after the bytes sent before it, before the bytes after it');
      assert.ok(maxBacklog <= STORE_HIGH_WATER + (64 << 10), `stored backlog peaked at ${maxBacklog} bytes`);
      assert.ok(LOCAL_HIGH_WATER < STORE_HIGH_WATER);
    });

    test('input for a session another replica held is refused with the reason; a cancel request is kept once', async () => {
      const store = await stores.open(engine);
      await store.leases.claim('run2', 'A', 600_000);
      await store.controls.holdSession('run2', 'A');
      assert.equal('owner' in (await store.controls.sendInput('run2', 0, Buffer.from('x'))), true);
      // A dies; B adopts the run (A's lease expired).
      await store.leases.claim('run2', 'A', 1);
      await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(await store.controls.sendInput('run2', 0, Buffer.from('y')), { kind: 'session-gone', sessionOwner: 'A' });
      assert.equal(await store.leases.claim('run2', 'B', 600_000), true);
      await store.controls.holdSession('run2', 'B');
      assert.deepEqual(await store.controls.sendInput('run2', 0, Buffer.from('z')), { kind: 'session-gone', sessionOwner: 'A' });
      assert.deepEqual(await store.controls.pendingInput('run2', 'B'), [], "A's undelivered input is dropped, not fed to B's attach");
      let told: string | undefined;
      const input = new RemoteInput({ runId: 'run2', controls: store.controls, wakeups: store.wakeups, logger, onClosed: (m) => (told = m), pollMs: 10 });
      input.write(Buffer.from('typed'));
      while (told === undefined) await new Promise((r) => setTimeout(r, 10));
      assert.match(told, /input can no longer reach run run2: the oddjob replica that held its interactive session \(A\) stopped/);
      assert.equal(await store.controls.sendInput('nobody', 0, Buffer.from('x')).then((r) => ('kind' in r ? r.kind : 'sent')), 'no-owner');

      await store.controls.requestCancel('run2', { identity: { login: 'bob', teams: [] }, client: { kind: 'cli' } });
      await store.controls.requestCancel('run2', { identity: { login: 'carol', teams: [] }, client: { kind: 'cli' } });
      assert.deepEqual(await store.controls.cancelRequest('run2'), { identity: { login: 'bob', teams: [] }, client: { kind: 'cli' } }, 'the first stands');
      await store.controls.forget('run2');
      assert.equal(await store.controls.cancelRequest('run2'), undefined);
      assert.equal(await store.controls.sessionHolder('run2'), undefined);
    });
  });
}
