// Table-driven tests of the Task core (server/tasks/): which specs are valid, and how
// values become argv — including hostile ones, which must stay one literal argument.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ParamError, resolveTaskCommand, type ParamValue } from '../../server/tasks/resolve.js';
import { validateTaskSpec, type ValidTask } from '../../server/tasks/spec.js';

const REINDEX = {
  deployment: 'api',
  container: 'app',
  command: ['node', 'scripts/reindex.js', '--merchant', '$(params.merchant)', '--dry-run=$(params.dryRun)', '--batch=$(params.batch)', '$(params.region)'],
  params: [
    { name: 'merchant', type: 'string', required: true, pattern: '^m_[a-z0-9]{8}$' },
    { name: 'dryRun', type: 'boolean', default: true },
    { name: 'batch', type: 'integer', min: 1, max: 1000, default: 100 },
    { name: 'region', type: 'choice', choices: ['eu', 'us'], default: 'eu' },
  ],
  allowedTeams: ['acme/payments'],
  allowedUsers: [],
  timeout: '30m',
};

function valid(spec: unknown): ValidTask {
  const v = validateTaskSpec(spec, 'acme');
  if (!v.ok) assert.fail(`expected a valid Task, got: ${v.problem}`);
  return v.task;
}

describe('validateTaskSpec', () => {
  test('the example Task of the issue is valid', () => {
    const t = valid(REINDEX);
    assert.equal(t.timeoutSeconds, 1800);
    assert.equal(t.spec.approval, 'none');
    assert.deepEqual(
      t.refs.map((r) => [r.index, r.prefix, r.name]),
      [
        [3, '', 'merchant'],
        [4, '--dry-run=', 'dryRun'],
        [5, '--batch=', 'batch'],
        [6, '', 'region'],
      ],
    );
  });

  const base = { deployment: 'api', command: ['echo', '$(params.x)'] };
  const cases: Array<{ name: string; spec: unknown; problem: RegExp }> = [
    { name: 'no spec', spec: undefined, problem: /spec\.deployment/ },
    { name: 'no command', spec: { deployment: 'api' }, problem: /spec\.command/ },
    { name: 'empty program', spec: { deployment: 'api', command: [''] }, problem: /must not be empty/ },
    { name: 'bad deployment name', spec: { deployment: 'API!', command: ['x'] }, problem: /spec\.deployment/ },
    { name: 'unknown param type', spec: { ...base, params: [{ name: 'x', type: 'float' }] }, problem: /spec\.params\.0/ },
    { name: 'bad param name', spec: { ...base, params: [{ name: 'x-y', type: 'string' }] }, problem: /parameter name/ },
    { name: 'undeclared reference', spec: { ...base, params: [] }, problem: /\$\(params\.x\), which is not declared/ },
    {
      name: 'reference in the middle',
      spec: { deployment: 'api', command: ['echo', 'a$(params.x)b'], params: [{ name: 'x', type: 'string' }] },
      problem: /whole element or at its end/,
    },
    {
      name: 'two references in one element',
      spec: { deployment: 'api', command: ['$(params.x)$(params.x)'], params: [{ name: 'x', type: 'string' }] },
      problem: /once per element/,
    },
    {
      name: 'malformed reference',
      spec: { deployment: 'api', command: ['echo', '$(params.x-y)'], params: [{ name: 'x', type: 'string' }] },
      problem: /whole element/,
    },
    {
      name: 'duplicate param',
      spec: {
        ...base,
        params: [
          { name: 'x', type: 'string' },
          { name: 'x', type: 'integer' },
        ],
      },
      problem: /declared twice/,
    },
    { name: 'bad regex', spec: { ...base, params: [{ name: 'x', type: 'string', pattern: '([a-z' }] }, problem: /not a valid regular expression/ },
    {
      name: 'default fails pattern',
      spec: { ...base, params: [{ name: 'x', type: 'string', pattern: '^[0-9]+$', default: 'abc' }] },
      problem: /does not match its pattern/,
    },
    { name: 'min above max', spec: { ...base, params: [{ name: 'x', type: 'integer', min: 5, max: 1 }] }, problem: /min 5 is above max 1/ },
    { name: 'default out of range', spec: { ...base, params: [{ name: 'x', type: 'integer', min: 1, max: 3, default: 9 }] }, problem: /outside min\/max/ },
    { name: 'non-integer default', spec: { ...base, params: [{ name: 'x', type: 'integer', default: 1.5 }] }, problem: /spec\.params\.0\.default/ },
    {
      name: 'choice default not a choice',
      spec: { ...base, params: [{ name: 'x', type: 'choice', choices: ['a'], default: 'b' }] },
      problem: /not one of the choices/,
    },
    { name: 'choice without choices', spec: { ...base, params: [{ name: 'x', type: 'choice', choices: [] }] }, problem: /choices/ },
    {
      name: 'required with default',
      spec: { ...base, params: [{ name: 'x', type: 'string', required: true, default: 'a' }] },
      problem: /cannot have a default/,
    },
    { name: 'bad timeout', spec: { ...base, params: [{ name: 'x', type: 'string' }], timeout: '30' }, problem: /spec\.timeout/ },
    { name: 'bad team', spec: { ...base, params: [{ name: 'x', type: 'string' }], allowedTeams: ['a/b/c'] }, problem: /spec\.allowedTeams: "a\/b\/c"/ },
    { name: 'bad approval', spec: { ...base, params: [{ name: 'x', type: 'string' }], approval: 'maybe' }, problem: /spec\.approval/ },
  ];
  for (const c of cases) {
    test(`invalid: ${c.name}`, () => {
      const v = validateTaskSpec(c.spec, 'acme');
      assert.equal(v.ok, false);
      if (!v.ok) assert.match(v.problem, c.problem);
    });
  }

  test('fields of later versions (schedule) are ignored, not refused', () => {
    valid({ ...REINDEX, schedule: { cron: '0 * * * *', timeZone: 'UTC' } });
  });
});

