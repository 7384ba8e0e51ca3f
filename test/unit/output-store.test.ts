// Run output storage on both engines (a real SQLite file, a real PostgreSQL server): ordered replay from any offset, the per-run limit, append rates.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import { describe, test } from 'node:test';
import { type OutputChunk, OutputFencedError, OutputStore } from '../../server/store/output.js';
import { RunLeases } from '../../server/store/leases.js';
import type { Engine } from '../../server/store/schema.js';
import { ENGINES, testStores } from '../support/stores.js';

const stores = testStores('output');

async function freshOn(engine: Engine, maxBytesPerRun?: number) {
  const s = await stores.open(engine, maxBytesPerRun === undefined ? {} : { maxOutputBytesPerRun: maxBytesPerRun });
  return { store: s.output, target: s.target, conn: s.connection };
}

async function all<T>(it: AsyncIterable<T> | Iterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

/** Each byte of the stored stream with its channel, so replays can be compared byte by byte. */
async function flatten(chunks: AsyncIterable<OutputChunk> | Iterable<OutputChunk>): Promise<{ bytes: Buffer; channels: number[] }> {
  const list = await all(chunks);
  return { bytes: Buffer.concat(list.map((c) => c.data)), channels: list.flatMap((c) => Array<number>(c.data.length).fill(c.channel)) };
}

/** Deterministic chunks of varied sizes (including empty), alternating irregularly between stdout and stderr. */
function sampleChunks(count: number, seed = 1): OutputChunk[] {
  let s = seed;
  const rnd = () => ((s = (s * 1103515245 + 12345) % 2 ** 31), s / 2 ** 31);
  return Array.from({ length: count }, (_, i) => ({
    channel: (rnd() < 0.35 ? 2 : 1) as 1 | 2,
    data: i % 17 === 5 ? Buffer.alloc(0) : Buffer.from(Array.from({ length: 1 + Math.floor(rnd() * 300) }, () => Math.floor(rnd() * 256))),
  }));
}

const RUN = 'abcdef123456';

for (const engine of ENGINES) {
  describe(`OutputStore (${engine})`, () => {
    const fresh = (max?: number) => freshOn(engine, max);

    test('replay from any offset equals the slice of the concatenation, with channels, across both channels', async () => {
      const { store } = await fresh();
      const chunks = sampleChunks(200);
      for (const c of chunks) await store.append(RUN, c.channel, c.data);
      const whole = await flatten(chunks.filter((c) => c.data.length > 0));
      assert.deepEqual(await store.size(RUN), { bytes: whole.bytes.length, truncated: false });

      const boundaries: number[] = [];
      let at = 0;
      for (const c of chunks) boundaries.push((at += c.data.length));
      const offsets = new Set([0, 1, whole.bytes.length - 1, whole.bytes.length, whole.bytes.length + 10]);
      for (const b of boundaries.slice(0, 40)) [b - 1, b, b + 1].forEach((o) => o >= 0 && offsets.add(o));
      for (let i = 0; i < 50; i++) offsets.add(Math.floor((i * 7919) % (whole.bytes.length + 1)));

      for (const from of offsets) {
        const got = await flatten(store.read(RUN, from));
        assert.ok(got.bytes.equals(whole.bytes.subarray(from)), `bytes from ${from}`);
        assert.deepEqual(got.channels, whole.channels.slice(from), `channels from ${from}`);
      }
      // No empty chunks are replayed, and whole chunks keep their boundaries.
      const replay = await all(store.read(RUN, 0));
      assert.ok(replay.every((c) => c.data.length > 0));
      assert.equal(replay.length, chunks.filter((c) => c.data.length > 0).length);
      assert.deepEqual(await store.perChannel(RUN), {
        1: chunks.filter((c) => c.channel === 1).reduce((n, c) => n + c.data.length, 0),
        2: chunks.filter((c) => c.channel === 2).reduce((n, c) => n + c.data.length, 0),
      });
    });

    test('the limit cuts the crossing chunk and drops the rest, and replay matches', async () => {
      const { store } = await fresh(1000);
      const results = [
        await store.append(RUN, 1, Buffer.alloc(600, 'a')),
        await store.append(RUN, 2, Buffer.alloc(300, 'b')),
        await store.append(RUN, 1, Buffer.alloc(250, 'c')), // crosses: 100 kept
        await store.append(RUN, 2, Buffer.alloc(10, 'd')), // dropped
      ];
      assert.deepEqual(results, [
        { stored: 600, truncated: false, bytes: 600 },
        { stored: 300, truncated: false, bytes: 900 },
        { stored: 100, truncated: true, bytes: 1000 },
        { stored: 0, truncated: true, bytes: 1000 },
      ]);
      assert.deepEqual(await store.size(RUN), { bytes: 1000, truncated: true });
      const expected = Buffer.concat([Buffer.alloc(600, 'a'), Buffer.alloc(300, 'b'), Buffer.alloc(100, 'c')]);
      for (const from of [0, 599, 600, 899, 900, 950, 999, 1000, 5000]) {
        assert.ok((await flatten(store.read(RUN, from))).bytes.equals(expected.subarray(from)), `from ${from}`);
      }
      assert.deepEqual(
        (await all(store.read(RUN, 950))).map((c) => [c.channel, c.data.length]),
        [[1, 50]],
      );
    });

    test('a chunk that exactly reaches the limit is not a truncation; the next byte is', async () => {
      const { store } = await fresh(100);
      assert.deepEqual(await store.append(RUN, 1, Buffer.alloc(100)), { stored: 100, truncated: false, bytes: 100 });
      assert.deepEqual(await store.size(RUN), { bytes: 100, truncated: false });
      assert.deepEqual(await store.append(RUN, 1, Buffer.alloc(0)), { stored: 0, truncated: false, bytes: 100 });
      assert.deepEqual(await store.append(RUN, 2, Buffer.alloc(1)), { stored: 0, truncated: true, bytes: 100 });
      assert.deepEqual(await store.size(RUN), { bytes: 100, truncated: true });
    });

    test('appendMany stores the same stream as single appends, limit included', async () => {
      const chunks = sampleChunks(120, 7);
      const limit = 9000;
      const one = (await fresh(limit)).store;
      const many = (await fresh(limit)).store;
      let stored = 0;
      for (const c of chunks) stored += (await one.append(RUN, c.channel, c.data)).stored;
      let batched = 0;
      for (let i = 0; i < chunks.length; i += 25) batched += (await many.appendMany(RUN, chunks.slice(i, i + 25))).stored;
      assert.equal(batched, stored);
      assert.deepEqual(await many.size(RUN), await one.size(RUN));
      assert.deepEqual(await flatten(many.read(RUN, 0)), await flatten(one.read(RUN, 0)));
      assert.equal((await one.size(RUN)).truncated, stored < chunks.reduce((s, c) => s + c.data.length, 0));
    });

    test('runs are kept apart; unknown runs are empty', async () => {
      const { store } = await fresh();
      await store.append('aaaaaaaaaaaa', 1, Buffer.from('first run'));
      await store.append('bbbbbbbbbbbb', 2, Buffer.from('second run'));
      assert.equal((await flatten(store.read('aaaaaaaaaaaa', 0))).bytes.toString(), 'first run');
      assert.equal((await flatten(store.read('bbbbbbbbbbbb', 3))).bytes.toString(), 'ond run');
      assert.deepEqual(await all(store.read('cccccccccccc', 0)), []);
      assert.deepEqual(await store.size('cccccccccccc'), { bytes: 0, truncated: false });
    });

    test('bad arguments are refused', async () => {
      const { store, conn } = await fresh();
      await assert.rejects(store.append(RUN, 3 as 1, Buffer.from('x')), /channel must be 1/);
      await assert.rejects(store.append('', 1, Buffer.from('x')), /run id/);
      await assert.rejects(all(store.read(RUN, -1)), /offset/);
      assert.throws(() => new OutputStore(conn, { maxBytesPerRun: -1 }), /maxBytesPerRun/);
    });

    test('two writers of one run (an old owner still draining, a new one adopting) never write the same offset', async () => {
      const { store, target } = await fresh();
      const other = (await stores.reopen(target)).output;
      const writes: Promise<unknown>[] = [];
      for (let i = 0; i < 50; i++) {
        writes.push(store.append(RUN, 1, Buffer.from(`a${i};`)));
        writes.push(other.append(RUN, 2, Buffer.from(`b${i};`)));
      }
      await Promise.all(writes);
      const text = (await flatten(store.read(RUN, 0))).bytes.toString();
      const parts = text.split(';').filter(Boolean);
      assert.equal(parts.length, 100, 'every write kept, none overwritten');
      assert.equal(new Set(parts).size, 100);
      assert.equal((await store.size(RUN)).bytes, Buffer.byteLength(text));
    });

    test('a paused reader does not block appends, and sees what is appended meanwhile', async () => {
      const { store } = await fresh();
      // Larger than one read window, so the reader is between queries when we append.
      const big = randomBytes(64 * 1024);
      for (let i = 0; i < 100; i++) await store.append(RUN, 1, big);
      const reader = store.read(RUN, 10)[Symbol.asyncIterator]();
      assert.equal((await reader.next()).done, false);
      assert.deepEqual(await store.append(RUN, 2, Buffer.from('late')), { stored: 4, truncated: false, bytes: 100 * big.length + 4 });
      const rest: OutputChunk[] = [];
      for (let n = await reader.next(); !n.done; n = await reader.next()) rest.push(n.value);
      const flat = await flatten(rest);
      assert.equal(flat.bytes.subarray(-4).toString(), 'late');
      assert.equal(flat.channels.at(-1), 2);
    });

    test('append rates (printed, not asserted)', async () => {
      const mib = 1024 * 1024;
      const rate = (bytes: number, ms: number) => `${(bytes / mib / (ms / 1000)).toFixed(1)} MiB/s`;

      const small = randomBytes(4 * 1024);
      const smallTotal = 5 * 1000 * 1000;
      const smallCount = Math.ceil(smallTotal / small.length);
      {
        const { store } = await fresh();
        const t = performance.now();
        for (let i = 0; i < smallCount; i++) await store.append(RUN, 1, small);
        const ms = performance.now() - t;
        console.log(
          `${engine}: 5 MB in 4 KiB chunks, one append per chunk: ${smallCount} appends in ${ms.toFixed(0)} ms = ${rate(smallCount * small.length, ms)}, ${(ms / smallCount).toFixed(3)} ms/append`,
        );
        assert.equal((await store.size(RUN)).bytes, smallCount * small.length);
      }
      {
        const { store } = await fresh();
        const batch = Array.from({ length: 64 }, () => ({ channel: 1 as const, data: small }));
        const t = performance.now();
        let left = smallCount;
        while (left > 0) {
          await store.appendMany(RUN, batch.slice(0, Math.min(left, batch.length)));
          left -= batch.length;
        }
        const ms = performance.now() - t;
        console.log(`${engine}: 5 MB in 4 KiB chunks, appendMany of 64 chunks: ${rate(smallCount * small.length, ms)} (${ms.toFixed(0)} ms)`);
        assert.equal((await store.size(RUN)).bytes, smallCount * small.length);
      }
      {
        const { store, target } = await fresh(256 * mib);
        const chunk = randomBytes(64 * 1024);
        const count = (200 * mib) / chunk.length; // 3200 appends
        const t = performance.now();
        for (let i = 0; i < count; i++) await store.append(RUN, (i % 5 === 0 ? 2 : 1) as 1 | 2, chunk);
        const ms = performance.now() - t;
        console.log(
          `${engine}: 200 MiB in 64 KiB chunks, one append per chunk (256 MiB limit): ${rate(count * chunk.length, ms)} (${ms.toFixed(0)} ms, ${count} appends)`,
        );
        const size = await store.size(RUN);
        assert.deepEqual(size, { bytes: count * chunk.length, truncated: false });
        const t2 = performance.now();
        let replayed = 0;
        for await (const c of store.read(RUN, 123_456)) replayed += c.data.length;
        const ms2 = performance.now() - t2;
        const file = target.engine === 'sqlite' ? `; file ${(fs.statSync(target.path).size / mib).toFixed(0)} MiB` : '';
        console.log(`${engine}: replay of ~200 MiB from offset 123456: ${rate(replayed, ms2)} (${ms2.toFixed(0)} ms)${file}`);
        assert.equal(replayed, size.bytes - 123_456);
      }
    });

    test('a replica whose run was taken over stores nothing more for it: output and gaps refused, the new holder writes on', async () => {
      const { store, conn } = await fresh();
      const leases = new RunLeases(conn);
      const [a, b] = [{ owner: 'replica-a' }, { owner: 'replica-b' }];
      // Not leased yet (or no longer): a fenced write goes through.
      await store.appendMany(RUN, [{ channel: 1, data: Buffer.from('before ') }], a);
      // A lease of 50 ms: PostgreSQL leases keep the database's time, which no fake clock moves.
      assert.ok(await leases.claim(RUN, a.owner, 50));
      await store.appendMany(RUN, [{ channel: 1, data: Buffer.from('held by a ') }], a);
      // a stalls past its lease; b adopts.
      await new Promise((r) => setTimeout(r, 120));
      assert.ok(await leases.claim(RUN, b.owner, 10_000));
      await assert.rejects(store.appendMany(RUN, [{ channel: 1, data: Buffer.from('STALE ') }], a), OutputFencedError);
      await assert.rejects(store.addGap(RUN, { offset: 17, lost: -1, why: 'stale' }, a), OutputFencedError);
      await store.appendMany(RUN, [{ channel: 2, data: Buffer.from('by b') }], b);
      const got = await flatten(store.read(RUN));
      assert.equal(got.bytes.toString(), 'before held by a by b');
      assert.deepEqual(await store.gaps(RUN), []);
      // Writes without a fence (one replica, tests) are not checked.
      await store.appendMany(RUN, [{ channel: 1, data: Buffer.from('!') }]);
      assert.equal((await store.size(RUN)).bytes, 'before held by a by b!'.length);
    });
  });
}
