// The listing formats every `oddjob <list>` shares: -o json|yaml|wide|name and --no-headers.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { parse as parseYaml } from 'yaml';
import { runsListing } from '../../cli/commands/runs.js';
import { deploymentsListing } from '../../cli/commands/deployments.js';
import { CliError } from '../../cli/errors.js';
import { outputFormat, renderListing } from '../../cli/lib/output.js';
import type { DeploymentSummary, Run } from '../../protocol/api.js';

const run: Run = {
  id: 'k3x9q2m7a1bz',
  namespace: 'payments',
  deployment: 'api',
  container: 'app',
  image: 'img',
  command: ['ls'],
  user: 'alice',
  interactive: false,
  tty: false,
  status: 'succeeded',
  exitCode: 0,
  jobName: 'api-oddjob-k3x9q2m7a1bz',
  podName: 'api-oddjob-k3x9q2m7a1bz-x1',
  createdAt: '2024-05-02T11:58:00.000Z',
  startedAt: '2024-05-02T11:58:02.000Z',
  finishedAt: '2024-05-02T11:58:03.500Z',
  reason: 'INC-1',
  outputBytes: 3,
  outputTruncated: false,
};
const dep: DeploymentSummary = {
  namespace: 'payments',
  name: 'api',
  containers: [{ name: 'app', image: 'demo:1' }],
  defaultContainer: 'app',
  allowedTeams: [],
  allowedUsers: ['bob'],
};
const now = Date.parse('2024-05-02T12:00:00.000Z');
const render = (format: Parameters<typeof renderListing>[0], headers = true) => renderListing(format, { headers }, runsListing(now), [run]);

describe('listing formats', () => {
  test('-o json is one document: kind and the API objects as items', () => {
    assert.deepEqual(JSON.parse(render('json').stdout), { kind: 'RunList', items: [run] });
  });
  test('-o yaml is the same document', () => {
    assert.deepEqual(parseYaml(render('yaml').stdout), { kind: 'RunList', items: [run] });
  });
  test('-o json of nothing is an empty list, not silence', () => {
    assert.deepEqual(JSON.parse(renderListing('json', {}, runsListing(now), []).stdout), { kind: 'RunList', items: [] });
  });
  test('-o name: run ids; deployments the way kubectl names them (and oddjob run takes them)', () => {
    assert.equal(render('name').stdout, 'k3x9q2m7a1bz\n');
    assert.equal(renderListing('name', {}, deploymentsListing(), [dep]).stdout, 'deployment.apps/api\n');
  });
  test('-o wide adds columns after the usual ones', () => {
    const [head, row] = render('wide').stdout.split('\n');
    assert.match(head!, /^ID +STATUS +EXIT +DEPLOYMENT +USER +AGE +COMMAND +CONTAINER +STARTED +FINISHED +POD +REASON$/);
    assert.match(row!, /k3x9q2m7a1bz .* ls +app +2024-05-02T11:58:02Z +2024-05-02T11:58:03Z +api-oddjob-k3x9q2m7a1bz-x1 +INC-1$/);
    assert.match(renderListing('wide', {}, deploymentsListing(), [dep]).stdout.split('\n')[0]!, / IMAGES$/);
  });
  test('--no-headers drops the header line of table and wide alike', () => {
    assert.equal(render('table', false).stdout.split('\n').length, 2);
    assert.match(render('table', false).stdout, /^k3x9q2m7a1bz /);
    assert.match(render('wide', false).stdout, /^k3x9q2m7a1bz .*INC-1\n$/);
  });
  test('an empty table is a note on stderr, nothing on stdout', () => {
    assert.deepEqual(renderListing('table', {}, runsListing(now), []), { stdout: '', note: 'no runs match' });
  });
  test('--json and -o together are a usage error', () => {
    assert.throws(
      () => outputFormat({ json: true, output: 'yaml' }),
      (e: unknown) => e instanceof CliError && e.usage,
    );
    assert.equal(outputFormat({}), 'table');
  });
});
