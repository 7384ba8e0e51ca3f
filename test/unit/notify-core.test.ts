// The pure core of notifications, table-driven: audit event → notification type,
// routing from the annotation, the webhook body's schema, Slack escaping, URL and
// secret rules, retry delays; and the --notifications file's validation messages.
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import type { AuditEvent, Run } from '../../protocol/api.js';
import { loadNotifyConfig, urlProblem, webhookSecretProblem, type NotifyTarget } from '../../server/notify/config.js';
import { retryDelayMs } from '../../server/notify/deliver.js';
import { eventTypeOf, notifyEventFromAudit, type NotifyEvent } from '../../server/notify/events.js';
import { displayArgv, escapeSlack, slackMessage, webhookBody } from '../../server/notify/message.js';
import { describeUnknown, routeNotifications, targetWants } from '../../server/notify/route.js';
import { retryAfterMs } from '../../server/notify/send.js';

const SECRET = `whsec_${Buffer.alloc(32, 7).toString('base64')}`;

const run: Run = {
  id: 'abc123def456',
  namespace: 'payments',
  deployment: 'api',
  container: 'app',
  image: 'img',
  command: ['node', 'scripts/backfill.js', '--since', '2 days'],
  reason: 'INC-1',
  user: 'alice',
  interactive: false,
  tty: false,
  status: 'running',
  jobName: 'api-oddjob-abc123def456',
  createdAt: '2026-01-01T00:00:00.000Z',
  outputBytes: 0,
  outputTruncated: false,
  notify: ['ops'],
};

function audit(over: Partial<AuditEvent>): AuditEvent {
  return {
    type: 'run.started',
    actor: { login: 'alice', teams: [] },
    client: { kind: 'server' },
    seq: 7,
    time: '2026-01-01T00:00:01.000Z',
    prevHash: 'x',
    hash: 'y',
    runId: run.id,
    ...over,
  };
}

describe('eventTypeOf', () => {
  const cases: Array<[Partial<AuditEvent>, string | undefined]> = [
    [{ type: 'run.started' }, 'run.started'],
    [{ type: 'run.finished', status: 'succeeded' }, 'run.succeeded'],
    [{ type: 'run.finished', status: 'failed' }, 'run.failed'],
    [{ type: 'run.finished', status: 'deadline' }, 'run.deadline'],
    [{ type: 'run.lost', status: 'lost' }, 'run.lost'],
    [{ type: 'run.cancelled', status: 'cancelled' }, 'run.cancelled'],
    [{ type: 'run.progress', message: '40%' }, 'run.progress'],
    [{ type: 'run.requested' }, undefined],
    [{ type: 'run.created' }, undefined],
    [{ type: 'run.denied' }, undefined],
    [{ type: 'login' }, undefined],
  ];
  for (const [e, want] of cases) {
    test(`${e.type}${e.status ? `/${e.status}` : ''} → ${want ?? 'nothing'}`, () => assert.equal(eventTypeOf(audit(e)), want));
  }
  test('a run.finished event carries exit code, duration and the canceller as actor with the owner', () => {
    const n = notifyEventFromAudit(
      audit({ type: 'run.cancelled', status: 'cancelled', actor: { login: 'bob', teams: [] }, owner: 'alice', durationMs: 1500 }),
      run,
    )!;
    assert.equal(n.type, 'run.cancelled');
    assert.equal(n.actor, 'bob');
    assert.equal(n.owner, 'alice');
    assert.equal(n.run?.durationMs, 1500);
    assert.deepEqual(n.run?.command, run.command);
    assert.equal(notifyEventFromAudit(audit({}), undefined), undefined, 'no run, no notification');
  });
});

