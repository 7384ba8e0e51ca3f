// The schedules routes of the HTTP edge, with a recording double of our own
// ScheduleService: paths and bodies are validated before the service is asked, and a
// suspension without a reason is refused with a message that says what to send.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import request from 'supertest';
import { createApp } from '../../server/http/app.js';
import { createLogger } from '../../server/logger.js';
import type { Authenticator, RunService, ScheduleService } from '../../server/services.js';
import type { ScheduleSummary } from '../../protocol/schedules.js';

const calls: unknown[][] = [];
const summary: ScheduleSummary = {
  namespace: 'demo',
  task: 'nightly',
  deployment: 'api',
  cron: '30 2 * * *',
  timeZone: 'Europe/Berlin',
  concurrencyPolicy: 'Forbid',
  suspendedBySpec: false,
  missedSlots: 0,
};
const schedules: ScheduleService = {
  async list(_ctx, namespace) {
    calls.push(['list', namespace]);
    return [summary];
  },
  async history(_ctx, task, opts) {
    calls.push(['history', task, opts]);
    return [];
  },
  async suspend(ctx, task, reason) {
    calls.push(['suspend', ctx.identity.login, task, reason]);
    return { ...summary, suspension: { at: 'now', by: ctx.identity.login, reason } };
  },
  async resume(_ctx, task) {
    calls.push(['resume', task]);
    return summary;
  },
};
const auth: Authenticator = { mode: 'dev', authenticate: async () => ({ identity: { login: 'alice', teams: [] }, via: 'token', auditor: false }) };

let base: string;
let close: () => Promise<void>;
before(async () => {
  const { server, dispose } = createApp({
    publicUrl: 'http://oddjob.test',
    logger: createLogger('fatal'),
    runs: {} as RunService,
    deployments: { servedNamespaces: () => ['demo'], listRunnable: async () => [], completePaths: async () => ({ state: 'unavailable' as const, paths: [] }) },
    audit: { query: async () => ({ items: [] }), async *iterate() {}, verify: async () => ({ ok: true, checked: 0 }) },
    auth,
    readiness: [],
    schedules,
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  close = dispose;
});
after(() => close());

describe('schedules routes', () => {
  test('GET /api/schedules lists, optionally by namespace', async () => {
    const r = await request(base).get('/api/schedules?namespace=demo').expect(200);
    assert.deepEqual(r.body, { items: [summary] });
    assert.deepEqual(calls.at(-1), ['list', 'demo']);
  });
  test('history takes a limit and a before time', async () => {
    await request(base).get('/api/schedules/demo/nightly/history?limit=5&before=2026-01-01T00:00:00.000Z').expect(200);
    assert.deepEqual(calls.at(-1), ['history', { namespace: 'demo', name: 'nightly' }, { limit: 5, before: '2026-01-01T00:00:00.000Z' }]);
  });
  test('suspend passes who and why', async () => {
    const r = await request(base).post('/api/schedules/demo/nightly/suspend').send({ reason: 'INC-1' }).expect(200);
    assert.equal(r.body.suspension.by, 'alice');
    assert.deepEqual(calls.at(-1), ['suspend', 'alice', { namespace: 'demo', name: 'nightly' }, 'INC-1']);
  });
  test('resume', async () => {
    await request(base).post('/api/schedules/demo/nightly/resume').send({}).expect(200);
    assert.deepEqual(calls.at(-1), ['resume', { namespace: 'demo', name: 'nightly' }]);
  });
  const bad: Array<[string, () => request.Test, RegExp]> = [
    ['a suspension without a reason', () => request(base).post('/api/schedules/demo/nightly/suspend').send({}), /reason/],
    ['a blank reason', () => request(base).post('/api/schedules/demo/nightly/suspend').send({ reason: '   ' }), /give a --reason/],
    ['a namespace that is not a DNS label', () => request(base).get('/api/schedules/Demo_1/nightly/history'), /namespace/],
    ['a limit over 1000', () => request(base).get('/api/schedules/demo/nightly/history?limit=5000'), /limit/],
    ['a before that is not a time', () => request(base).get('/api/schedules/demo/nightly/history?before=yesterday'), /before/],
    ['an unknown query field', () => request(base).get('/api/schedules?ns=demo'), /ns/],
  ];
  for (const [what, send, message] of bad) {
    test(`refuses ${what} with 400, before the service is asked`, async () => {
      const before = calls.length;
      const r = await send().expect(400);
      assert.match(r.body.error.message, message);
      assert.equal(calls.length, before);
    });
  }
});