describe('resolveTaskCommand', () => {
  const task = valid(REINDEX);
  const argvOf = (given: Record<string, ParamValue>) => resolveTaskCommand(task, given);

  test('defaults fill what is not given; each type renders as text', () => {
    const r = argvOf({ merchant: 'm_12345678' });
    assert.deepEqual(r.argv, ['node', 'scripts/reindex.js', '--merchant', 'm_12345678', '--dry-run=true', '--batch=100', 'eu']);
    assert.deepEqual(r.values, { merchant: 'm_12345678', dryRun: true, batch: 100, region: 'eu' });
  });

  test('CLI strings are coerced per type; web form values are taken as typed', () => {
    assert.deepEqual(argvOf({ merchant: 'm_abcdefgh', dryRun: 'false', batch: '5', region: 'us' }).argv.slice(3), [
      'm_abcdefgh',
      '--dry-run=false',
      '--batch=5',
      'us',
    ]);
    assert.deepEqual(argvOf({ merchant: 'm_abcdefgh', dryRun: false, batch: 1000 }).argv.slice(3), ['m_abcdefgh', '--dry-run=false', '--batch=1000', 'eu']);
  });

  const refused: Array<{ name: string; given: Record<string, ParamValue>; problem: RegExp }> = [
    { name: 'missing required', given: {}, problem: /parameter merchant is required: pass --param merchant=VALUE/ },
    { name: 'pattern', given: { merchant: 'm_1' }, problem: /parameter merchant: must match \^m_\[a-z0-9\]\{8\}\$, got "m_1"/ },
    { name: 'shell in a patterned string', given: { merchant: 'x; rm -rf /' }, problem: /parameter merchant: must match/ },
    { name: 'newline after a valid value', given: { merchant: 'm_12345678\nrm -rf /' }, problem: /parameter merchant: must match/ },
    { name: 'integer as words', given: { merchant: 'm_12345678', batch: 'ten' }, problem: /parameter batch: must be a whole number, got "ten"/ },
    { name: 'integer as a fraction', given: { merchant: 'm_12345678', batch: 1.5 }, problem: /parameter batch: must be a whole number/ },
    { name: 'integer with a suffix', given: { merchant: 'm_12345678', batch: '5; ls' }, problem: /parameter batch: must be a whole number/ },
    { name: 'integer below min', given: { merchant: 'm_12345678', batch: '0' }, problem: /parameter batch: must be between 1 and 1000, got "0"/ },
    { name: 'integer above max', given: { merchant: 'm_12345678', batch: 1001 }, problem: /parameter batch: must be between 1 and 1000/ },
    { name: 'integer beyond 2^53', given: { merchant: 'm_12345678', batch: '9999999999999999' }, problem: /parameter batch: must be/ },
    { name: 'boolean as yes', given: { merchant: 'm_12345678', dryRun: 'yes' }, problem: /parameter dryRun: must be true or false/ },
    { name: 'choice outside', given: { merchant: 'm_12345678', region: 'ap' }, problem: /parameter region: must be one of eu, us, got "ap"/ },
    { name: 'choice by case', given: { merchant: 'm_12345678', region: 'EU' }, problem: /parameter region: must be one of/ },
    {
      name: 'unknown parameter',
      given: { merchant: 'm_12345678', merchnat: 'x' },
      problem: /parameter merchnat: this Task has no such parameter \(it takes: merchant, dryRun, batch, region\)/,
    },
    { name: 'string given as a number', given: { merchant: 12345678 }, problem: /parameter merchant: must be a string/ },
    {
      name: '__proto__ is not a parameter',
      given: JSON.parse('{"merchant":"m_12345678","__proto__":"x"}'),
      problem: /parameter __proto__: this Task has no such parameter/,
    },
  ];
  for (const c of refused) {
    test(`refused: ${c.name}`, () => {
      assert.throws(
        () => argvOf(c.given),
        (err: unknown) => err instanceof ParamError && c.problem.test(err.message),
      );
    });
  }

  test('every problem is reported at once', () => {
    assert.throws(
      () => argvOf({ batch: 'x', region: 'ap' }),
      (err: unknown) => err instanceof ParamError && err.problems.length === 3,
    );
  });

  // An unconstrained string: whatever it holds is exactly one argv element.
  const free = valid({ deployment: 'api', command: ['node', 'echo.js', '$(params.s)', '--tag=$(params.s)'], params: [{ name: 's', type: 'string' }] });
  const hostile = [
    'x; rm -rf /',
    '$(params.s)',
    '$(params.other)',
    '$(HOSTNAME)',
    '$$(HOSTNAME)',
    'a\nb\r\nc',
    '`id`',
    '\' " \\ ',
    ' leading and trailing ',
    '',
    '-rf',
    'é🙂\u202e',
    'x'.repeat(8000),
  ];
  for (const value of hostile) {
    test(`one literal argument: ${JSON.stringify(value).slice(0, 40)}`, () => {
      const r = resolveTaskCommand(free, { s: value });
      assert.deepEqual(r.argv, ['node', 'echo.js', value, `--tag=${value}`]);
      // The Job's command doubles every $ so the kubelet's $(VAR) expansion gives back the value.
      assert.deepEqual(r.jobCommand, ['node', 'echo.js', value.replaceAll('$', '$$$$'), `--tag=${value.replaceAll('$', '$$$$')}`]);
    });
  }

  test('values too large for one request are refused', () => {
    assert.throws(() => resolveTaskCommand(free, { s: 'x'.repeat(8193) }), /parameter s: must be at most 8192 bytes/);
    const many = valid({
      deployment: 'api',
      command: ['node', ...Array.from({ length: 5 }, (_, i) => `$(params.p${i})`)],
      params: Array.from({ length: 5 }, (_, i) => ({ name: `p${i}`, type: 'string' })),
    });
    const big = Object.fromEntries(Array.from({ length: 5 }, (_, i) => [`p${i}`, 'y'.repeat(8000)]));
    assert.throws(() => resolveTaskCommand(many, big), /the whole command would be \d+ bytes, above the limit of 32768/);
    // A value that fits alone but not once its $ are doubled for the kubelet.
    assert.throws(() => resolveTaskCommand(free, { s: '$'.repeat(5000) }), /over 8192 bytes/);
  });

  test('NUL bytes are refused', () => {
    assert.throws(() => resolveTaskCommand(free, { s: 'a\u0000b' }), /parameter s: must not contain NUL bytes/);
  });

  test('an optional parameter left out drops its element', () => {
    const t = valid({ deployment: 'api', command: ['node', 'x.js', '--since=$(params.since)', 'end'], params: [{ name: 'since', type: 'string' }] });
    assert.deepEqual(resolveTaskCommand(t, {}).argv, ['node', 'x.js', 'end']);
    assert.deepEqual(resolveTaskCommand(t, { since: '1h' }).argv, ['node', 'x.js', '--since=1h', 'end']);
  });
});
