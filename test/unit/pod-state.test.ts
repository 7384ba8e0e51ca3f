// Table-driven tests of how pod and Job status translate into what the user is told.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { V1Job, V1Pod } from '@kubernetes/client-node';
import { interpretJob, interpretPod } from '../../server/runs/pod-state.js';

const pod = (status: V1Pod['status'], spec: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: { name: 'p' },
  spec: { containers: [{ name: 'app' }], ...spec } as V1Pod['spec'],
  status,
});
const scheduled = { type: 'PodScheduled', status: 'True' };

describe('interpretPod', () => {
  const cases: Array<[string, V1Pod, string, RegExp?]> = [
    ['no status yet', pod({}), 'starting', /scheduler/],
    [
      'unschedulable',
      pod({ conditions: [{ type: 'PodScheduled', status: 'False', reason: 'Unschedulable', message: '0/1 nodes are available' }] }),
      'starting',
      /Unschedulable: 0\/1 nodes/,
    ],
    [
      'creating',
      pod({
        conditions: [scheduled],
        containerStatuses: [{ name: 'app', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ContainerCreating' } } }],
      }),
      'starting',
      /creating the container/,
    ],
    [
      'image pull fails',
      pod({
        conditions: [scheduled],
        containerStatuses: [
          { name: 'app', image: 'i', imageID: '', ready: false, restartCount: 0, state: { waiting: { reason: 'ErrImagePull', message: 'not found' } } },
        ],
      }),
      'cannot-start',
      /ErrImagePull: not found/,
    ],
    [
      'missing secret',
      pod({
        conditions: [scheduled],
        containerStatuses: [
          {
            name: 'app',
            image: 'i',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'CreateContainerConfigError', message: 'secret "x" not found' } },
          },
        ],
      }),
      'cannot-start',
      /secret "x" not found/,
    ],
    [
      'running',
      pod({ conditions: [scheduled], containerStatuses: [{ name: 'app', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }),
      'running',
    ],
    [
      'other container running only',
      pod({ conditions: [scheduled], containerStatuses: [{ name: 'other', image: 'i', imageID: '', ready: true, restartCount: 0, state: { running: {} } }] }),
      'starting',
    ],
    [
      'failed init container',
      pod(
        {
          conditions: [scheduled],
          initContainerStatuses: [{ name: 'migrate', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 2 } } }],
        },
        { initContainers: [{ name: 'migrate' }] },
      ),
      'cannot-start',
      /init container migrate failed with exit code 2/,
    ],
    [
      'sidecar init container exiting is not a failure',
      pod(
        {
          conditions: [scheduled],
          initContainerStatuses: [{ name: 'proxy', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 137 } } }],
        },
        { initContainers: [{ name: 'proxy', restartPolicy: 'Always' }] },
      ),
      'starting',
    ],
    ['pod failed before the container', pod({ phase: 'Failed', reason: 'Evicted', message: 'low memory' }), 'cannot-start', /Evicted.*low memory/],
  ];
  for (const [name, p, kind, message] of cases) {
    test(name, () => {
      const v = interpretPod(p, 'app');
      assert.equal(v.kind, kind);
      if (message) assert.match(v.kind === 'starting' ? v.progress : v.kind === 'cannot-start' ? v.message : '', message);
    });
  }

  test('a terminated container reports its exit code', () => {
    const v = interpretPod(
      pod({
        containerStatuses: [{ name: 'app', image: 'i', imageID: '', ready: false, restartCount: 0, state: { terminated: { exitCode: 7, reason: 'Error' } } }],
      }),
      'app',
    );
    assert.deepEqual(v, { kind: 'terminated', exitCode: 7, reason: 'Error' });
  });
});

describe('interpretJob', () => {
  const job = (conditions: Array<{ type: string; status: string; reason?: string }>): V1Job => ({
    spec: { activeDeadlineSeconds: 3, template: {} },
    status: { conditions },
  });
  test('deadline', () =>
    assert.deepEqual(interpretJob(job([{ type: 'Failed', status: 'True', reason: 'DeadlineExceeded' }])), {
      kind: 'deadline',
      message: 'the run hit its time limit (3s)',
    }));
  test('deadline announced by FailureTarget (1.31+) before Failed', () =>
    assert.equal(interpretJob(job([{ type: 'FailureTarget', status: 'True', reason: 'DeadlineExceeded' }])).kind, 'deadline'));
  test('failed', () => assert.equal(interpretJob(job([{ type: 'Failed', status: 'True', reason: 'BackoffLimitExceeded' }])).kind, 'failed'));
  test('complete', () => assert.equal(interpretJob(job([{ type: 'Complete', status: 'True' }])).kind, 'complete'));
  test('a condition that is not True does not count', () =>
    assert.equal(interpretJob(job([{ type: 'Failed', status: 'False', reason: 'DeadlineExceeded' }])).kind, 'active'));
  test('active', () => assert.equal(interpretJob(job([])).kind, 'active'));
});
