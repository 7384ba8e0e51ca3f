// OutputHub: stored first, then sent; a viewer joining at byte N gets no gap and no duplicate.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { OutputStore } from '../../server/audit/output.js';
import { OutputHub } from '../../server/runs/hub.js';
import { tempDatabases } from '../support/sqlite.js';

const dbs = tempDatabases('hub');

function viewer() {
  const got: string[] = [];
  return { got, output: (ch: 1 | 2, d: Buffer) => got.push(`${ch}:${d.toString()}`), status: () => undefined, close: () => undefined };
}

describe('OutputHub', () => {
  test('appendMany stores in one go and sends each chunk once to live viewers; a late viewer replays from its offset', () => {
    const store = new OutputStore(dbs.open(dbs.file()));
    const hub = new OutputHub('r1', store);
    const early = viewer();
    hub.attach(early, 0, true);
    hub.appendMany([
      { channel: 1, data: Buffer.from('hello ') },
      { channel: 2, data: Buffer.from('oops') },
      { channel: 1, data: Buffer.alloc(0) },
    ]);
    const late = viewer();
    hub.attach(late, 3, true);
    hub.append(1, Buffer.from('world'));
    assert.deepEqual(early.got, ['1:hello ', '2:oops', '1:world']);
    assert.deepEqual(late.got, ['1:lo ', '2:oops', '1:world']);
    assert.equal(hub.total, 15);
    assert.deepEqual(hub.storedPerChannel(), { 1: 11, 2: 4 });
  });

  test('a gap is told to live viewers when it happens and marked where it happened in every replay', () => {
    const store = new OutputStore(dbs.open(dbs.file()));
    const hub = new OutputHub('r3', store);
    const seen = (): { got: string[]; output: (ch: 1 | 2, d: Buffer) => void; status: (f: { kind: string; message?: string }) => void; close: () => void } => {
      const got: string[] = [];
      return {
        got,
        output: (ch, d) => got.push(`${ch}:${d.toString()}`),
        status: (f) => void (f.kind === 'progress' && got.push(`status:${f.message}`)),
        close: () => undefined,
      };
    };
    const live = seen();
    hub.attach(live, 0, true);
    hub.append(1, Buffer.from('before '));
    hub.gap(-1, 'rotated away');
    hub.append(1, Buffer.from('after'));
    const notice = 'status:OUTPUT LOST: an unknown amount of output is missing here (rotated away)';
    assert.deepEqual(live.got, ['1:before ', notice, '1:after']);
    const replay = seen();
    hub.attach(replay, 0, false);
    assert.deepEqual(replay.got, ['1:before ', notice, '1:after']);
    const fromMiddle = seen();
    hub.attach(fromMiddle, 3, false);
    assert.deepEqual(fromMiddle.got, ['1:ore ', notice, '1:after']);
    const afterGap = seen();
    hub.attach(afterGap, 9, false);
    assert.deepEqual(afterGap.got, ['1:ter'], 'a viewer past the gap is not told again');
  });

  test('when the store cannot write, live viewers still get the output and the error reaches the caller', () => {
    const file = dbs.file();
    new OutputStore(dbs.open(file)).append('r2', 1, Buffer.from('kept '));
    const readOnly = new OutputStore(dbs.open(file, { readonly: true }));
    const hub = new OutputHub('r2', readOnly);
    const v = viewer();
    hub.attach(v, 0, true);
    assert.throws(() => hub.appendMany([{ channel: 1, data: Buffer.from('live only') }]));
    assert.deepEqual(v.got, ['1:kept ', '1:live only']);
    assert.equal(hub.total, 14, 'offsets still count what was produced');
  });
});

describe('OutputHub past the storage limit', () => {
  test('a viewer joining after unstored output is told what it missed, then gets live output only', () => {
    const store = new OutputStore(dbs.open(dbs.file()), { maxBytesPerRun: 4 });
    const hub = new OutputHub('r3', store);
    hub.append(1, Buffer.from('abcdefgh')); // 4 kept, 4 only streamed
    const notices: string[] = [];
    const got: string[] = [];
    hub.attach({ output: (_c, d) => got.push(d.toString()), status: (f) => f.kind === 'progress' && notices.push(f.message), close: () => undefined }, 0, true);
    hub.append(1, Buffer.from('live'));
    assert.deepEqual(got, ['abcd', 'live']);
    assert.equal(notices.length, 1);
    assert.match(notices[0]!, /^4 bytes of output were only streamed live/);
  });
});
