// Durations and time bounds as the CLI reads them (--timeout, --since, --until) and ages it prints.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatAge, formatSeconds, parseDuration, parseTimeBound } from '../../cli/lib/duration.js';
import { CliError } from '../../cli/errors.js';

// The grammar itself is test/unit/duration.test.ts; the CLI adds the flag's name and a usage error.
describe('parseDuration', () => {
  test('a bad duration is a usage error naming the flag', () => {
    assert.throws(
      () => parseDuration('90', '--timeout'),
      (err: unknown) => err instanceof CliError && err.usage && /^--timeout: .*90s, 90m or 90h/.test(err.message),
    );
  });
});

describe('parseTimeBound', () => {
  const now = new Date('2024-05-02T12:00:00.000Z');
  test('a duration counts back from now', () => {
    assert.equal(parseTimeBound('24h', '--since', now), '2024-05-01T12:00:00.000Z');
    assert.equal(parseTimeBound('1h30m', '--since', now), '2024-05-02T10:30:00.000Z');
    assert.equal(parseTimeBound('7d', '--since', now), '2024-04-25T12:00:00.000Z');
  });
  test('ISO dates and times are normalised to UTC ISO with an offset', () => {
    assert.equal(parseTimeBound('2024-05-01', '--since', now), '2024-05-01T00:00:00.000Z');
    assert.equal(parseTimeBound('2024-05-01T12:00:00Z', '--since', now), '2024-05-01T12:00:00.000Z');
    assert.equal(parseTimeBound('2024-05-01T14:00:00+02:00', '--until', now), '2024-05-01T12:00:00.000Z');
    assert.equal(parseTimeBound('2024-05-01 12:00:00Z', '--until', now), '2024-05-01T12:00:00.000Z');
  });
  for (const bad of ['yesterday', 'May 5', '2024-13-45', '24', '', '24H']) {
    test(`rejects ${JSON.stringify(bad)}`, () => assert.throws(() => parseTimeBound(bad, '--since', now), /--since/));
  }
});

describe('formatAge / formatSeconds', () => {
  test('ages read like kubectl', () => {
    assert.equal(formatAge(0), '0s');
    assert.equal(formatAge(59_999), '59s');
    assert.equal(formatAge(60_000), '1m');
    assert.equal(formatAge(59 * 60_000), '59m');
    assert.equal(formatAge(90 * 60_000), '1h30m');
    assert.equal(formatAge(5 * 3_600_000), '5h');
    assert.equal(formatAge(12 * 3_600_000 + 60_000), '12h');
    assert.equal(formatAge(3 * 86_400_000), '3d');
    assert.equal(formatAge(-5000), '0s', 'clock skew never shows a negative age');
  });
  test('seconds back to the shortest duration', () => {
    assert.equal(formatSeconds(5400), '1h30m');
    assert.equal(formatSeconds(86400 + 5), '1d5s');
    assert.equal(formatSeconds(0), '0s');
  });
});
