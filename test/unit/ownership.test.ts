// Table-driven tests of which Kubernetes objects drive a run (server/runs/ownership.ts):
// a run-id label is a claim anyone can make; only the Job oddjob created (its uid) and
// the pod that Job controls count.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { jobAdoptableBy, jobBelongsTo, podBelongsTo } from '../../server/runs/ownership.js';

const run = {
  id: 'abcdefabcdef',
  namespace: 'team-a',
  jobName: 'api-oddjob-abcdefabcdef',
  jobUid: 'uid-1',
  podName: undefined as string | undefined,
  deployment: 'api',
  user: 'alice',
  command: ['node', '-e', '1'],
};

function job(over: { namespace?: string; name?: string; uid?: string; labels?: Record<string, string>; annotations?: Record<string, string> } = {}): V1Job {
  return {
    metadata: {
      namespace: over.namespace ?? 'team-a',
      name: over.name ?? run.jobName,
      uid: 'uid' in over ? over.uid : 'uid-1',
      labels: over.labels ?? { 'app.kubernetes.io/managed-by': 'oddjob', 'oddjob.io/run-id': run.id, 'oddjob.io/deployment': 'api' },
      annotations: over.annotations ?? { 'oddjob.io/run-id': run.id, 'oddjob.io/user': 'alice', 'oddjob.io/command': JSON.stringify(run.command) },
    },
  };
}

function pod(
  over: { namespace?: string; name?: string; owner?: Partial<{ apiVersion: string; kind: string; uid: string; controller: boolean }> | null } = {},
): V1Pod {
  const owner = over.owner === null ? undefined : { apiVersion: 'batch/v1', kind: 'Job', name: run.jobName, uid: 'uid-1', controller: true, ...over.owner };
  return {
    metadata: {
      namespace: over.namespace ?? 'team-a',
      name: over.name ?? `${run.jobName}-x7k2p`,
      labels: { 'oddjob.io/run-id': run.id },
      ownerReferences: owner ? [owner as never] : [],
    },
  };
}

describe('jobBelongsTo', () => {
  const cases: Array<{ name: string; j: V1Job; r?: Partial<typeof run>; ok: boolean; match?: RegExp }> = [
    { name: 'the Job oddjob created', j: job(), ok: true },
    { name: 'same labels in another served namespace', j: job({ namespace: 'team-b' }), ok: false, match: /namespace team-b/ },
    { name: 'another name', j: job({ name: 'evil' }), ok: false, match: /Job evil/ },
    { name: 'same name, recreated (another uid)', j: job({ uid: 'uid-2' }), ok: false, match: /uid uid-2/ },
    { name: 'run without a recorded uid', j: job(), r: { jobUid: undefined }, ok: false, match: /not known/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const v = jobBelongsTo({ ...run, ...c.r }, c.j);
      assert.equal(v.ok, c.ok);
      if (!v.ok) assert.match(v.why, c.match!);
    });
  }
});

describe('podBelongsTo', () => {
  const cases: Array<{ name: string; p: V1Pod; r?: Partial<typeof run>; ok: boolean; match?: RegExp }> = [
    { name: 'the pod the Job controls', p: pod(), ok: true },
    { name: 'the known pod again', p: pod(), r: { podName: `${run.jobName}-x7k2p` }, ok: true },
    { name: 'label-only spoof in another namespace', p: pod({ namespace: 'team-b', owner: null }), ok: false, match: /namespace team-b/ },
    { name: 'label-only spoof in the same namespace', p: pod({ owner: null }), ok: false, match: /not controlled by/ },
    { name: 'owner reference to another Job', p: pod({ owner: { uid: 'uid-9' } }), ok: false, match: /not controlled by/ },
    { name: 'owner reference that is not the controller', p: pod({ owner: { controller: false } }), ok: false, match: /not controlled by/ },
    {
      name: 'controller of another kind with the same uid',
      p: pod({ owner: { kind: 'ReplicaSet', apiVersion: 'apps/v1' } }),
      ok: false,
      match: /not controlled by/,
    },
    { name: 'a second pod once the run has one', p: pod({ name: 'other' }), r: { podName: `${run.jobName}-x7k2p` }, ok: false, match: /run's pod is/ },
    { name: 'run without a recorded uid', p: pod(), r: { jobUid: undefined }, ok: false, match: /not known/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const v = podBelongsTo({ ...run, ...c.r }, c.p);
      assert.equal(v.ok, c.ok);
      if (!v.ok) assert.match(v.why, c.match!);
    });
  }
});

describe('jobAdoptableBy (runs recorded before Job uids were stored)', () => {
  const legacy = { ...run, jobUid: undefined };
  const cases: Array<{ name: string; j: V1Job; ok: boolean; match?: RegExp }> = [
    { name: 'everything oddjob set for the run', j: job(), ok: true },
    { name: 'another namespace', j: job({ namespace: 'team-b' }), ok: false, match: /team-b/ },
    { name: 'not managed by oddjob', j: job({ labels: { 'oddjob.io/run-id': run.id, 'oddjob.io/deployment': 'api' } }), ok: false, match: /managed-by/ },
    {
      name: 'another user',
      j: job({ annotations: { 'oddjob.io/run-id': run.id, 'oddjob.io/user': 'mallory', 'oddjob.io/command': JSON.stringify(run.command) } }),
      ok: false,
      match: /oddjob\.io\/user/,
    },
    {
      name: 'another command',
      j: job({ annotations: { 'oddjob.io/run-id': run.id, 'oddjob.io/user': 'alice', 'oddjob.io/command': '["sh"]' } }),
      ok: false,
      match: /oddjob\.io\/command/,
    },
    { name: 'no uid', j: job({ uid: undefined }), ok: false, match: /no uid/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const v = jobAdoptableBy(legacy, c.j);
      assert.equal(v.ok, c.ok);
      if (!v.ok) assert.match(v.why, c.match!);
    });
  }
});
