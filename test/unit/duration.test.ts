// The one duration grammar (protocol/duration.ts) as every reader applies it:
// the CLI, the web form, the server (flags, annotations, token lifetimes) and
// the Helm chart's schema. The rows marked "disagreed" were each accepted by one
// of the three old parsers and refused by another.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { DURATION_PATTERN, formatDuration, parseDuration } from '../../protocol/duration.js';
import { parseDuration as cliParseDuration } from '../../cli/lib/duration.js';
import { parseDurationInput } from '../../web/src/argv.js';
import { loadConfig } from '../../server/config.js';

const accepted: [string, number][] = [
  ['30s', 30],
  ['10m', 600],
  ['2h', 7_200],
  ['1h30m', 5_400],
  ['2d', 172_800],
  ['1d12h', 129_600],
  ['1h0m5s', 3_605],
  [' 90s ', 90], // surrounding blanks (a pasted value) are not part of it
];

// [text, what the error must say]
const refused: [string, RegExp][] = [
  ['90', /add a unit: 90s, 90m or 90h/], // disagreed: web took it as seconds
  ['1H', /lower-case: 1h/], // disagreed: the CLI lower-cased it
  ['90S', /lower-case: 90s/],
  ['30m 1h', /each unit once, largest first/], // disagreed: web summed it
  ['1h 30m', /no spaces: 1h30m/], // disagreed: web accepted spaces
  ['30m1h', /each unit once, largest first/], // disagreed: the server summed it
  ['1h1h', /each unit once, largest first/], // disagreed: the server summed it
  ['0s', /zero/],
  ['0h0m', /zero/],
  ['', /number with a unit/],
  ['   ', /number with a unit/],
  ['1.5h', /whole numbers/],
  ['-5m', /whole numbers/],
  ['h', /whole numbers/],
  ['1w', /whole numbers/],
  ['10 minutes', /whole numbers/],
  ['99999999999999999d', /too long/],
];

describe('the duration grammar', () => {
  for (const [text, seconds] of accepted) {
    test(`${JSON.stringify(text)} is ${seconds}s everywhere`, () => {
      assert.deepEqual(parseDuration(text), { ok: true, seconds });
      assert.equal(cliParseDuration(text, '--timeout'), seconds);
      assert.deepEqual(parseDurationInput(text), { ok: true, seconds });
      assert.equal(serverReads(text), seconds);
    });
  }
  for (const [text, why] of refused) {
    test(`${JSON.stringify(text)} is refused everywhere, saying ${why}`, () => {
      const r = parseDuration(text);
      assert.equal(r.ok, false);
      assert.match(r.ok ? '' : r.error, why);
      assert.throws(
        () => cliParseDuration(text, '--timeout'),
        (err: Error) => /^--timeout: /.test(err.message) && why.test(err.message),
      );
      if (text.trim()) assert.equal(parseDurationInput(text).ok, false); // empty is "server default" in the form
      // An empty env value means "not set" to the server (the default applies).
      if (text !== '')
        assert.throws(
          () => serverReads(text),
          (err: Error) => /ODDJOB_DEFAULT_TIMEOUT/.test(err.message) && why.test(err.message),
        );
    });
  }

  test("the chart's schema uses the same pattern for every oddjob duration", () => {
    const schema = JSON.parse(readFileSync(new URL('../../charts/oddjob/values.schema.json', import.meta.url), 'utf8')) as Schema;
    const durations = {
      auth: ['teamRefresh', 'sessionTtl', 'tokenTtl'],
      runs: ['defaultTimeout', 'maxTimeout', 'ttlAfterFinished', 'startTimeout'],
      leaderElection: ['leaseDuration', 'renewDeadline', 'retryPeriod'],
    } as const;
    for (const [group, keys] of Object.entries(durations)) {
      for (const key of keys) {
        const prop = schema.properties[group]?.properties?.[key];
        assert.equal(prop?.pattern, DURATION_PATTERN, `${group}.${key}`);
        assert.equal(prop?.minLength, 1, `${group}.${key}`);
      }
    }
    // Helm checks the syntax only; zero is refused by the server at start.
    const re = new RegExp(DURATION_PATTERN);
    for (const [text] of accepted) assert.ok(re.test(text.trim()), text);
    for (const [text, why] of refused) if (!/zero|too long/.test(why.source)) assert.ok(!re.test(text.trim()) || !text.trim(), text);
  });

  test('formatDuration writes the shortest text the grammar reads back', () => {
    for (const [seconds, text] of [
      [5_400, '1h30m'],
      [90, '1m30s'],
      [86_400, '1d'],
      [129_600, '1d12h'],
      [0, '0s'],
      [3_605, '1h5s'],
    ] as const) {
      assert.equal(formatDuration(seconds), text);
      if (seconds) assert.deepEqual(parseDuration(text), { ok: true, seconds });
    }
  });
});

interface Schema {
  properties: Record<string, { properties?: Record<string, { pattern?: string; minLength?: number }> }>;
}

/** The server's reading: its --default-timeout setting, through the real config loader. */
function serverReads(text: string): number {
  return loadConfig([], { ODDJOB_AUTH: 'dev', ODDJOB_DEV_USER: 'x', ODDJOB_NAMESPACES: 'default', ODDJOB_DEFAULT_TIMEOUT: text, ODDJOB_MAX_TIMEOUT: '400d' })
    .defaultTimeout;
}
