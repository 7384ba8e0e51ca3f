// Path completion inside an image (server/deployments/path-index.ts): which roots an
// owner may declare, what of a listing is kept, and what a word completes to.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { checkWord, completePath, parseListing, parseRoots } from '../../server/deployments/path-index.js';
import { indexJob } from '../../server/jobs/index-job.js';
import { optedInDeployment } from '../support/cluster.js';

describe('completion roots (oddjob.io/completion-paths)', () => {
  const cases: Array<[string | undefined, string[] | RegExp]> = [
    [undefined, /declares no oddjob.io\/completion-paths/],
    ['', /declares no/],
    ['/app/scripts', ['/app/scripts']],
    [' /app/scripts/ , /opt/tools,/app/scripts', ['/app/scripts', '/opt/tools']],
    ['/', ['/']],
    ['app/scripts', /not a plain absolute directory/],
    ['/app/../etc', /not a plain absolute directory/],
    ['/app/./x', /not a plain absolute directory/],
    ['/app//x', /not a plain absolute directory/],
    ['/app/$(reboot)', /not a plain absolute directory/],
    ['/app/`id`', /not a plain absolute directory/],
    ['/app/a b', /not a plain absolute directory/],
    ['/app/-rf', ['/app/-rf']],
    ['/app/x\n/etc', /not a plain absolute directory/],
    [Array.from({ length: 9 }, (_, i) => `/r${i}`).join(','), /at most 8/],
  ];
  for (const [annotation, want] of cases) {
    test(JSON.stringify(annotation), () => {
      const r = parseRoots(annotation);
      if (want instanceof RegExp) {
        assert.equal(r.ok, false);
        assert.match((r as { why: string }).why, want);
      } else assert.deepEqual(r, { ok: true, roots: want });
    });
  }
});

describe('the listing', () => {
  const listing = [
    '/app',
    '/app/scripts/',
    '/app/scripts/db/',
    '/app/scripts/hello.js',
    '/app/scripts/db/migrate.js',
    '/etc/passwd',
    '/app/scripts/\x1b[2Jevil.js',
    '/app/scripts/../x',
    '',
  ].join('\n');
  const index = parseListing(listing, ['/app/scripts'])!;

  test('keeps only what is under the roots and safe to show, plus the roots’ parents', () => {
    assert.deepEqual(index, { cwd: '/app', entries: ['/app/', '/app/scripts/', '/app/scripts/db/', '/app/scripts/db/migrate.js', '/app/scripts/hello.js'] });
  });
  test('without a working directory there is no index', () => {
    assert.equal(parseListing('', ['/app']), undefined);
    assert.equal(parseListing('relative\n/app/x', ['/app']), undefined);
  });
  test('a huge listing is cut', () => {
    const big = ['/', ...Array.from({ length: 30_000 }, (_, i) => `/data/f${i}`)].join('\n');
    assert.equal(parseListing(big, ['/data'])!.entries.length, 20_000);
  });

  const words: Array<[string, string[]]> = [
    ['', ['scripts/']],
    ['scr', ['scripts/']],
    ['scripts/', ['scripts/db/', 'scripts/hello.js']],
    ['scripts/h', ['scripts/hello.js']],
    ['scripts/db/', ['scripts/db/migrate.js']],
    ['./scripts/', ['./scripts/db/', './scripts/hello.js']],
    ['/app/scripts/', ['/app/scripts/db/', '/app/scripts/hello.js']],
    ['/a', ['/app/']],
    ['/etc/', []],
    ['scripts/../../etc/', []],
    ['nope/', []],
  ];
  for (const [word, want] of words) {
    test(`completes ${JSON.stringify(word)}`, () => assert.deepEqual(completePath(index, word), want));
  }
  test('words with tricks are refused', () => {
    assert.equal(checkWord('../etc').ok, false);
    assert.equal(checkWord('a\x1bb').ok, false);
    assert.equal(checkWord('x'.repeat(2000)).ok, false);
    assert.equal(checkWord('scripts/he').ok, true);
  });
});

describe('the listing Job', () => {
  test('takes the image and what admits it, and nothing that carries secrets or traffic', () => {
    const d = optedInDeployment('api', {}, 'shop');
    const spec = d.spec!.template.spec!;
    spec.serviceAccountName = 'api-sa';
    spec.imagePullSecrets = [{ name: 'pull' }];
    spec.securityContext = { runAsNonRoot: true, runAsUser: 1000 };
    spec.volumes = [{ name: 'creds', secret: { secretName: 'creds' } }];
    spec.containers[0]!.env = [{ name: 'API_KEY', valueFrom: { secretKeyRef: { name: 'creds', key: 'k' } } }];
    spec.containers[0]!.volumeMounts = [{ name: 'creds', mountPath: '/creds' }];
    spec.containers[0]!.securityContext = { allowPrivilegeEscalation: false };
    const job = indexJob(d, 'app', ['/app/scripts', '/opt/x y'], 'abcd1234');
    const pod = job.spec!.template.spec!;
    assert.equal(job.metadata!.name, 'api-oddjob-paths-abcd1234');
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.serviceAccountName, undefined);
    assert.equal(pod.volumes, undefined);
    assert.deepEqual(pod.imagePullSecrets, [{ name: 'pull' }]);
    assert.deepEqual(pod.securityContext, { runAsNonRoot: true, runAsUser: 1000 });
    assert.deepEqual(job.spec!.template.metadata!.labels, { 'oddjob.io/purpose': 'completion-index' });
    const c = pod.containers[0]!;
    assert.equal(c.env, undefined);
    assert.equal(c.volumeMounts, undefined);
    assert.deepEqual(c.securityContext, { allowPrivilegeEscalation: false });
    // The roots are arguments, never script text.
    assert.deepEqual(c.command!.slice(0, 2), ['sh', '-c']);
    assert.doesNotMatch(c.command![2]!, /app|opt/);
    assert.deepEqual(c.command!.slice(3), ['oddjob-paths', '/app/scripts', '/opt/x y']);
  });
});