describe('approval events: the request, who asked and who decided, escaped', () => {
  const base = { runId: 'r00000000001', namespace: 'payments', deployment: 'api', requestId: 'q00000000001' };
  const hostile = ['node', 'x.js', '<!channel> `rm`'];
  const requested = audit({
    type: 'approval.requested',
    ...base,
    actor: { login: 'alice', teams: [] },
    command: hostile,
    reason: 'INC-9 <https://evil|click>',
    message: 'needs approval by acme/ops',
  });
  const granted = audit({ type: 'approval.granted', ...base, actor: { login: 'bob', teams: [] }, owner: 'alice', command: hostile, reason: 'looks right' });
  const table: Array<[string, AuditEvent, Partial<NonNullable<NotifyEvent['request']>>, string, string | undefined]> = [
    ['requested: the requester acts', requested, { command: hostile, reason: 'INC-9 <https://evil|click>' }, 'alice', undefined],
    ['granted: the approver acts for the requester', granted, { command: hostile, reason: 'looks right' }, 'bob', 'alice'],
    ['expired: the server acts', audit({ type: 'approval.expired', ...base, actor: { login: 'oddjob', teams: [] }, owner: 'alice' }), {}, 'oddjob', 'alice'],
    [
      'voided',
      audit({ type: 'approval.voided', ...base, actor: { login: 'oddjob', teams: [] }, owner: 'alice', message: 'the image changed' }),
      {},
      'oddjob',
      'alice',
    ],
  ];
  for (const [name, event, request, actor, owner] of table) {
    test(name, () => {
      const n = notifyEventFromAudit(event, undefined)!;
      assert.equal(n.type, event.type);
      assert.deepEqual(n.request, { id: 'q00000000001', ...request });
      assert.equal(n.actor, actor);
      assert.equal(n.owner, owner);
      assert.deepEqual(n.where, { namespace: 'payments', deployment: 'api' });
      const body = webhookBody(n, 'https://oddjob.example/');
      assert.equal(body.data.request?.url, 'https://oddjob.example/requests');
      assert.equal(body.data.run, undefined);
    });
  }
  test('Slack: a link to the requests page, who asked and who decided, the argv and reason shown as typed but inert', () => {
    const m = slackMessage(notifyEventFromAudit(granted, undefined)!, 'https://oddjob.example');
    const all = JSON.stringify(m);
    assert.match(all, /<https:\/\/oddjob\.example\/requests\|request q00000000001>/);
    assert.match(all, /Requested by\*\\nalice/);
    assert.match(all, /By\*\\nbob/);
    assert.doesNotMatch(all, /<!channel>/);
    assert.match(all, /&lt;!channel&gt;/);
    assert.match(m.text, /^request q00000000001 on payments\/api was approved$/);
    const r = JSON.stringify(slackMessage(notifyEventFromAudit(requested, undefined)!, 'https://oddjob.example'));
    assert.doesNotMatch(r, /<https:\/\/evil/);
    assert.match(r, /needs approval by acme\/ops/);
  });
});

describe('schedule events (slots that started no run)', () => {
  const future = (type: string, over: Partial<AuditEvent> = {}) =>
    audit({ type: type as AuditEvent['type'], runId: undefined, namespace: 'payments', deployment: 'api', message: 'slot 02:00 missed <!here>', ...over });
  test('schedule.missed without a run notifies with where and the message, escaped for Slack', () => {
    const n = notifyEventFromAudit(future('schedule.missed'), undefined)!;
    assert.equal(n.type, 'schedule.missed');
    assert.deepEqual(n.where, { namespace: 'payments', deployment: 'api' });
    assert.equal(webhookBody(n, 'https://o').data.message, 'slot 02:00 missed <!here>');
    assert.doesNotMatch(JSON.stringify(slackMessage(n, 'https://o')), /<!here>/);
  });
  const refused = (type: string) =>
    future(type, {
      actor: { login: 'schedule:payments/nightly', teams: [] },
      task: 'nightly',
      slots: ['2026-03-01T02:00:00.000Z'],
      reason: 'deployment payments/api has not opted in <!channel>',
      message: 'slot 2026-03-01T02:00:00.000Z started no run: deployment payments/api has not opted in <!channel>',
    });
  for (const type of ['schedule.denied', 'schedule.failed']) {
    test(`${type}: the body names the Task, the slot and why; Slack names the Task, escaped`, () => {
      const n = notifyEventFromAudit(refused(type), undefined)!;
      const body = webhookBody(n, 'https://o');
      assert.equal(body.type, type);
      assert.equal(body.data.actor, 'schedule:payments/nightly');
      assert.deepEqual(body.data.where, { namespace: 'payments', deployment: 'api' });
      assert.deepEqual(body.data.schedule, {
        task: 'nightly',
        slots: ['2026-03-01T02:00:00.000Z'],
        reason: 'deployment payments/api has not opted in <!channel>',
      });
      assert.equal(body.data.run, undefined);
      const m = slackMessage(n, 'https://o');
      assert.match(m.text, /^task nightly on payments\/api scheduled run/);
      assert.doesNotMatch(JSON.stringify(m), /<!channel>/);
    });
  }
  test('schedule.missed lists every slot it is about, without a reason', () => {
    const slots = ['2026-03-01T02:00:00.000Z', '2026-03-01T02:01:00.000Z'];
    const n = notifyEventFromAudit(future('schedule.missed', { task: 'nightly', slots }), undefined)!;
    assert.deepEqual(webhookBody(n, 'https://o').data.schedule, { task: 'nightly', slots });
  });
  test('approval.requested about a run carries the run', () => {
    assert.equal(notifyEventFromAudit(future('approval.requested', { runId: run.id }), run)?.run?.id, run.id);
  });
  test('unknown or run-less run events notify nobody', () => {
    assert.equal(notifyEventFromAudit(future('approval.exploded'), undefined), undefined);
    assert.equal(notifyEventFromAudit(audit({ type: 'run.started' }), undefined), undefined);
  });
});

