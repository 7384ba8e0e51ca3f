// Notification delivery against real parts, on both engines: a real SQLite file and a
// real PostgreSQL server (the audit append's transaction writes the outbox), a real HTTP receiver that verifies Standard Webhooks
// signatures with the `standardwebhooks` library, and a fake Slack speaking Slack's
// endpoints and answers. Waits poll for an outcome; nothing asserts on elapsed time.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Writable } from 'node:stream';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import type { Run } from '../../protocol/api.js';
import { sql } from 'kysely';
import type { NotifyConfig, NotifyTarget } from '../../server/notify/config.js';
import { Notifications } from '../../server/notify/service.js';
import type { NotifyEvent } from '../../server/notify/events.js';
import type { DbTarget } from '../../server/store/target.js';
import { registry } from '../../server/metrics.js';
import { FakeSlack } from '../support/fake-slack.js';
import { ENGINES, testStores } from '../support/stores.js';
import { WebhookReceiver, newWebhookSecret } from '../support/webhook-receiver.js';

const stores = testStores('notify');
const SECRET = newWebhookSecret();
let receiver: WebhookReceiver;
let other: WebhookReceiver;
let slack: FakeSlack;
const logLines: string[] = [];

before(async () => {
  receiver = await new WebhookReceiver(SECRET).start();
  other = await new WebhookReceiver(SECRET).start();
  slack = await new FakeSlack().start();
});
after(async () => {
  await Promise.all([receiver.stop(), other.stop(), slack.stop()]);
});

const FAST = { maxAgeSeconds: 3600, timeoutSeconds: 0.5, concurrency: 4, retryBaseSeconds: 0.02, retryCapSeconds: 0.1, keepSeconds: 86_400 };

function config(targets: NotifyTarget[], delivery = FAST): NotifyConfig {
  return { targets: new Map(targets.map((t) => [t.name, t])), delivery };
}
const hooks = (): NotifyTarget => ({ name: 'hooks', kind: 'webhook', url: receiver.url, secret: SECRET });

let runSeq = 0;
function newRun(notify: string[]): Run {
  const id = `r${String(++runSeq).padStart(3, '0')}${Math.random().toString(36).slice(2, 10).padEnd(8, '0')}`.slice(0, 12);
  return {
    id,
    namespace: 'payments',
    deployment: 'api',
    container: 'app',
    image: 'img',
    command: ['node', 'scripts/backfill.js'],
    user: 'alice',
    interactive: false,
    tty: false,
    status: 'running',
    jobName: `api-oddjob-${id}`,
    createdAt: new Date().toISOString(),
    outputBytes: 0,
    outputTruncated: false,
    notify,
  };
}

/** One "replica": its own store (connections) on the database, audit log, run store and notifications. */
async function replica(target: DbTarget, cfg: NotifyConfig, idlePollMs = 30) {
  const store = await stores.reopen(target);
  const { runs, audit } = store;
  const logger = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _e, cb) {
        logLines.push(chunk.toString());
        cb();
      },
    }),
  );
  const notifications: Notifications = new Notifications({
    outbox: store.outbox,
    tokens: store.runTokens,
    config: cfg,
    lookupRun: (id, trx) => runs.get(id, trx),
    publicUrl: () => 'https://oddjob.example.com',
    logger,
    userAgent: 'oddjob/test',
    idlePollMs,
  });
  audit.onAppend((trx, events) => notifications.onAudit(trx, events));
  const started = (run: Run) =>
    audit.appendDurable({
      type: 'run.started',
      actor: { login: run.user, teams: [] },
      client: { kind: 'server' },
      runId: run.id,
      namespace: run.namespace,
      deployment: run.deployment,
    });
  const finished = (run: Run, status: 'succeeded' | 'failed' = 'succeeded', exitCode = 0) =>
    audit.appendDurable({
      type: 'run.finished',
      actor: { login: run.user, teams: [] },
      client: { kind: 'server' },
      runId: run.id,
      namespace: run.namespace,
      deployment: run.deployment,
      status,
      exitCode,
      durationMs: 1234,
    });
  return { store, runs, audit, notifications, started, finished };
}

