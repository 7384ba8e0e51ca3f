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
