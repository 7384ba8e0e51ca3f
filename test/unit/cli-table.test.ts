// Table layout and shell-style display of argv.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { formatCommand, formatTable, shellQuote, truncate } from '../../cli/lib/table.js';
import { runsTable } from '../../cli/commands/runs.js';
import { deploymentsTable } from '../../cli/commands/deployments.js';
import type { Run } from '../../protocol/api.js';

describe('formatTable', () => {
  test('pads to the widest cell with three spaces, last column unpadded', () => {
    const t = formatTable(
      ['ID', 'STATUS', 'COMMAND'],
      [
        ['a', 'running', 'ls'],
        ['bbbb', 'ok', 'echo hi'],
      ],
    );
    assert.equal(t, 'ID     STATUS    COMMAND\na      running   ls\nbbbb   ok        echo hi\n');
  });
  test('counts code points so non-ASCII aligns', () => {
    const t = formatTable(
      ['A', 'B'],
      [
        ['é…', 'x'],
        ['ab', 'y'],
      ],
    );
    assert.equal(t, 'A    B\né…   x\nab   y\n');
  });
  test('no trailing spaces when last cells are empty', () => {
    assert.equal(formatTable(['A', 'B'], [['x', '']]), 'A   B\nx\n');
  });
});

describe('shellQuote / formatCommand / truncate', () => {
  test('quotes only when a shell would split or expand', () => {
    assert.equal(shellQuote('node'), 'node');
    assert.equal(shellQuote('scripts/x.js'), 'scripts/x.js');
    assert.equal(shellQuote('a b'), "'a b'");
    assert.equal(shellQuote(''), "''");
    assert.equal(shellQuote('$HOME'), "'$HOME'");
    assert.equal(shellQuote("it's"), `'it'\\''s'`);
  });
  test('formatCommand', () => assert.equal(formatCommand(['sh', '-c', 'echo $X']), "sh -c 'echo $X'"));
  test('truncate marks the cut and shows newlines escaped', () => {
    assert.equal(truncate('abcdef', 4), 'abc…');
    assert.equal(truncate('abc', 4), 'abc');
    assert.equal(truncate('a\nb', 10), 'a\\nb');
  });
});

describe('list tables', () => {
  const run: Run = {
    id: 'k3x9q2m7a1bz',
    namespace: 'payments',
    deployment: 'api',
    container: 'app',
    image: 'img',
    command: ['node', '-e', 'console.log(1)'],
    user: 'alice',
    interactive: false,
    tty: false,
    status: 'failed',
    exitCode: 3,
    jobName: 'api-oddjob-x',
    createdAt: '2024-05-02T11:58:00.000Z',
    outputBytes: 0,
    outputTruncated: false,
  };
  test('runs', () => {
    const now = Date.parse('2024-05-02T12:00:00.000Z');
    assert.equal(
      runsTable([run, { ...run, id: 'aaaaaaaaaaaa', status: 'running', exitCode: undefined }], now),
      'ID             STATUS    EXIT   DEPLOYMENT     USER    AGE   COMMAND\n' +
        "k3x9q2m7a1bz   failed    3      payments/api   alice   2m    node -e 'console.log(1)'\n" +
        "aaaaaaaaaaaa   running   -      payments/api   alice   2m    node -e 'console.log(1)'\n",
    );
  });
  test('deployments mark the default container and list who may run', () => {
    const t = deploymentsTable([
      {
        namespace: 'payments',
        name: 'api',
        containers: [
          { name: 'proxy', image: 'p' },
          { name: 'app', image: 'a' },
        ],
        defaultContainer: 'app',
        allowedTeams: ['acme/payments'],
        allowedUsers: ['bob'],
        maxDurationSeconds: 1800,
      },
    ]);
    assert.equal(t, 'NAMESPACE   NAME   CONTAINERS   MAX DURATION   ALLOWED\npayments    api    app*,proxy   30m            team:acme/payments,user:bob\n');
  });
});
