// Which Events count as being about a run's pod, and how they read (server/runs/pod-events.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { CoreV1Event } from '@kubernetes/client-node';
import { describePodEvent } from '../../server/runs/pod-events.js';

const pod = { namespace: 'shop', name: 'api-oddjob-abc-xyz12', uid: '1111-2222' };
const event = (over: Partial<CoreV1Event> = {}, about: Partial<CoreV1Event['involvedObject']> = {}): CoreV1Event => ({
  metadata: { name: 'e1', namespace: 'shop', uid: 'ev-1' },
  involvedObject: { kind: 'Pod', namespace: 'shop', name: pod.name, uid: pod.uid, ...about },
  reason: 'Scheduled',
  message: 'Successfully assigned shop/api-oddjob-abc-xyz12 to node-1',
  type: 'Normal',
  ...over,
});

const cases: Array<[string, CoreV1Event, string | undefined]> = [
  ['scheduled', event(), 'Scheduled: Successfully assigned shop/api-oddjob-abc-xyz12 to node-1'],
  ['another pod uid (same name)', event({}, { uid: '9999' }), undefined],
  ['another pod name (same uid)', event({}, { name: 'other' }), undefined],
  ['not a pod', event({}, { kind: 'Job' }), undefined],
  ['another namespace', event({}, { namespace: 'evil' }), undefined],
  ['event object in another namespace', event({ metadata: { name: 'e', namespace: 'evil' } }), undefined],
  ['no message', event({ message: undefined, reason: 'Started' }), 'Started'],
  ['repeated', event({ reason: 'BackOff', message: 'Back-off pulling image', count: 4 }), 'BackOff: Back-off pulling image (x4)'],
  ['escapes', event({ reason: 'X\x1b[2J', message: 'a\x1b]0;t\x07b\u202ec\nd' }), 'X\\x1b[2J: a\\x1b]0;t\\x07b\\u202ec\\nd'],
  ['long', event({ message: 'y'.repeat(10_000) }), `Scheduled: ${'y'.repeat(299)}…`],
];

for (const [name, ev, want] of cases) {
  test(`pod event: ${name}`, () => {
    assert.equal(describePodEvent(ev, pod)?.message, want);
  });
}

test('pod event: one key per Event object, however often it counts up', () => {
  const a = describePodEvent(event({ count: 2 }), pod)!;
  const c = describePodEvent(event({ count: 3 }), pod)!;
  const other = describePodEvent(event({ metadata: { name: 'e2', namespace: 'shop', uid: 'ev-2' } }), pod)!;
  assert.equal(a.key, c.key);
  assert.notEqual(a.key, other.key);
  assert.equal(describePodEvent(event({ type: 'Warning' }), pod)!.type, 'Warning');
  assert.equal(describePodEvent(event({ type: 'Bogus' }), pod)!.type, 'Normal');
});
