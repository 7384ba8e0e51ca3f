// web/src/argv.ts: the run form's "paste a command line" helper splits like a
// POSIX shell (quotes, backslashes) and names the shell features that will not
// happen; shellQuote round-trips; durations parse.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDurationInput, shellJoin, shellQuote, splitCommandLine } from '../../web/src/argv.js';

const argv = (s: string) => {
  const r = splitCommandLine(s);
  assert.ok(r.ok, `expected ${s} to split`);
  return r.argv;
};

describe('splitCommandLine', () => {
  test('words, quotes and escapes', () => {
    assert.deepEqual(argv('node  scripts/backfill.js --since "2024-01-01 00:00" \'it\'"s" a\\ b ""'), [
      'node',
      'scripts/backfill.js',
      '--since',
      '2024-01-01 00:00',
      'its',
      'a b',
      '',
    ]);
    assert.deepEqual(argv(`sh -c 'echo "$HOME" | wc -c'`), ['sh', '-c', 'echo "$HOME" | wc -c']);
    assert.deepEqual(argv('echo "a \\"q\\" \\\\ \\x"'), ['echo', 'a "q" \\ \\x']);
    assert.deepEqual(argv('a \\\n b'), ['a', 'b']);
  });
  test('shell features are warned about, not performed', () => {
    const r = splitCommandLine('cat *.log | grep $USER > out');
    assert.ok(r.ok);
    assert.deepEqual(r.argv, ['cat', '*.log', '|', 'grep', '$USER', '>', 'out']);
    assert.ok(r.warnings.some((w) => /pipes/.test(w)));
    assert.ok(r.warnings.some((w) => /globbing/.test(w)));
    assert.ok(r.warnings.some((w) => /substitution/.test(w)));
    const quoted = splitCommandLine(`sh -c 'a | b'`);
    assert.ok(quoted.ok && quoted.warnings.length === 0);
  });
  test('unterminated quotes and empty lines are errors', () => {
    assert.match((splitCommandLine('echo "abc') as { error: string }).error, /unterminated double quote/);
    assert.match((splitCommandLine("echo 'abc") as { error: string }).error, /unterminated single quote/);
    assert.match((splitCommandLine('echo \\') as { error: string }).error, /backslash/);
    assert.equal(splitCommandLine('   ').ok, false);
  });
  test('shellQuote round-trips through splitCommandLine', () => {
    const cases = [
      ['node', '-e', 'console.log("hi")'],
      ['a b', '', "it's", '$X', 'tab\there', 'ünï', '--flag=1'],
    ];
    for (const c of cases) assert.deepEqual(argv(shellJoin(c)), c);
    assert.equal(shellQuote('plain-arg_1.js'), 'plain-arg_1.js');
  });
});

// The grammar itself is test/unit/duration.test.ts; the form adds only "empty means the default".
describe('parseDurationInput', () => {
  test('an empty field means the server default', () => {
    assert.deepEqual(parseDurationInput(''), { ok: true, seconds: undefined });
    assert.deepEqual(parseDurationInput('  '), { ok: true, seconds: undefined });
  });
});