async function until<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 15_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v !== undefined && v !== false) return v;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

for (const engine of ENGINES) {
  describe(`on ${engine}`, () => {
    describe('webhook delivery', () => {
      test("a run's started and finished events arrive once each, signed, in order, with the documented body", async () => {
        const r = await replica(await stores.target(engine), config([hooks()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['hooks']));
        await r.started(run);
        await r.finished(run, 'failed', 3);
        const got = await until('two webhooks', () => receiver.ofRun(run.id).length >= 2 && receiver.ofRun(run.id));
        await new Promise((res) => setTimeout(res, 200)); // a duplicate would arrive now
        await until('both recorded', async () => (await r.notifications.list({ runId: run.id, limit: 10 })).items.every((d) => d.state === 'delivered'));
        await r.notifications.stop();
        assert.deepEqual(
          receiver.ofRun(run.id).map((w) => w.body.type),
          ['run.started', 'run.failed'],
        );
        assert.notEqual(got[0]!.id, got[1]!.id);
        assert.match(got[0]!.id, /^msg_/);
        const body = got[1]!.body;
        assert.equal(body.version, 1);
        assert.equal(body.data.url, `https://oddjob.example.com/runs/${run.id}`);
        assert.deepEqual(body.data.run, {
          id: run.id,
          namespace: 'payments',
          deployment: 'api',
          container: 'app',
          command: ['node', 'scripts/backfill.js'],
          status: 'failed',
          exitCode: 3,
          durationMs: 1234,
        });
        assert.equal(receiver.rejected.length, 0);
        const log = await r.notifications.list({ runId: run.id, limit: 10 });
        assert.deepEqual(
          log.items.map((d) => [d.event, d.state, d.attempts]),
          [
            ['run.failed', 'delivered', 1],
            ['run.started', 'delivered', 1],
          ],
        );
      });

      test('a receiver failing the first 3 times gets the event on a retry with the same webhook-id', async () => {
        const r = await replica(await stores.target(engine), config([hooks()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['hooks']));
        receiver.failNext = 3;
        const before = receiver.attempts.length;
        await r.started(run);
        const [got] = await until('the webhook', () => receiver.ofRun(run.id).length === 1 && receiver.ofRun(run.id));
        // The receiver answers before the worker records it: wait for the record, then stop.
        await until('recorded as delivered', async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        await r.notifications.stop();
        const attempts = receiver.attempts.slice(before);
        assert.deepEqual(
          attempts.map((a) => a.status),
          [500, 500, 500, 204],
        );
        assert.ok(
          attempts.every((a) => a.id === got!.id),
          'one id on every attempt',
        );
        const [d] = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
        assert.equal(d!.attempts, 4);
        assert.equal(d!.state, 'delivered');
      });

      test('the outbox row commits with its audit event: if it cannot be written, the event is not recorded either', async () => {
        const r = await replica(await stores.target(engine), config([hooks()]));
        const run = await r.runs.create(newRun(['hooks']));
        await sql`DROP TABLE notify_outbox`.execute(r.store.connection.db);
        await assert.rejects(r.started(run), /notify_outbox/);
        assert.equal((await r.audit.query({ limit: 10 })).items.length, 0, 'no audit event without its outbox row');
      });

      test('a restart loses nothing: pending deliveries go out from the next process, once', async () => {
        const file = await stores.target(engine);
        const a = await replica(file, config([hooks()]));
        a.notifications.start();
        const run = await a.runs.create(newRun(['hooks']));
        receiver.failNext = 1_000;
        await a.started(run);
        await a.finished(run);
        await until('a failed attempt', () => receiver.attempts.some((x) => x.status === 500));
        await a.notifications.stop();
        await a.store.close();
        receiver.failNext = 0;
        assert.equal(receiver.ofRun(run.id).length, 0);
        const b = await replica(file, config([hooks()]));
        b.notifications.start();
        await until('both events after the restart', () => receiver.ofRun(run.id).length === 2);
        await new Promise((res) => setTimeout(res, 200));
        await b.notifications.stop();
        assert.deepEqual(
          receiver.ofRun(run.id).map((w) => w.body.type),
          ['run.started', 'run.succeeded'],
        );
      });

      test('two workers on one store (two replicas) deliver each of 200 events exactly once', async () => {
        const file = await stores.target(engine);
        // A generous attempt limit: what is under test is the claim, not the retry of an
        // attempt that timed out (that one goes again with the same webhook-id, by design,
        // and a busy 2-core machine can hold a 0.5 s attempt past its limit).
        const slow = { ...FAST, concurrency: 8, timeoutSeconds: 10 };
        const a = await replica(file, config([hooks()], slow), 10);
        const b = await replica(file, config([hooks()], slow), 10);
        a.notifications.start();
        b.notifications.start();
        const ids: string[] = [];
        for (let i = 0; i < 100; i++) {
          const run = await (i % 2 ? a : b).runs.create(newRun(['hooks']));
          ids.push(run.id);
          // Each replica appends to the one chain; both workers race for every row.
          await (i % 2 ? a : b).started(run);
          await (i % 2 ? b : a).finished(run);
        }
        const mine = () => receiver.received.filter((w) => ids.includes(w.body.data.run?.id as string));
        await until('200 webhooks', () => mine().length >= 200, 60_000);
        await new Promise((res) => setTimeout(res, 300));
        await Promise.all([a.notifications.stop(), b.notifications.stop()]);
        const got = mine();
        assert.equal(got.length, 200, 'no duplicates');
        assert.equal(new Set(got.map((w) => w.id)).size, 200);
        for (const id of ids)
          assert.deepEqual(
            got.filter((w) => w.body.data.run?.id === id).map((w) => w.body.type),
            ['run.started', 'run.succeeded'],
          );
      });

      test('a hanging target holds only its own slots: another target and the audit log go on', async (t) => {
        const hang = new WebhookReceiver(SECRET);
        await hang.start();
        hang.hang = true;
        const db = await stores.target(engine);
        const r = await replica(
          db,
          config(
            [
              { name: 'stuck', kind: 'webhook', url: hang.url, secret: SECRET },
              { name: 'fine', kind: 'webhook', url: other.url, secret: SECRET },
            ],
            { ...FAST, timeoutSeconds: 2 },
          ),
        );
        r.notifications.start();
        t.after(async () => {
          await r.notifications.stop();
          await hang.stop();
        });
        const runs = await Promise.all(Array.from({ length: 20 }, () => r.runs.create(newRun(['stuck', 'fine']))));
        for (const run of runs) await r.started(run);
        await until('all 20 at the healthy target', () => runs.every((run) => other.ofRun(run.id).length === 1));
        const stuck = (await r.notifications.list({ target: 'stuck', limit: 50 })).items;
        assert.ok(stuck.every((d) => d.state === 'pending'));
        // Each attempt was cut off at the timeout and will be retried; nothing waits on it.
        await until('a timed-out attempt recorded', async () =>
          (await r.notifications.list({ target: 'stuck', limit: 50 })).items.some((d) => /no answer within/.test(d.lastError ?? '')),
        );
        assert.ok(hang.maxHeld <= FAST.concurrency, `at most ${FAST.concurrency} in flight at once (saw ${hang.maxHeld})`);
        await r.notifications.stop();
        // Stopping cuts the attempts in flight short (shutdown does not wait out the timeout);
        // they stay pending. A replica whose timeout cannot pass during the test holds them,
        // so an attempt is surely in flight when it stops.
        const patient = await replica(
          db,
          config(
            [
              { name: 'stuck', kind: 'webhook', url: hang.url, secret: SECRET },
              { name: 'fine', kind: 'webhook', url: other.url, secret: SECRET },
            ],
            { ...FAST, timeoutSeconds: 600 },
          ),
        );
        patient.notifications.start();
        t.after(() => patient.notifications.stop());
        const before = hang.attempts.length;
        await until('an attempt held by the hanging receiver', () => hang.attempts.length > before && hang.held > 0);
        await patient.notifications.stop();
        const after = (await patient.notifications.list({ target: 'stuck', limit: 50 })).items;
        assert.ok(
          after.some((d) => /interrupted: the server stopped/.test(d.lastError ?? '')),
          'in-flight attempts were interrupted by stop()',
        );
        assert.ok(after.every((d) => d.state === 'pending'));
      });

      test('redelivery sends the same message again with the same webhook-id', async () => {
        const r = await replica(await stores.target(engine), config([hooks()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['hooks']));
        await r.started(run);
        const [first] = await until('the webhook', () => receiver.ofRun(run.id).length === 1 && receiver.ofRun(run.id));
        const d = await until('recorded as delivered', async () =>
          (await r.notifications.list({ runId: run.id, limit: 1 })).items.find((x) => x.state === 'delivered'),
        );
        const again = await r.notifications.redeliver(d!.id);
        assert.equal(again?.state, 'pending');
        await until('the redelivery', () => receiver.ofRun(run.id).length === 2);
        await r.notifications.stop();
        assert.equal(receiver.ofRun(run.id)[1]!.id, first!.id);
      });
    });

    test('the delivery log is pruned by age, but never of deliveries still owed', async () => {
      const store = await stores.open(engine);
      const outbox = store.outbox;
      const event = (seq: number): NotifyEvent => ({
        type: 'run.started',
        time: '',
        auditSeq: seq,
        actor: 'a',
        run: { id: `run00000000${seq}`, namespace: 'n', deployment: 'd', container: 'c', command: ['x'], status: 'running' },
      });
      await store.connection.db.transaction().execute((trx) =>
        outbox.enqueueInTransaction(trx, [
          { target: 't', event: event(1), now: 1000 },
          { target: 't', event: event(2), now: 1000 },
          { target: 't', event: event(3), now: 5000 },
        ]),
      );
      const [first] = await outbox.claim('t', 'me', 1, 6000, 60_000);
      await outbox.settle(first!.id, 'me', { state: 'delivered', now: 6000 });
      await outbox.saveSlackMessage(first!.runId!, 't', 'C1', '1.1');
      assert.equal(await outbox.prune(2000), 1);
      const left = (await outbox.list({ limit: 10 })).items.map((d) => [d.auditSeq, d.state]);
      assert.deepEqual(left, [
        [3, 'pending'],
        [2, 'pending'],
      ]);
      assert.equal(await outbox.slackMessage(first!.runId!, 't'), undefined, 'the Slack message id of a pruned run goes too');
    });

    describe('Slack', () => {
      const api = (): NotifyTarget => ({ name: 'ops-slack', kind: 'slack-api', token: slack.token, channel: '#ops', apiUrl: slack.apiUrl });
      const incoming = (): NotifyTarget => ({ name: 'pay-slack', kind: 'slack-webhook', url: slack.webhookUrl });

      test('Web API: one message per run, posted on start and updated in place on finish; progress goes in its thread', async () => {
        const r = await replica(await stores.target(engine), config([api()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['ops-slack']));
        await r.started(run);
        await r.audit.appendDurable({
          type: 'run.progress',
          actor: { login: 'alice', teams: [] },
          client: { kind: 'run' },
          runId: run.id,
          message: '40% <!channel>',
        });
        await r.finished(run, 'failed', 2);
        await until('the update', () => [...slack.messages.values()].find((m) => m.updates.length === 1 && JSON.stringify(m.blocks).includes(run.id)));
        await r.notifications.stop();
        const mine = [...slack.messages.values()].filter((m) => JSON.stringify(m.blocks).includes(run.id) && !m.thread_ts);
        assert.equal(mine.length, 1, 'one top-level message for the run');
        assert.match(JSON.stringify(mine[0]!.updates[0]!.blocks), /failed/);
        const thread = [...slack.messages.values()].filter((m) => m.thread_ts === mine[0]!.ts);
        assert.equal(thread.length, 1);
        assert.match(thread[0]!.text, /40% &lt;!channel&gt;/);
      });

      test("Web API: ok:false is not a delivery (a transient error is logged and retried); 429's Retry-After is honoured", async () => {
        const r = await replica(await stores.target(engine), config([api()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['ops-slack']));
        slack.failApi.push('internal_error');
        await r.started(run);
        await until('delivered after internal_error', async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        const calls = slack.calls.filter((c) => c.path === '/api/chat.postMessage');
        assert.ok(calls.some((c) => c.answer.includes('internal_error')));
        const [first] = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
        assert.equal(first!.attempts, 2, 'the ok:false answer was not taken for a delivery');
        assert.ok(
          [...slack.messages.values()].some((m) => JSON.stringify(m.blocks).includes(run.id)),
          'the message was posted on the retry',
        );
        slack.rateLimit = 1;
        slack.retryAfter = 30;
        await r.finished(run);
        const [d] = await until('the 429 recorded', async () => {
          const items = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
          return items[0]?.lastStatus === 429 && items;
        });
        await r.notifications.stop();
        assert.equal(d!.state, 'pending');
        assert.ok(Date.parse(d!.nextAttemptAt!) - Date.now() > 20_000, `next attempt honours Retry-After: 30 (at ${d!.nextAttemptAt})`);
      });

      test('Web API invalid_auth (a revoked token) is a dead letter at once: in the log, in the gauge, and redelivered in bulk once the token is fixed', async () => {
        const file = await stores.target(engine);
        const revoked: NotifyTarget = { ...api(), token: 'xoxb-0000-revoked' } as NotifyTarget;
        const r = await replica(file, config([revoked]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['ops-slack']));
        const before = slack.calls.length;
        await r.started(run);
        const [dead] = await until('the dead letter', async () => {
          const items = (await r.notifications.list({ runId: run.id, state: 'failed', limit: 1 })).items;
          return items.length === 1 && items;
        });
        assert.equal(dead!.attempts, 1, 'not retried: no retry fixes a refused token');
        assert.match(dead!.lastError!, /^chat\.postMessage: invalid_auth \(not retried/);
        // What Slack really answers: HTTP 200 and {"ok":false,"error":"invalid_auth"}.
        assert.deepEqual(
          slack.calls.slice(before).map((c) => [c.status, JSON.parse(c.answer) as unknown]),
          [[200, { ok: false, error: 'invalid_auth' }]],
        );
        const gauge = await registry.getSingleMetricAsString('oddjob_notification_deliveries');
        assert.match(gauge, /^oddjob_notification_deliveries\{target="ops-slack",state="failed"\} 1$/m);
        assert.ok(
          logLines.some((l) => l.includes('invalid_auth') && l.includes('"level":50')),
          'logged as an error',
        );
        await r.notifications.stop();

        // The operator fixes the token file and restarts: the dead letter stays dead until redelivered.
        const fixed = await replica(file, config([api()]));
        fixed.notifications.start();
        assert.equal((await fixed.notifications.list({ runId: run.id, state: 'failed', limit: 1 })).items.length, 1);
        assert.equal(await fixed.notifications.redeliverFailed('ops-slack'), 1);
        await until('delivered', async () => (await fixed.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        await fixed.notifications.stop();
        const [d] = (await fixed.notifications.list({ runId: run.id, limit: 1 })).items;
        assert.equal(d!.webhookId, dead!.webhookId, 'the same delivery, not a new one');
        assert.ok([...slack.messages.values()].some((m) => JSON.stringify(m.blocks).includes(run.id)));
      });

      test("Slack's 429 pauses the whole target for Retry-After: deliveries enqueued meanwhile wait instead of being refused too", async () => {
        const r = await replica(await stores.target(engine), config([api()]));
        r.notifications.start();
        const [a, b, c] = await Promise.all([1, 2, 3].map(() => r.runs.create(newRun(['ops-slack']))));
        const before = slack.rateLimited;
        slack.limitFor(1500);
        await r.started(a!);
        await until('the 429 recorded', async () => (await r.notifications.list({ runId: a!.id, limit: 1 })).items[0]?.lastStatus === 429);
        await r.started(b!);
        await r.started(c!);
        for (const run of [a!, b!, c!]) {
          await until(`${run.id} delivered`, async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        }
        await r.notifications.stop();
        assert.equal(slack.rateLimited - before, 1, 'only the first request met the rate limit');
        for (const run of [b!, c!]) {
          const [d] = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
          assert.equal(d!.attempts, 1, `${run.id} was sent once, after the pause`);
        }
      });

      test("Web API: when the run's message is gone (deleted), its end is posted as a new message instead of being lost", async () => {
        const r = await replica(await stores.target(engine), config([api()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['ops-slack']));
        await r.started(run);
        const posted = await until('the start message', () => [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(run.id)));
        await until('recorded', async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        slack.messages.delete(posted.ts);
        await r.finished(run, 'failed', 4);
        const again = await until('a new message about the end', () =>
          [...slack.messages.values()].find((m) => JSON.stringify(m.blocks).includes(run.id) && !m.thread_ts),
        );
        await until('recorded', async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        await r.notifications.stop();
        assert.match(JSON.stringify(again.blocks), /failed/);
        assert.ok(
          slack.calls.some((c) => c.path === '/api/chat.update' && c.answer.includes('message_not_found')),
          'the update was tried first',
        );
        const [d] = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
        assert.equal(d!.attempts, 1);
      });

      test('incoming webhook: "ok" is a delivery, a 5xx is retried, a 4xx (channel_not_found) is a dead letter at once', async () => {
        const r = await replica(await stores.target(engine), config([incoming()]));
        r.notifications.start();
        const run = await r.runs.create(newRun(['pay-slack']));
        slack.failWebhook.push('internal_error', 'internal_error');
        const before = slack.webhookMessages.length;
        await r.started(run);
        await until('delivered', async () => (await r.notifications.list({ runId: run.id, limit: 1 })).items[0]?.state === 'delivered');
        assert.equal(slack.webhookMessages.length, before + 1);
        const [d] = (await r.notifications.list({ runId: run.id, limit: 1 })).items;
        assert.equal(d!.attempts, 3);

        slack.failWebhook.push('channel_not_found');
        await r.finished(run);
        const [dead] = await until('the dead letter', async () => {
          const items = (await r.notifications.list({ runId: run.id, state: 'failed', limit: 1 })).items;
          return items.length === 1 && items;
        });
        await r.notifications.stop();
        assert.equal(dead!.attempts, 1, 'not retried');
        assert.equal(dead!.lastStatus, 404);
        assert.match(dead!.lastError!, /^HTTP 404 channel_not_found \(not retried: fix the target, then redeliver\)$/);
        assert.equal(slack.webhookMessages.length, before + 1);
      });
    });
  });
}

// The file: what the database holds on disk (PostgreSQL's rows are the same).
test('nothing secret in the store file or the logs: no webhook secret, Slack token or Slack webhook URL', async () => {
  const file = await stores.target('sqlite');
  if (file.engine !== 'sqlite') throw new Error('unreachable');
  const r = await replica(
    file,
    config([
      hooks(),
      { name: 'ops-slack', kind: 'slack-api', token: slack.token, channel: '#ops', apiUrl: slack.apiUrl },
      { name: 'pay-slack', kind: 'slack-webhook', url: slack.webhookUrl },
    ]),
  );
  r.notifications.start();
  const run = await r.runs.create(newRun(['hooks', 'ops-slack', 'pay-slack']));
  slack.failWebhook.push('channel_not_found');
  slack.failApi.push('invalid_auth');
  receiver.failNext = 1;
  await r.started(run);
  await r.finished(run);
  // channel_not_found and invalid_auth are dead letters at once: every row settles.
  await until('all settled', async () => {
    const items = (await r.notifications.list({ runId: run.id, limit: 10 })).items;
    return items.length === 6 && items.every((d) => d.state !== 'pending');
  });
  await r.notifications.stop();
  await r.store.close();
  // Closed: the WAL is checkpointed into the file, so the file holds everything written.
  const stored = readFileSync(file.path).toString('latin1') + logLines.join('');
  assert.ok(stored.includes(run.id), 'the check reads what was stored');
  const secretPart = slack.webhookPath.split('/').pop()!;
  for (const [what, value] of [
    ['webhook secret', SECRET.slice('whsec_'.length, 30)],
    ['Slack token', slack.token],
    ['Slack webhook URL secret part', secretPart],
  ] as const) {
    assert.ok(!stored.includes(value), `${what} found in the store or the logs`);
  }
  assert.ok(
    logLines.some((l) => l.includes('channel_not_found')),
    'errors are still logged, by code',
  );
});
