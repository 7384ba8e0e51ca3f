// Where live (attach) output joins the log: the pure part of capture.ts.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { MIN_EVIDENCE, findJoin, locateTail } from '../../server/runs/splice.js';

const b = (s: string) => Buffer.from(s);

describe('findJoin', () => {
  const cases: { name: string; log: string; live: string; settled: boolean; want: ReturnType<typeof findJoin> }[] = [
    { name: 'nothing before the attach, nothing live yet, writer idle', log: '', live: '', settled: true, want: { kind: 'join', at: 0, ambiguous: false } },
    {
      name: 'a line before the attach, the command waits for input',
      log: 'early-line\n',
      live: '',
      settled: true,
      want: { kind: 'join', at: 11, ambiguous: false },
    },
    { name: 'nothing live yet and the writer may still be busy: wait', log: 'early-line\n', live: '', settled: false, want: { kind: 'need-more' } },
    {
      name: 'the log holds the head of the live bytes',
      log: 'a1\na2\na3\na4\n',
      live: 'a3\na4\na5\n',
      settled: false,
      want: { kind: 'join', at: 6, ambiguous: false },
    },
    { name: 'no overlap: live starts after the log', log: 'a1\na2\n', live: 'a3\n', settled: false, want: { kind: 'join', at: 6, ambiguous: false } },
    { name: 'live bytes do not yet cover the overlap: wait', log: 'a1\na2\na3\na4\n', live: 'a3\n', settled: false, want: { kind: 'need-more' } },
    { name: 'a cut inside a line', log: 'line one\nline two\n', live: 'two\nline three\n', settled: false, want: { kind: 'join', at: 14, ambiguous: false } },
    {
      name: 'a coincidental match earlier in the log is not taken',
      log: 'ab\nxy\nab\ncd\n',
      live: 'ab\ncd\nef\n',
      settled: false,
      want: { kind: 'join', at: 6, ambiguous: false },
    },
    {
      name: 'output that repeats itself exactly: longest overlap, flagged',
      log: 'y\n'.repeat(100),
      live: 'y\n'.repeat(150),
      settled: true,
      want: { kind: 'join', at: 0, ambiguous: true },
    },
    {
      name: 'the end of the log only looks like the start of the live bytes',
      log: 'a1\na2\nxx',
      live: 'xxa9\n',
      settled: true,
      want: { kind: 'join', at: 6, ambiguous: false },
    },
  ];
  for (const c of cases) {
    test(c.name, () => assert.deepEqual(findJoin(b(c.log), b(c.live), c.settled), c.want));
  }

  test('an overlap longer than the live bytes so far: a long agreement decides', () => {
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(`line ${String(i).padStart(9, '0')}\n`);
    const all = Buffer.from(lines.join(''));
    const at = 1_000_003;
    // The attach path held far more than the live bytes so far: 1 MiB of overlap.
    const log = all.subarray(0, at + (1 << 20));
    assert.deepEqual(findJoin(log, all.subarray(at, at + 1000), false), { kind: 'need-more' }, 'a short agreement waits for more');
    assert.deepEqual(findJoin(log, all.subarray(at, at + 8192), false), { kind: 'join', at, ambiguous: false });
  });

  test('lines with a long constant part: the join is not lost among the lines that look alike', () => {
    const lines: string[] = [];
    for (let i = 0; i < 200_000; i++) lines.push(`line ${String(i).padStart(9, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\n`);
    const all = Buffer.from(lines.join(''));
    // The attach starts right after a line number: its first 72 bytes are in every line.
    const at = 150_000 * 88 + 15;
    assert.deepEqual(findJoin(all.subarray(0, at + (2 << 20)), all.subarray(at, at + (4 << 20)), false), { kind: 'join', at, ambiguous: false });
  });

  test('an overlap of 34 MiB (measured: what the paused attach path held) is still found', () => {
    const lines: string[] = [];
    for (let i = 0; i < 450_000; i++) lines.push(`line ${String(i).padStart(9, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\n`);
    const all = Buffer.from(lines.join(''));
    const at = 32_780 * 88;
    assert.deepEqual(findJoin(all.subarray(0, at + 34 * 1024 * 1024), all.subarray(at, at + 32768), false), { kind: 'join', at, ambiguous: false });
  });

  test('at the sizes of a fast writer: 20 MiB of log, the attach 3 MiB before its end', () => {
    const lines: string[] = [];
    for (let i = 0; i < 300_000; i++) lines.push(`line ${String(i).padStart(9, '0')} ${'x'.repeat(55)}\n`);
    const all = Buffer.from(lines.join(''));
    const at = all.length - 3 * 1024 * 1024 - 17;
    const log = all.subarray(0, all.length - 1024);
    const live = all.subarray(at);
    assert.deepEqual(findJoin(log, live, false), { kind: 'join', at, ambiguous: false });
  });
});

