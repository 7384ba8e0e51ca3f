// OutputHub on both engines: every chunk is sent and stored once; a viewer joining at
// byte N gets no gap and no duplicate, also while writes to the store are in flight.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { StatusFrame } from '../../protocol/frames.js';
import { OutputHub } from '../../server/runs/hub.js';
import type { Viewer } from '../../server/services.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('hub');

function viewer() {
  const got: string[] = [];
  const frames: StatusFrame[] = [];
  let closed!: () => void;
  const done = new Promise<void>((r) => (closed = r));
  const v: Viewer & { got: string[]; frames: StatusFrame[]; done: Promise<void>; text(): string } = {
    got,
    frames,
    done,
    text: () => got.map((g) => g.slice(2)).join(''),
    output: (ch: 1 | 2, d: Buffer) => got.push(`${ch}:${d.toString()}`),
    status: (f) => frames.push(f),
    close: () => closed(),
  };
  return v;
}
/** Lets pending replays (store queries) run. */
const settleReplays = () => new Promise((r) => setTimeout(r, 50));
/** Waits for what the viewers must eventually receive; a guard against hanging, not a timing assertion. */
const until = async (cond: () => boolean) => {
  const give = Date.now() + 60_000;
  while (!cond()) {
    if (Date.now() > give) throw new Error('the viewer never received what it should have');
    await new Promise((r) => setTimeout(r, 5));
  }
};

for (const engine of ENGINES) {
  describe(`OutputHub (${engine})`, () => {
    test('stores once and sends each chunk once to live viewers; a late viewer replays from its offset', async () => {
      const store = (await stores.open(engine)).output;
      const hub = await OutputHub.open('r1', store);
      const early = viewer();
      hub.attach(early, 0, true);
      await settleReplays();
      await hub.appendMany([
        { channel: 1, data: Buffer.from('hello ') },
        { channel: 2, data: Buffer.from('oops') },
        { channel: 1, data: Buffer.alloc(0) },
      ]);
      const late = viewer();
      hub.attach(late, 3, true);
      await until(() => late.got.length === 2);
      await hub.append(1, Buffer.from('world'));
      assert.deepEqual(early.got, ['1:hello ', '2:oops', '1:world']);
      assert.deepEqual(late.got, ['1:lo ', '2:oops', '1:world']);
      assert.equal(hub.total, 15);
      assert.deepEqual(await hub.storedPerChannel(), { 1: 11, 2: 4 });
    });

    test('viewers that join while writes are in flight get every byte once, in order', async () => {
      const store = (await stores.open(engine)).output;
      const hub = await OutputHub.open('r2', store);
      const expected: string[] = [];
      const viewers: ReturnType<typeof viewer>[] = [];
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 300; i++) {
        const line = `line ${i};`;
        expected.push(line);
        writes.push(hub.append((i % 3 === 0 ? 2 : 1) as 1 | 2, Buffer.from(line)));
        // A new viewer every few chunks, from a varying offset, without waiting for the store.
        if (i % 7 === 0) {
          const v = viewer();
          const from = Math.floor((hub.total * (i % 5)) / 5);
          viewers.push(Object.assign(v, { from }));
          hub.attach(v, from, true);
        }
        if (i % 10 === 0) await new Promise((r) => setImmediate(r));
      }
      await Promise.all(writes);
      const all = expected.join('');
      for (const v of viewers) {
        const from = (v as unknown as { from: number }).from;
        await until(() => v.text().length >= all.length - from);
        assert.equal(v.text(), all.slice(from), `viewer from ${from}`);
      }
      hub.end({ kind: 'end', status: 'succeeded', exitCode: 0, outputBytes: hub.total, outputTruncated: false });
    });

    test('a gap is told to live viewers when it happens and marked where it happened in every replay', async () => {
      const store = (await stores.open(engine)).output;
      const hub = await OutputHub.open('r4', store);
      const seen = () => {
        const got: string[] = [];
        return {
          got,
          output: (ch: 1 | 2, d: Buffer) => void got.push(`${ch}:${d.toString()}`),
          status: (f: { kind: string; message?: string }) => void (f.kind === 'progress' && got.push(`status:${f.message}`)),
          close: () => undefined,
        };
      };
      const live = seen();
      hub.attach(live, 0, true);
      await until(() => live.got.length === 0);
      await new Promise((r) => setImmediate(r));
      await hub.append(1, Buffer.from('before '));
      hub.gap(-1, 'rotated away');
      await hub.append(1, Buffer.from('after'));
      await hub.settle();
      const notice = 'status:OUTPUT LOST: an unknown amount of output is missing here (rotated away)';
      assert.deepEqual(live.got, ['1:before ', notice, '1:after']);
      const replay = seen();
      hub.attach(replay, 0, false);
      await until(() => replay.got.length >= 3);
      assert.deepEqual(replay.got, ['1:before ', notice, '1:after']);
      const fromMiddle = seen();
      hub.attach(fromMiddle, 3, false);
      await until(() => fromMiddle.got.length >= 3);
      assert.deepEqual(fromMiddle.got, ['1:ore ', notice, '1:after']);
      const afterGap = seen();
      hub.attach(afterGap, 9, false);
      await until(() => afterGap.got.length >= 1);
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(afterGap.got, ['1:ter'], 'a viewer past the gap is not told again');
    });

    test('when the store cannot write, live viewers still get the output and the error reaches the caller', async () => {
      const s = await stores.open(engine);
      await s.output.append('r3', 1, Buffer.from('kept '));
      const readOnly = (await import('../../server/store/output.js')).OutputStore;
      // Retried briefly (a database restart), then given up.
      const hub = await OutputHub.open('r3', new readOnly(await stores.connect(s.target, { readonly: true })), { retryForMs: 300 });
      const v = viewer();
      hub.attach(v, 0, true);
      await until(() => v.got.length === 1);
      await assert.rejects(hub.appendMany([{ channel: 1, data: Buffer.from('live only') }]));
      assert.deepEqual(v.got, ['1:kept ', '1:live only']);
      assert.equal(hub.total, 14, 'offsets still count what was produced');
    });

    test('a write that fails while the database restarts is retried: stored whole, at the same offsets', async () => {
      const s = await stores.open(engine);
      const flaky = Object.create(s.output) as typeof s.output;
      let failures = 2;
      flaky.appendMany = (runId, chunks) => (failures-- > 0 ? Promise.reject(new Error('connection terminated')) : s.output.appendMany(runId, chunks));
      const hub = await OutputHub.open('r5', flaky);
      await hub.append(1, Buffer.from('first '));
      await hub.append(2, Buffer.from('second'));
      const v = viewer();
      await new Promise<void>((replayed) => hub.attach(v, 0, false, replayed));
      assert.equal(v.text(), 'first second');
      assert.deepEqual(await s.output.size('r5'), { bytes: 12, truncated: false });
    });

    test('past the storage limit, a viewer joining later is told what it missed, then gets live output only', async () => {
      const store = (await stores.open(engine, { maxOutputBytesPerRun: 4 })).output;
      const hub = await OutputHub.open('r4', store);
      await hub.append(1, Buffer.from('abcdefgh')); // 4 kept, 4 only streamed
      const v = viewer();
      hub.attach(v, 0, true);
      await until(() => v.frames.length > 0);
      await hub.append(1, Buffer.from('live'));
      assert.deepEqual(v.got, ['1:abcd', '1:live']);
      const notices = v.frames.filter((f) => f.kind === 'progress');
      assert.equal(notices.length, 1);
      assert.match((notices[0] as { message: string }).message, /^4 bytes of output were only streamed live/);
    });
  });
}
