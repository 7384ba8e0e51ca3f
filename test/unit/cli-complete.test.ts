// What TAB offers: read from the command table, with the server's answers given
// through CompletionSources (the real server is in test/integration/cli-habits.test.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PassThrough } from 'node:stream';
import { complete, type CompletionSources } from '../../cli/complete.js';
import { CliContext } from '../../cli/context.js';
import { buildProgram } from '../../cli/main.js';
import type { DeploymentSummary } from '../../protocol/api.js';

const dep = (namespace: string, name: string, containers: string[]): DeploymentSummary => ({
  namespace,
  name,
  containers: containers.map((c) => ({ name: c, image: 'img' })),
  defaultContainer: containers[0]!,
  allowedTeams: [],
  allowedUsers: [],
});
const asked: Array<string | undefined> = [];
const sources: CompletionSources = {
  namespaces: async () => ['payments', 'search'],
  deployments: async (ns) => {
    asked.push(ns);
    const all = [dep('payments', 'api', ['app', 'proxy']), dep('search', 'indexer', ['main'])];
    return ns ? all.filter((d) => d.namespace === ns) : all;
  },
  runIds: async () => ['k3x9q2m7a1bz', 'aaaaaaaaaaaa'],
  // Stands in for the server's answer: it echoes what it was asked, so the cases show what reaches it.
  paths: async (ns, deployment, container, word) => [`${word}${ns ?? '-'}:${deployment}:${container ?? '-'}`, `${word}x/`],
  contexts: () => ['prod', 'staging'],
  defaultNamespace: () => undefined,
};
const io = { stdout: new PassThrough(), stderr: new PassThrough(), stdin: new PassThrough(), env: {} } as never;
const program = buildProgram(new CliContext(io, '0.0.0'));
const c = (...words: string[]) => complete(program, words, sources);

describe('completion', () => {
  const cases: Array<[string[], string[]]> = [
    [['ru'], ['run', 'runs']],
    [
      ['run', ''],
      ['deploy/api', 'deploy/indexer'],
    ],
    [['run', 'deploy/a'], ['deploy/api']],
    [
      ['run', 'deployment.apps/'],
      ['deployment.apps/api', 'deployment.apps/indexer'],
    ],
    [['run', '-n', 'search', ''], ['deploy/indexer']],
    [
      ['run', '-n', ''],
      ['payments', 'search'],
    ],
    [
      ['--context', ''],
      ['prod', 'staging'],
    ],
    [
      ['run', '-n', 'payments', 'deploy/api', '-c', ''],
      ['app', 'proxy'],
    ],
    [
      ['run', 'deploy/api', '--', 'node', ''],
      ['-:api:-', 'x/'],
    ],
    [
      ['run', '-n', 'payments', 'deployment.apps/api', '-c', 'app', '--', 'node', 'scripts/'],
      ['scripts/payments:api:app', 'scripts/x/'],
    ],
    [['logs', 'k3x9q2m7a1bz', '--', ''], []],
    [
      ['logs', ''],
      ['k3x9q2m7a1bz', 'aaaaaaaaaaaa'],
    ],
    [['cancel', 'k3'], ['k3x9q2m7a1bz']],
    [
      ['runs', '-o', ''],
      ['json', 'yaml', 'wide', 'name'],
    ],
    [['runs', '--status', 'f'], ['failed']],
    [['runs', '--no-h'], ['--no-headers']],
    [
      ['config', 'use-context', ''],
      ['prod', 'staging'],
    ],
    [['config', 'u'], ['use-context']],
    [
      ['completion', ''],
      ['bash', 'zsh', 'fish'],
    ],
    [['audit', '--type', 'run.d'], ['run.denied']],
  ];
  for (const [words, want] of cases) {
    test(`oddjob ${words.map((w) => w || '<TAB>').join(' ')} → ${want.join(' ') || '(nothing)'}`, async () => {
      assert.deepEqual(await c(...words), want);
    });
  }
  test('global flags are offered under every command; hidden ones are not', async () => {
    const flags = await c('deployments', '--');
    assert.ok(flags.includes('--server') && flags.includes('--context') && flags.includes('--namespace'));
    assert.ok(!(await c('')).includes('__complete'));
  });
});