describe('findJoin: the log rotated between the attach and the log read', () => {
  const lines: string[] = [];
  for (let i = 0; i < 100_000; i++) lines.push(`line ${String(i).padStart(9, '0')} ${'x'.repeat(40)}\n`);
  const all = Buffer.from(lines.join(''));
  // The attach began at byte 1 MiB; the kubelet rotated the file at 3 MiB; the log read
  // returned the new file, which starts 2 MiB into the live bytes.
  const attachAt = 1 << 20;
  const rotatedAt = 3 << 20;
  const log = all.subarray(rotatedAt, rotatedAt + (1 << 20));

  test('the log starts inside the live bytes: rotated, not joined (no output twice)', () => {
    assert.deepEqual(findJoin(log, all.subarray(attachAt), false), { kind: 'rotated', liveAt: rotatedAt - attachAt });
  });
  test('the live bytes do not reach the log yet: wait for more, do not call it no overlap', () => {
    assert.deepEqual(findJoin(log, all.subarray(attachAt, attachAt + (1 << 20)), false), { kind: 'need-more' });
  });
  test('a long log and live bytes that never meet once the writer is quiet: no overlap', () => {
    assert.deepEqual(findJoin(all.subarray(0, 1 << 20), all.subarray(2 << 20, 3 << 20), true), { kind: 'join', at: 1 << 20, ambiguous: false });
  });
  test('a short log seen again later (a prompt) is still taken as written before the attach', () => {
    assert.deepEqual(findJoin(b('>>> '), b('1\n>>> '), false), { kind: 'join', at: 4, ambiguous: false });
  });
});

describe('locateTail', () => {
  test('finds where the bytes we have end in a re-read log', () => {
    assert.equal(locateTail(b('l1\nl2\nl3\nl4\n'), b('l2\n')), 6);
  });
  test('undefined when the log no longer holds them (rotated away)', () => {
    assert.equal(locateTail(b('l7\nl8\n'), b('l2\n')), undefined);
  });
  test('the last occurrence at or before the limit', () => {
    assert.equal(locateTail(b('ab\nab\nab\n'), b('ab\n'), 6), 6);
  });
  test('a tail longer than the log is not found', () => {
    assert.equal(locateTail(b('ab'), b('xxab')), undefined);
  });

  // The kubelet rotated the log file within our last bytes: the log starts with their end.
  const lines = (from: number, to: number) => b(Array.from({ length: to - from }, (_, i) => `line ${String(from + i).padStart(9, '0')} xyz\n`).join(''));
  const tail = lines(0, 4000); // 76 KB: the last bytes we have
  const cases: { name: string; log: Buffer; endSeen: boolean; want: number | undefined }[] = [
    { name: 'only our last line, the attach saw the end: nothing new', log: lines(3999, 4000), endSeen: true, want: 19 },
    { name: 'only our last line, the end not seen: a coincidence cannot be ruled out', log: lines(3999, 4000), endSeen: false, want: undefined },
    { name: 'a few KiB of our end and more after them', log: Buffer.concat([lines(3500, 4000), lines(4000, 4100)]), endSeen: false, want: 500 * 19 },
    { name: 'a few bytes of our end and more after them', log: Buffer.concat([lines(3999, 4000), lines(4000, 4100)]), endSeen: true, want: undefined },
    { name: 'nothing of ours, new bytes only (a real gap)', log: lines(5000, 5100), endSeen: true, want: undefined },
    { name: 'lines of ours that are not our end', log: lines(3000, 3300), endSeen: true, want: undefined },
  ];
  for (const c of cases) {
    test(`log rotated within our last bytes: ${c.name}`, () => {
      assert.equal(locateTail(c.log, tail, c.log.length, c.endSeen), c.want);
    });
  }
  test('the evidence is MIN_EVIDENCE bytes', () => {
    const log = Buffer.concat([tail.subarray(tail.length - MIN_EVIDENCE), b('new\n')]);
    assert.equal(locateTail(log, tail), MIN_EVIDENCE);
    assert.equal(locateTail(log.subarray(1), tail), undefined);
  });
});