describe('routing', () => {
  const configured = new Map<string, NotifyTarget>([
    ['ops', { name: 'ops', kind: 'webhook', url: 'https://x', secret: SECRET }],
    ['pay-slack', { name: 'pay-slack', kind: 'slack-webhook', url: 'https://y', events: new Set(['run.failed'] as const) }],
  ]);
  const cases: Array<[string | undefined, string[], string[]]> = [
    [undefined, [], []],
    ['', [], []],
    ['ops', ['ops'], []],
    [' ops , Pay-Slack ,ops', ['ops', 'pay-slack'], []],
    ['ops,typo,https://evil.example/hook', ['ops'], ['typo', 'https://evil.example/hook']],
  ];
  for (const [annotation, targets, unknown] of cases) {
    test(`${JSON.stringify(annotation)} → targets ${targets.join('+') || '-'}, unknown ${unknown.join('+') || '-'}`, () => {
      assert.deepEqual(routeNotifications(annotation, configured), { targets, unknown });
    });
  }
  test('a URL in the annotation is an unknown name, never an address', () => {
    assert.match(describeUnknown(['https://evil.example/hook'])!, /not configured: https:\/\/evil\.example\/hook/);
  });
  test('events filter', () => {
    assert.equal(targetWants(configured.get('pay-slack')!, 'run.failed'), true);
    assert.equal(targetWants(configured.get('pay-slack')!, 'run.started'), false);
    assert.equal(targetWants(configured.get('ops')!, 'run.started'), true);
  });
});

describe('messages', () => {
  const n: NotifyEvent = {
    type: 'run.failed',
    time: '2026-01-01T00:00:05.000Z',
    auditSeq: 9,
    actor: 'alice',
    run: {
      id: run.id,
      namespace: 'payments',
      deployment: 'api',
      container: 'app',
      command: ['sh', '-c', 'echo <!channel> & `rm` @here'],
      status: 'failed',
      exitCode: 3,
      durationMs: 65_000,
      reason: '<@U123> look',
    },
  };
  test('the webhook body has the documented, versioned shape', () => {
    assert.deepEqual(webhookBody(n, 'https://oddjob.example.com/'), {
      version: 1,
      type: 'run.failed',
      timestamp: '2026-01-01T00:00:05.000Z',
      data: { actor: 'alice', auditSeq: 9, url: `https://oddjob.example.com/runs/${run.id}`, run: n.run },
    });
  });
  const escapes: Array<[string, string]> = [
    ['a & b', 'a &amp; b'],
    ['<!channel>', '&lt;!channel&gt;'],
    ['<@U123>', '&lt;@U123&gt;'],
    ['<https://evil|click>', '&lt;https://evil|click&gt;'],
    ['@here and @channel and @everyone', '@\u200bhere and @\u200bchannel and @\u200beveryone'],
    ['bell\u0007 esc\u001b[31m', 'bell esc[31m'],
    ['tab\tnewline\n', 'tab\tnewline\n'],
  ];
  for (const [input, want] of escapes) test(`escapeSlack(${JSON.stringify(input)})`, () => assert.equal(escapeSlack(input), want));

  test('no user text reaches Slack unescaped: no <!…>, <@…>, bare @channel, or broken code span', () => {
    const text = JSON.stringify(slackMessage(n, 'https://oddjob.example.com'));
    assert.doesNotMatch(text, /<!channel>|<@U123>|[^\u200b]@here/);
    assert.match(text, /&lt;!channel&gt;/);
    assert.match(text, /ˋrmˋ/, 'backticks inside the argv code span are replaced');
    assert.match(text, /<https:\/\/oddjob\.example\.com\/runs\/abc123def456\|run abc123def456>/, 'the only link is ours');
    assert.match(text, /Exit code\*\\n3/);
    assert.match(text, /1m 5s/);
  });
  test('argv is shown as typed, quoted where needed', () => {
    assert.equal(displayArgv(['node', 'a b', "it's"]), `node 'a b' 'it'\\''s'`);
  });
});

