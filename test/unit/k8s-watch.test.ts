// ResourceWatch (server/k8s/watch.ts) against a local server replaying the API
// server's recorded answers (test/fixtures/k8s/): the failure paths a real
// cluster produces only by chance — 410 Gone, a watch that goes silent, a
// refused watch, a connection cut mid-stream, a failing list. Timers are mocked:
// the watchdog and the backoff fire when the test says so, not after real waits.
import { after, afterEach, beforeEach, describe, mock, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import pino from 'pino';
import { ResourceWatch, type WatchEventType } from '../../server/k8s/watch.js';
import { metrics } from '../../server/metrics.js';
import { fixture, sendStatus, startKubeReplay, startStream, type Call, type KubeReplay } from '../support/kube-replay.js';

const NS = 'h14-capture';
const PATH = `/api/v1/namespaces/${NS}/configmaps`;
const LIST = fixture('configmaps-list.json'); // a, b, kube-root-ca.crt at 894
const RELIST = fixture('configmaps-relist.json'); // a, c, kube-root-ca.crt at 941
const WATCH = fixture('configmaps-watch.ndjson'); // MODIFIED a, ADDED c, DELETED b, BOOKMARK 898
const EXPIRED = fixture('watch-expired.ndjson'); // ERROR: Status 410 Expired
const REFUSED = fixture('watch-invalid-rv-500.json');
const TIMEOUT_SECONDS = 60; // the watchdog fires 30 s after the server-side timeout

const isWatch = (c: Call) => c.query.get('watch') === 'true';
const rv = (c: Call) => c.query.get('resourceVersion');

interface Harness {
  replay: KubeReplay;
  watch: ResourceWatch<k8s.V1ConfigMap>;
  events: string[];
  /** Resolves once the watch has logged that it will retry (its backoff timer is then set). */
  retryScheduled(): Promise<void>;
}

async function harness(handle: (call: Call, n: number) => void): Promise<Harness> {
  let n = 0;
  const logs: string[] = [];
  const replay = await startKubeReplay((call) => handle(call, ++n));
  const core = replay.kc.makeApiClient(k8s.CoreV1Api);
  const watch = new ResourceWatch<k8s.V1ConfigMap>({
    kc: replay.kc,
    path: PATH,
    list: () => core.listNamespacedConfigMap({ namespace: NS }),
    logger: pino({ level: 'warn' }, { write: (line: string) => void logs.push((JSON.parse(line) as { msg: string }).msg) }),
    timeoutSeconds: TIMEOUT_SECONDS,
  });
  const events: string[] = [];
  watch.on((type: WatchEventType, cm) => events.push(`${type} ${cm.metadata?.name}`));
  let retries = 0;
  const retryScheduled = async () => {
    retries++;
    await until(() => logs.filter((m) => m === 'watch failed; retrying').length >= retries);
  };
  return { replay, watch, events, retryScheduled };
}

/** oddjob_watch_restarts_total for the watched configmaps, by reason, as an operator scrapes it. */
async function restarts(): Promise<Record<string, number>> {
  const byReason: Record<string, number> = {};
  for (const v of (await metrics.watchRestarts.get()).values) {
    if (v.labels.resource === 'configmaps') byReason[String(v.labels.reason)] = v.value;
  }
  return byReason;
}
/** What the counter gained while `during` ran. */
async function restartsDuring(during: () => Promise<void>): Promise<Record<string, number>> {
  const before = await restarts();
  await during();
  const after = await restarts();
  return Object.fromEntries(Object.entries(after).flatMap(([k, v]) => (v === (before[k] ?? 0) ? [] : [[k, v - (before[k] ?? 0)]])));
}

const names = (w: ResourceWatch<k8s.V1ConfigMap>) =>
  w
    .list()
    .map((c) => c.metadata!.name)
    .sort();

describe('ResourceWatch against replayed API-server answers', { timeout: 30_000 }, () => {
  let h: Harness | undefined;
  beforeEach(() => mock.timers.enable({ apis: ['setTimeout'] }));
  afterEach(async () => {
    h?.watch.stop();
    await h?.replay.close();
    h = undefined;
    mock.timers.reset();
  });
  after(() => mock.timers.reset());

  test('lists, watches from the list, and re-watches from the last bookmark when the server ends the watch', async () => {
    h = await harness((call) => {
      if (!isWatch(call)) return sendStatus(call.res, 200, LIST);
      startStream(call.res, 'application/json');
      if (rv(call) === '894') call.res.end(WATCH); // the server-side timeout ends it cleanly
    });
    let rewatch!: Call;
    const counted = await restartsDuring(async () => {
      h!.watch.start();
      await h!.watch.whenSynced();
      rewatch = await h!.replay.call(3);
    });
    assert.deepEqual(counted, {}, 'a watch the server ends on schedule is not a restart');
    assert.ok(isWatch(rewatch));
    assert.equal(rv(rewatch), '898', 'from the BOOKMARK, not from the list: nothing replayed, nothing missed');
    assert.equal(rewatch.query.get('allowWatchBookmarks'), 'true');
    assert.equal(rewatch.query.get('timeoutSeconds'), String(TIMEOUT_SECONDS));
    assert.equal(h.replay.calls.filter((c) => !isWatch(c)).length, 1, 'no relist');
    assert.deepEqual(h.events, ['ADDED a', 'ADDED b', 'ADDED kube-root-ca.crt', 'MODIFIED a', 'ADDED c', 'DELETED b']);
    assert.deepEqual(names(h.watch), ['a', 'c', 'kube-root-ca.crt']);
    assert.equal(h.watch.get('a')?.data?.k, '3');
  });

  test('410 Gone (an ERROR event) relists, reconciles what changed meanwhile, and watches from the new list', async () => {
    h = await harness((call, n) => {
      if (!isWatch(call)) return sendStatus(call.res, 200, n === 1 ? LIST : RELIST);
      startStream(call.res, 'application/json');
      if (rv(call) === '894') call.res.write(EXPIRED); // and the stream stays open, as the API server's does
    });
    let relist!: Call;
    const counted = await restartsDuring(async () => {
      h!.watch.start();
      relist = await h!.replay.call(3);
    });
    assert.deepEqual(counted, { expired: 1 });
    assert.ok(!isWatch(relist), 'the call after 410 is a list');
    const rewatch = await h.replay.call(4);
    assert.equal(rv(rewatch), '941');
    // b went away and c arrived while we were not watching: the relist says so.
    assert.deepEqual(h.events.slice(3), ['MODIFIED a', 'ADDED c', 'MODIFIED kube-root-ca.crt', 'DELETED b']);
    assert.deepEqual(names(h.watch), ['a', 'c', 'kube-root-ca.crt']);
  });

  test('a watch that goes silent is aborted by the watchdog and resumed from the last event seen', async () => {
    h = await harness((call) => {
      if (!isWatch(call)) return sendStatus(call.res, 200, LIST);
      startStream(call.res, 'application/json');
      // The first watch delivers the MODIFIED event, then nothing, ever (a dead path that keeps the socket).
      if (rv(call) === '894') call.res.write(`${WATCH.split('\n')[0]}\n`);
    });
    h.watch.start();
    await h.replay.call(2);
    await until(() => h!.events.includes('MODIFIED a'));
    assert.equal(h.replay.calls.length, 2, 'no re-watch while the watch is merely quiet');
    let rewatch!: Call;
    const counted = await restartsDuring(async () => {
      mock.timers.tick((TIMEOUT_SECONDS + 30) * 1000);
      rewatch = await h!.replay.call(3);
    });
    assert.deepEqual(counted, { silent: 1 });
    assert.ok(isWatch(rewatch));
    assert.equal(rv(rewatch), '896', 'resumed after the MODIFIED event (896), no relist');
    assert.ok(await closed(h.replay.calls[1]!), 'the silent request was aborted, not leaked');
  });

  test('a refused watch (500 Status) backs off and retries the watch from the same resourceVersion', async () => {
    h = await harness((call, n) => {
      if (!isWatch(call)) return sendStatus(call.res, 200, LIST);
      if (n === 2) return sendStatus(call.res, 500, REFUSED);
      startStream(call.res, 'application/json');
    });
    const counted = await restartsDuring(async () => {
      h!.watch.start();
      await h!.retryScheduled();
      await settle();
    });
    assert.deepEqual(counted, { error: 1 });
    assert.equal(h.replay.calls.length, 2, 'waits before retrying');
    mock.timers.tick(10_000); // the backoff's cap
    const retry = await h.replay.call(3);
    assert.ok(isWatch(retry));
    assert.equal(rv(retry), '894');
  });

  test('a connection cut mid-stream resumes the watch after the last event delivered', async () => {
    h = await harness((call) => {
      if (!isWatch(call)) return sendStatus(call.res, 200, LIST);
      startStream(call.res, 'application/json');
      if (rv(call) === '894') {
        const [modified, added] = WATCH.split('\n');
        call.res.write(`${modified}\n${added}\n`);
        setImmediate(() => call.req.socket.destroy());
      }
    });
    h.watch.start();
    await h.replay.call(2);
    await h.retryScheduled();
    assert.ok(h.events.includes('ADDED c'));
    mock.timers.tick(10_000);
    const retry = await h.replay.call(3);
    assert.ok(isWatch(retry));
    assert.equal(rv(retry), '897');
    assert.deepEqual(names(h.watch), ['a', 'b', 'c', 'kube-root-ca.crt']);
  });

  test('a failing list is retried; whenSynced waits for the first good one', async () => {
    h = await harness((call, n) => {
      if (!isWatch(call)) return n === 1 ? sendStatus(call.res, 500, REFUSED) : sendStatus(call.res, 200, LIST);
      startStream(call.res, 'application/json');
    });
    let synced = false;
    void h.watch.whenSynced().then(() => (synced = true));
    h.watch.start();
    await h.retryScheduled();
    await settle();
    assert.equal(synced, false);
    mock.timers.tick(10_000);
    assert.ok(!isWatch(await h.replay.call(2)), 'a list again, not a watch without a resourceVersion');
    await h.watch.whenSynced();
    assert.equal(rv(await h.replay.call(3)), '894');
  });
});

/** Lets pending I/O callbacks run (no timers: those are mocked). */
async function settle(rounds = 20): Promise<void> {
  for (let i = 0; i < rounds; i++) await new Promise((r) => setImmediate(r));
}

async function until(cond: () => boolean): Promise<void> {
  while (!cond()) await new Promise((r) => setImmediate(r));
}

function closed(call: Call): Promise<boolean> {
  return new Promise((resolve) => {
    if (call.req.socket.destroyed || call.res.writableEnded) return resolve(true);
    call.res.once('close', () => resolve(true));
  });
}
