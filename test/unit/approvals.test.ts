// Table-driven tests of the pure four-eyes rules (server/approvals/policy.ts) and the
// request store's compare-and-set (server/store/approvals.ts), on a real SQLite file and a
// real PostgreSQL server.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { approvalRequired, approverPolicy, decideApprover, describeChange, manifestHash, pinImages, samePerson } from '../../server/approvals/policy.js';
import type { StoredApproval } from '../../server/store/approvals.js';
import { copyStore } from '../../server/store/copy.js';
import { parseAccessPolicy } from '../../server/policy/decide.js';
import { ENGINES, testStores } from '../support/stores.js';

const runPolicy = parseAccessPolicy({ 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/allowed-users': 'alice' }, 'acme');

describe('approvalRequired', () => {
  const cases: Array<[string, Record<string, string> | undefined, { approval: 'required' | 'none' } | undefined, boolean]> = [
    ['no annotation', {}, undefined, false],
    ['required', { 'oddjob.io/approval': 'required' }, undefined, true],
    ['Required, padded', { 'oddjob.io/approval': ' Required ' }, undefined, true],
    ['anything else', { 'oddjob.io/approval': 'yes' }, undefined, false],
    ['a Task follows its own field, not the Deployment', { 'oddjob.io/approval': 'required' }, { approval: 'none' }, false],
    ['a Task that requires it', {}, { approval: 'required' }, true],
  ];
  for (const [name, ann, task, want] of cases) test(name, () => assert.equal(approvalRequired({ deploymentAnnotations: ann, task }), want));
});

describe('decideApprover', () => {
  const alice = { login: 'alice', id: 1, teams: ['acme/payments'] };
  const approvers = approverPolicy({ 'oddjob.io/approvers': 'acme/payments-leads, carol' }, runPolicy, 'acme');
  const cases: Array<{ name: string; who: { login: string; id?: number; teams: string[] }; policy?: typeof approvers; allow: boolean; code?: string }> = [
    { name: 'a listed user', who: { login: 'carol', id: 3, teams: [] }, allow: true },
    { name: 'a listed user, other case', who: { login: 'Carol', id: 3, teams: [] }, allow: true },
    { name: 'a member of a listed team', who: { login: 'erin', id: 5, teams: ['acme/payments-leads'] }, allow: true },
    { name: 'someone who may run but is not an approver', who: { login: 'bob', id: 2, teams: ['acme/payments'] }, allow: false, code: 'not_approver' },
    {
      name: 'the requester, even if listed',
      who: { ...alice },
      policy: approverPolicy({ 'oddjob.io/approvers': 'alice' }, runPolicy),
      allow: false,
      code: 'self',
    },
    {
      name: 'the requester under a new login (same GitHub id)',
      who: { login: 'alice-renamed', id: 1, teams: [] },
      policy: approverPolicy({ 'oddjob.io/approvers': 'alice-renamed' }, runPolicy),
      allow: false,
      code: 'self',
    },
    {
      name: "a new account under the requester's old login (other id)",
      who: { login: 'alice', id: 99, teams: [] },
      policy: approverPolicy({ 'oddjob.io/approvers': 'alice' }, runPolicy),
      allow: true,
    },
    { name: 'default approvers: whoever may run', who: { login: 'bob', id: 2, teams: ['acme/payments'] }, policy: approverPolicy({}, runPolicy), allow: true },
    { name: 'no ids (dev mode): by login', who: { login: 'ALICE', teams: [] }, policy: approverPolicy({}, runPolicy), allow: false, code: 'self' },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideApprover({
        approvers: c.policy ?? approvers,
        identity: c.who,
        requester: c.who.id === undefined ? { login: 'alice' } : alice,
        where: 'payments/api',
      });
      assert.equal(d.allow, c.allow);
      if (!d.allow) assert.equal(d.code, c.code);
    });
  }
  test('samePerson prefers the GitHub id', () => {
    assert.equal(samePerson({ login: 'a', id: 1 }, { login: 'b', id: 1 }), true);
    assert.equal(samePerson({ login: 'a', id: 1 }, { login: 'a', id: 2 }), false);
    assert.equal(samePerson({ login: 'a' }, { login: 'A', id: 2 }), true);
  });
});

