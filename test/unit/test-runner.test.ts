// test/run.mjs (npm test): a mistyped suite name gets a one-line answer, not a stack trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

test('npm test -- unti names the valid suites and runs nothing', () => {
  const run = fileURLToPath(new URL('../run.mjs', import.meta.url));
  const r = spawnSync(process.execPath, [run, 'unit', 'unti'], { encoding: 'utf8' });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /^unknown test suite: unti; the suites are unit and integration/);
  assert.doesNotMatch(r.stderr, /\n\s+at |ENOENT|== unit/, 'no stack trace, and no suite ran');
});
