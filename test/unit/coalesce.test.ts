// The log's ~100-byte chunks are joined per event-loop turn before they are stored and sent.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { OutputChunk } from '../../server/store/output.js';
import { OutputCoalescer } from '../../server/runs/coalesce.js';

const turn = () => new Promise((r) => setImmediate(r));
const b = (s: string) => Buffer.from(s);
const show = (batches: OutputChunk[][]) => batches.map((batch) => batch.map((c) => `${c.channel}:${c.data.toString()}`));

describe('OutputCoalescer', () => {
  test('chunks of one turn become one batch; consecutive chunks of a channel are joined, order kept', async () => {
    const batches: OutputChunk[][] = [];
    const c = new OutputCoalescer((chunks) => batches.push(chunks));
    c.push(1, b('a'));
    c.push(1, b('b'));
    c.push(2, b('E'));
    c.push(1, b('c'));
    c.push(1, b(''));
    assert.equal(batches.length, 0, 'nothing is handed on synchronously below the size limit');
    await turn();
    assert.deepEqual(show(batches), [['1:ab', '2:E', '1:c']]);
    c.push(2, b('x'));
    await turn();
    assert.deepEqual(show(batches), [['1:ab', '2:E', '1:c'], ['2:x']]);
  });

  test('reaching the size limit flushes at once; flush() hands on the rest now; nothing is lost or repeated', async () => {
    const batches: OutputChunk[][] = [];
    const c = new OutputCoalescer((chunks) => batches.push(chunks), 10);
    c.push(1, b('12345'));
    c.push(1, b('67890'));
    assert.deepEqual(show(batches), [['1:1234567890']]);
    c.push(1, b('tail'));
    c.flush();
    assert.deepEqual(show(batches), [['1:1234567890'], ['1:tail']]);
    await turn();
    c.flush();
    assert.equal(batches.length, 2, 'a flushed batch is not handed on again by the scheduled turn');
  });

  test('discard() drops what is pending and cancels the scheduled flush', async () => {
    const batches: OutputChunk[][] = [];
    const c = new OutputCoalescer((chunks) => batches.push(chunks));
    c.push(1, b('gone'));
    c.discard();
    await turn();
    assert.equal(batches.length, 0);
  });
});