describe('rules', () => {
  const urls: Array<[string, boolean, string | undefined]> = [
    ['https://hooks.example.com/x', false, undefined],
    ['http://hooks.example.com/x', false, 'must be https://'],
    ['http://127.0.0.1:8080/x', false, 'insecureLoopbackHttp'],
    ['http://127.0.0.1:8080/x', true, undefined],
    ['http://localhost/x', true, undefined],
    ['http://10.0.0.1/x', true, 'must be https://'],
    ['https://user:pw@hooks.example.com/', false, 'credentials'],
    ['ftp://x/', false, 'https://'],
    ['not a url', false, 'not a URL'],
  ];
  for (const [url, flag, want] of urls) {
    test(`url ${url}${flag ? ' (loopback http allowed)' : ''}`, () => {
      const p = urlProblem(url, flag);
      if (want === undefined) assert.equal(p, undefined);
      else assert.match(p ?? '', new RegExp(want.replace(/[/.]/g, '\\$&')));
    });
  }
  const secrets: Array<[string, boolean]> = [
    [SECRET, true],
    ['whsec_', false],
    ['secret', false],
    [`whsec_${Buffer.alloc(8).toString('base64')}`, false],
    [`whsec_${Buffer.alloc(65).toString('base64')}`, false],
  ];
  for (const [s, ok] of secrets) test(`secret ${s.slice(0, 12)}… ${ok ? 'ok' : 'refused'}`, () => assert.equal(webhookSecretProblem(s) === undefined, ok));

  test('retry delays grow, stay within half and all of their ceiling, and are capped', () => {
    const settings = { retryBaseSeconds: 5, retryCapSeconds: 3600 };
    assert.equal(
      retryDelayMs(1, settings, () => 0),
      2500,
    );
    assert.equal(
      retryDelayMs(1, settings, () => 1),
      5000,
    );
    assert.equal(
      retryDelayMs(3, settings, () => 0),
      10_000,
    );
    assert.equal(
      retryDelayMs(40, settings, () => 1),
      3_600_000,
    );
  });
  test('Retry-After in seconds or as a date', () => {
    assert.equal(retryAfterMs('7', 0), 7000);
    assert.equal(retryAfterMs(new Date(60_000).toUTCString(), 0), 60_000);
    assert.equal(retryAfterMs('soon', 0), undefined);
    assert.equal(retryAfterMs(null, 0), undefined);
  });
});

