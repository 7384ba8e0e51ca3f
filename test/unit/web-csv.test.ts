// web/src/csv.ts: RFC 4180 quoting and CSV-injection protection for exports.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { AUDIT_COLUMNS, csvCell, toCsv } from '../../web/src/csv.js';

describe('CSV export', () => {
  test('quotes commas, quotes, newlines and edge whitespace', () => {
    assert.equal(csvCell('plain'), 'plain');
    assert.equal(csvCell('a,b'), '"a,b"');
    assert.equal(csvCell('say "hi"'), '"say ""hi"""');
    assert.equal(csvCell('two\nlines'), '"two\nlines"');
    assert.equal(csvCell(' padded'), '" padded"');
    assert.equal(csvCell(undefined), '');
    assert.equal(csvCell(42), '42');
    assert.equal(csvCell(-1), '-1');
  });
  test('formula-looking text is defused (CSV injection)', () => {
    for (const evil of ['=HYPERLINK("http://x","y")', '+1+1', '-2+3', '@SUM(A1)', '\tx', '\rx']) {
      const cell = csvCell(evil);
      const unquoted = cell.startsWith('"') ? cell.slice(1, -1).replace(/""/g, '"') : cell;
      assert.ok(unquoted.startsWith("'"), `${JSON.stringify(evil)} -> ${cell}`);
    }
  });
  // Each input, and the cell as a spreadsheet in any locale reads it: no piece that a
  // comma, semicolon, tab or line break can start may begin with a formula character.
  const cases: Array<[string, string]> = [
    ['=1+1', "'=1+1"],
    ['+1', "'+1"],
    ['-1', "'-1"],
    ['@SUM(A1)', "'@SUM(A1)"],
    ['\tx', "'\tx"],
    ['\rx', `"'\rx"`],
    [' =1', "' =1"],
    // Full-width operators: read as = + - @ by spreadsheets in CJK locales.
    ['＝HYPERLINK("x")', `"'＝HYPERLINK(""x"")"`],
    ['＋1', "'＋1"],
    ['－1', "'－1"],
    ['＠x', "'＠x"],
    ['\u3000＝1', "'\u3000＝1"],
    // `;`-separated locales split the line on ";" and ignore quotes mid-field.
    ["a;=cmd|' /C calc'!A0", "a;'=cmd|' /C calc'!A0"],
    ['a; =1', "a;' =1"],
    ['a;b;@x', "a;b;'@x"],
    ['a;＝1', "a;'＝1"],
    // A quoted line break ends the row where the quote did not open the field.
    ['ok\n=cmd', `"ok\n'=cmd"`],
    ['a\t-1', "a\t'-1"],
    // Harmless text is left alone.
    ['ab;cd', 'ab;cd'],
    ['a=b', 'a=b'],
    ['node -e 1', 'node -e 1'],
  ];
  for (const [input, want] of cases) {
    test(`defuses ${JSON.stringify(input)}`, () => assert.equal(csvCell(input), want));
  }
  test('numbers stay numbers', () => assert.equal(csvCell(-5), '-5'));
  test('an audit event becomes one CRLF row with the exact argv as JSON', () => {
    const csv = toCsv(AUDIT_COLUMNS, [
      {
        seq: 1,
        time: '2024-01-01T00:00:00.000Z',
        type: 'run.requested',
        actor: { login: 'alice', teams: ['acme/payments'] },
        client: { kind: 'web' },
        namespace: 'demo',
        deployment: 'api',
        command: ['node', '-e', '=1+1'],
        prevHash: '0',
        hash: 'h',
      },
    ]);
    const [header, row, end] = csv.split('\r\n');
    assert.match(header!, /^seq,time,type,actor/);
    assert.match(row!, /^1,2024-01-01T00:00:00.000Z,run.requested,alice,acme\/payments,web,/);
    assert.ok(row!.includes('"[""node"",""-e"",""=1+1""]"'), row);
    assert.equal(end, '');
  });
});