const job = (image: string, extra: object = {}): V1Job => ({
  apiVersion: 'batch/v1',
  kind: 'Job',
  metadata: { name: 'api-oddjob-x', namespace: 'ns' },
  spec: { template: { spec: { restartPolicy: 'Never', containers: [{ name: 'app', image, command: ['echo'], ...extra }] } } },
});
const DIGEST = `sha256:${'a'.repeat(64)}`;
const pod = (image: string, imageID: string, phase = 'Running'): V1Pod => ({
  spec: { containers: [{ name: 'app', image }] },
  status: { phase, containerStatuses: [{ name: 'app', image, imageID, ready: true, restartCount: 0 }] },
});

describe('manifests', () => {
  test('the hash ignores key order and sees every change', () => {
    const a = job('demo:1');
    const b = JSON.parse(JSON.stringify({ spec: a.spec, metadata: a.metadata, kind: a.kind, apiVersion: a.apiVersion })) as V1Job;
    assert.equal(manifestHash(a), manifestHash(b));
    assert.notEqual(manifestHash(a), manifestHash(job('demo:2')));
    assert.match(manifestHash(a), /^[0-9a-f]{64}$/);
  });

  const pins: Array<{ name: string; image: string; pods: V1Pod[]; want: string }> = [
    {
      name: 'a running pod reports the digest',
      image: 'docker.io/oddjob/demo:0.1.0',
      pods: [pod('docker.io/oddjob/demo:0.1.0', `docker.io/oddjob/demo@${DIGEST}`)],
      want: `docker.io/oddjob/demo@${DIGEST}`,
    },
    {
      name: 'docker-pullable prefix',
      image: 'registry:5000/x/y:tag',
      pods: [pod('registry:5000/x/y:tag', `docker-pullable://registry:5000/x/y@${DIGEST}`)],
      want: `registry:5000/x/y@${DIGEST}`,
    },
    { name: 'no pod: stays as written', image: 'demo:1', pods: [], want: 'demo:1' },
    { name: 'a pod of another image does not pin', image: 'demo:1', pods: [pod('demo:2', `demo@${DIGEST}`)], want: 'demo:1' },
    { name: 'an imageID of another repository does not pin', image: 'demo:1', pods: [pod('demo:1', `evil/demo@${DIGEST}`)], want: 'demo:1' },
    { name: 'an imageID without a repository digest does not pin', image: 'demo:1', pods: [pod('demo:1', DIGEST)], want: 'demo:1' },
    {
      name: 'an image already by digest stays',
      image: `demo@${DIGEST}`,
      pods: [pod(`demo@${DIGEST}`, `demo@sha256:${'b'.repeat(64)}`)],
      want: `demo@${DIGEST}`,
    },
  ];
  for (const c of pins) {
    test(`pinImages: ${c.name}`, () => {
      const j = job(c.image);
      const { job: pinned } = pinImages(j, c.pods);
      assert.equal(pinned.spec!.template.spec!.containers[0]!.image, c.want);
      assert.equal(j.spec!.template.spec!.containers[0]!.image, c.image, 'the input is not changed');
    });
  }

  test('describeChange names an image change', () => {
    assert.match(describeChange(job('demo:1'), job('demo:2')), /container app's image changed from demo:1 to demo:2/);
    assert.match(describeChange(job('demo:1'), job('demo:1', { env: [{ name: 'A', value: 'b' }] })), /container app changed/);
  });
});

const stores = testStores('approvals');

const record = (id: string): StoredApproval => ({
  id,
  status: 'pending',
  namespace: 'ns',
  deployment: 'api',
  container: 'app',
  image: 'demo:1',
  command: ['echo'],
  requester: { login: 'alice', id: 1 },
  approvers: 'users carol',
  runId: 'r'.repeat(12),
  manifestHash: 'h',
  job: {},
  createdAt: new Date().toISOString(),
  expiresAt: new Date(Date.now() + 60_000).toISOString(),
  baseHash: 'b',
  input: { kind: 'deploy', req: { namespace: 'ns', deployment: 'api', command: ['echo'], interactive: false, tty: false, noSidecars: false } },
  requesterTeams: [],
});

for (const engine of ENGINES) {
  describe(`approval request store (${engine})`, () => {
    test('a request is decided once: of deciders racing on two connections, exactly one wins', async () => {
      const a = await stores.open(engine);
      // Another replica: its own connection (SQLite) or pool (PostgreSQL) to the same database.
      const b = await stores.reopen(a.target);
      const ids = Array.from({ length: 50 }, (_, i) => `req${String(i).padStart(9, '0')}`);
      for (const id of ids) await a.approvals.create(record(id));
      // Four deciders per request, two on each replica, all at once.
      const deciders = [
        { store: a.approvals, patch: { status: 'approved' as const, decidedBy: { login: 'carol', id: 3 } } },
        { store: b.approvals, patch: { status: 'denied' as const, decidedBy: { login: 'erin', id: 5 }, reason: 'no' } },
        { store: a.approvals, patch: { status: 'expired' as const } },
        { store: b.approvals, patch: { status: 'void' as const, message: 'changed' } },
      ];
      await Promise.all(
        ids.map(async (id) => {
          const results = await Promise.all(deciders.map((d) => d.store.decide(id, d.patch)));
          const winners = results.filter((r) => r !== undefined);
          assert.equal(winners.length, 1, `request ${id}: ${winners.length} deciders won`);
          const stored = (await b.approvals.get(id))!;
          assert.equal(stored.status, winners[0]!.status);
          assert.deepEqual(stored, winners[0], "what is stored is the winner's decision, whole");
        }),
      );
      assert.equal(await a.approvals.decide(ids[0]!, { status: 'expired' }), undefined, 'a decided request stays decided');
      assert.equal(await a.approvals.decide('nosuchrequest', { status: 'approved' }), undefined);
      assert.deepEqual(await a.approvals.list({ status: 'pending', limit: 10 }), []);
    });

    test('listing is newest first, by status, bounded; a note keeps the status', async () => {
      const a = await stores.open(engine);
      const b = await stores.reopen(a.target);
      await a.approvals.create(record('aaaaaaaaaaaa'));
      await a.approvals.create(record('bbbbbbbbbbbb'));
      await a.approvals.create(record('cccccccccccc'));
      await b.approvals.decide('bbbbbbbbbbbb', { status: 'approved', decidedBy: { login: 'carol', id: 3 } });
      assert.deepEqual(
        (await b.approvals.list({ limit: 10 })).map((r) => r.id),
        ['cccccccccccc', 'bbbbbbbbbbbb', 'aaaaaaaaaaaa'],
      );
      assert.deepEqual(
        (await b.approvals.list({ status: 'pending', limit: 1 })).map((r) => r.id),
        ['cccccccccccc'],
      );
      await a.approvals.note('bbbbbbbbbbbb', 'the Job could not be created');
      const noted = (await b.approvals.get('bbbbbbbbbbbb'))!;
      assert.equal(noted.status, 'approved');
      assert.equal(noted.message, 'the Job could not be created');
      await assert.rejects(a.approvals.create(record('aaaaaaaaaaaa')), 'an id is created once');
    });
  });
}

test('db migrate-to carries approval requests from SQLite into PostgreSQL, in order, decided ones as decided', async () => {
  const from = await stores.open('sqlite');
  for (const id of ['aaaaaaaaaaaa', 'bbbbbbbbbbbb', 'cccccccccccc']) await from.approvals.create(record(id));
  await from.approvals.decide('bbbbbbbbbbbb', { status: 'approved', decidedBy: { login: 'carol', id: 3 } });
  const to = await stores.open('postgres');
  const report = await copyStore(from, to);
  assert.equal(report.approvals, 3);
  assert.deepEqual(await to.approvals.list({ limit: 10 }), await from.approvals.list({ limit: 10 }));
  assert.equal(await to.approvals.decide('bbbbbbbbbbbb', { status: 'denied' }), undefined, 'still decided in the copy');
  assert.ok(await to.approvals.decide('cccccccccccc', { status: 'denied' }), 'still pending in the copy');
});
