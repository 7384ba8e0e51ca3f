// How `oddjob` splits its own flags from the remote command, and reads deploy/NAME.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parseParams, parseRunTarget, parseTarget, requireCommand, splitArgv } from '../../cli/lib/argv.js';
import { CliError } from '../../cli/errors.js';

describe('splitArgv', () => {
  test('run: everything after the first -- is the command, byte for byte', () => {
    const s = splitArgv(['run', '-n', 'payments', 'deploy/api', '--', 'node', '-e', 'console.log("a -- b")', '--', '--flag', '']);
    assert.equal(s.subcommand, 'run');
    assert.deepEqual(s.oddjobArgs, ['run', '-n', 'payments', 'deploy/api']);
    assert.deepEqual(s.commandArgv, ['node', '-e', 'console.log("a -- b")', '--', '--flag', '']);
  });
  test('a global --server value is not taken for the subcommand', () => {
    const s = splitArgv(['--server', 'http://x', 'run', 'deploy/a', '--', 'ls']);
    assert.equal(s.subcommand, 'run');
    assert.deepEqual(s.commandArgv, ['ls']);
    assert.deepEqual(s.oddjobArgs, ['--server', 'http://x', 'run', 'deploy/a']);
  });
  test('run without -- leaves the command undefined (not empty)', () => {
    assert.equal(splitArgv(['run', 'deploy/a', 'ls']).commandArgv, undefined);
    assert.deepEqual(splitArgv(['run', 'deploy/a', '--']).commandArgv, []);
  });
  test('other subcommands keep their args unchanged', () => {
    const s = splitArgv(['logs', 'abc', '--', 'x']);
    assert.equal(s.subcommand, 'logs');
    assert.deepEqual(s.oddjobArgs, ['logs', 'abc', '--', 'x']);
    assert.equal(s.commandArgv, undefined);
  });
  test('no subcommand', () => {
    assert.equal(splitArgv([]).subcommand, undefined);
    assert.equal(splitArgv(['--help']).subcommand, undefined);
  });
});

describe('parseTarget', () => {
  // Every spelling kubectl accepts, including what `kubectl get deploy -o name` prints.
  const forms = [
    'deploy/api',
    'deployment/api',
    'deployments/api',
    'Deploy/api',
    'deployment.apps/api',
    'deployments.apps/api',
    'deployment.v1.apps/api',
    'deployments.v1.apps/api',
    'Deployment.Apps/api',
  ];
  for (const t of forms) {
    test(`${t} → api`, () => assert.equal(parseTarget(t), 'api'));
  }
  const rejects = (t: string | undefined, re: RegExp) =>
    assert.throws(
      () => parseTarget(t),
      (e: unknown) => e instanceof CliError && e.usage && re.test(`${e.message} ${e.hint}`),
    );
  test('a bare name shows the right form with that name', () => rejects('api', /deploy\/NAME.*oddjob run deploy\/api --/));
  test('other kinds are refused by name, listing the accepted forms', () => {
    rejects(
      'pod/api-123',
      /Deployments or Tasks.*pod.*accepted forms: deploy\/NAME, deployment\/NAME, deployments\/NAME, deployment\.apps\/NAME, deployments\.apps\/NAME, deployment\.v1\.apps\/NAME, deployments\.v1\.apps\/NAME/,
    );
    rejects('statefulset.apps/db', /Deployments or Tasks.*statefulset\.apps/);
    rejects('deployments.v2.apps/api', /Deployments or Tasks.*accepted forms/);
    rejects('deployment.extensions/api', /Deployments or Tasks/);
  });
  test('empty or nested names are refused', () => {
    rejects('deploy/', /not deploy\/NAME/);
    rejects('deploy/a/b', /not deploy\/NAME/);
  });
  test('missing target', () => rejects(undefined, /missing the target/));
});

describe('requireCommand', () => {
  test('returns the argv as given', () => assert.deepEqual(requireCommand(['sh', '-c', 'x y'], [], 'deploy/a'), ['sh', '-c', 'x y']));
  test('no -- names the fix', () =>
    assert.throws(
      () => requireCommand(undefined, [], 'deploy/a'),
      (e: CliError) => /missing `--`/.test(e.message) && e.hint === 'oddjob run deploy/a -- CMD [ARG...]',
    ));
  test('an empty command after --', () => assert.throws(() => requireCommand([], [], 'deploy/a'), /missing the command after `--`/));
  test('words before -- are shown where they belong', () =>
    assert.throws(
      () => requireCommand(undefined, ['ls', 'tmp'], 'deploy/a'),
      (e: CliError) => e.hint === 'put the command after `--`: oddjob run deploy/a -- ls tmp',
    ));
});

describe('Task targets and --param', () => {
  test('every kubectl spelling of the Task resource, and its short name', () => {
    for (const kind of ['task', 'tasks', 'ojtask', 'task.oddjob.io', 'Tasks.oddjob.io', 'task.v1alpha1.oddjob.io']) {
      assert.deepEqual(parseRunTarget(`${kind}/reindex`), { kind: 'task', name: 'reindex' });
    }
    assert.deepEqual(parseRunTarget('deploy/api'), { kind: 'deploy', name: 'api' });
    assert.throws(() => parseRunTarget('task/'), /not task\/NAME/);
    assert.throws(() => parseRunTarget('task/a/b'), /not task\/NAME/);
  });
  test('--param KEY=VALUE keeps the value whole, = and spaces included', () => {
    assert.deepEqual(parseParams(['merchant=m_1', 'q=a=b c', 'empty=']), { merchant: 'm_1', q: 'a=b c', empty: '' });
    assert.deepEqual(Object.keys(parseParams(['__proto__=x'])), ['__proto__']);
    assert.throws(() => parseParams(['novalue']), /expected NAME=VALUE/);
    assert.throws(() => parseParams(['=x']), /expected NAME=VALUE/);
    assert.throws(() => parseParams(['a=1', 'a=2']), /--param a is given twice/);
  });
});