describe('the --notifications file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-notify-config-'));
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const secretFile = file('hook-secret', `${SECRET}\n`);
  const slackUrlFile = file('slack-url', 'https://hooks.slack.com/services/T000/B000/sekritpart\n');
  const tokenFile = file('slack-token', 'xoxb-123-sekrit\n');

  test('a full file loads, with secrets read from their files', () => {
    const c = loadNotifyConfig(
      file(
        'ok.yaml',
        `
delivery: {maxAge: 2d, timeout: 5s, concurrency: 2, keep: 7d}
targets:
  payments-slack:
    slack: {webhookUrlFile: ${slackUrlFile}}
  ops-slack:
    slack: {tokenFile: ${tokenFile}, channel: "#ops"}
  ops-hooks:
    webhook: {url: https://hooks.example.com/oddjob, secretFile: ${secretFile}}
    events: [run.failed, run.lost, schedule.missed, approval.requested]
`,
      ),
    );
    assert.deepEqual([...c.targets.keys()], ['payments-slack', 'ops-slack', 'ops-hooks']);
    assert.equal(c.delivery.maxAgeSeconds, 2 * 86400);
    assert.equal(c.delivery.timeoutSeconds, 5);
    assert.equal(c.delivery.keepSeconds, 7 * 86400);
    const hooks = c.targets.get('ops-hooks')!;
    assert.equal(hooks.kind === 'webhook' && hooks.secret, SECRET);
    assert.deepEqual([...hooks.events!], ['run.failed', 'run.lost', 'schedule.missed', 'approval.requested']);
    assert.equal(c.targets.get('ops-slack')!.kind, 'slack-api');
  });

  const bad: Array<[string, string, RegExp]> = [
    ['unknown top-level key', 'targetz: {}', /\(top level\): unknown key "targetz"/],
    ['unknown target key', `targets: {a: {webhook: {url: https://x.example, secretFile: ${secretFile}}, retries: 3}}`, /targets\.a: unknown key "retries"/],
    [
      'unknown webhook key',
      `targets: {a: {webhook: {url: https://x.example, secretFile: ${secretFile}, secret: x}}}`,
      /targets\.a\.webhook: unknown key "secret"/,
    ],
    [
      'both kinds',
      `targets: {a: {webhook: {url: https://x.example, secretFile: ${secretFile}}, slack: {webhookUrlFile: ${slackUrlFile}}}}`,
      /exactly one of slack or webhook/,
    ],
    ['neither kind', 'targets: {a: {events: [run.failed]}}', /exactly one of slack or webhook/],
    [
      'bad event',
      `targets: {a: {webhook: {url: https://x.example, secretFile: ${secretFile}}, events: [run.exploded]}}`,
      /targets\.a\.events\.0: must be one of/,
    ],
    [
      'missing secret file',
      'targets: {a: {webhook: {url: https://x.example, secretFile: /nope/secret}}}',
      /targets\.a\.webhook\.secretFile: cannot read \/nope\/secret \(no such file\)/,
    ],
    ['plain http', `targets: {a: {webhook: {url: http://x.example/h, secretFile: ${secretFile}}}}`, /targets\.a\.webhook\.url must be https:\/\//],
    ['loopback http without the flag', `targets: {a: {webhook: {url: http://127.0.0.1:9/h, secretFile: ${secretFile}}}}`, /insecureLoopbackHttp: true/],
    ['not a whsec secret', `targets: {a: {webhook: {url: https://x.example, secretFile: ${tokenFile}}}}`, /is not a Standard Webhooks secret/],
    ['bad target name', `targets: {Ops_Hooks: {webhook: {url: https://x.example, secretFile: ${secretFile}}}}`, /target names are lowercase/],
    ['bad duration', 'delivery: {maxAge: 3 days}\ntargets: {}', /delivery\.maxAge: "3 days" is not a duration/],
    [
      'slack url file with http',
      `targets: {a: {slack: {webhookUrlFile: ${file('http-url', 'http://hooks.slack.com/services/x')}}}}`,
      /\(the URL in that file\) must be https/,
    ],
    ['not yaml', 'targets: [unclosed', /not valid YAML/],
  ];
  for (const [what, yaml, want] of bad) {
    test(`refused: ${what}`, () => {
      const path = file(`${what.replace(/\W+/g, '-')}.yaml`, yaml);
      assert.throws(
        () => loadNotifyConfig(path),
        (err: Error) => {
          assert.match(err.message, want);
          assert.match(err.message, new RegExp(`^--notifications ${path.replace(/[/.]/g, '\\$&')}: `));
          assert.doesNotMatch(err.message, /sekrit|whsec_B/, 'no secret in the message');
          return true;
        },
      );
    });
  }
  test('a missing file', () => assert.throws(() => loadNotifyConfig(join(dir, 'absent.yaml')), /cannot read it \(no such file\)/));
});
