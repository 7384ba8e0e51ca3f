// Schedules on the real cluster, in real time, with real Tasks: every-minute schedules
// are Task objects (charts/oddjob/crds) applied through the API server, read by the run
// service's Task catalog (a watch) as the scheduler's `tasks()`, and fired through the
// real launch path (the Task and Deployment re-read, the Deployment's consent, audit
// before create, real Jobs and pods, the store on a SQLite file) for two slots each, all
// at once so the file takes ~3 minutes rather than ~15:
//   every    — fires on time with the schedule's params, Job names are the slots'
//              deterministic names, one audit trail per run, status written to the Task
//   forbid   — the second slot is skipped while the first run still goes, and says why
//   replace  — the first run is cancelled, the second runs
//   allow    — both run at the same time
//   consent  — the Deployment's opt-in is withdrawn after the first slot: the next is denied, no Job
//   paused   — suspended in the store: slots are skipped, no Job
//   pruned   — historyLimit {succeeded: 1}: the older succeeded slot's Job is deleted
//   late     — the scheduler is stopped across two slots: on restart the older is missed and
//              the latest, inside startingDeadline, runs once
//   badparams — params the Task refuses: the schedule fires nothing and its status says why
//   gated    — approval: required with a schedule: the API server refuses the Task
//   hand-*   — `oddjob run task/NAME` (run now) honours the schedule's concurrencyPolicy unless forced
// The wall clock is real: no fake clock or tick option stands in for time here.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import * as k8s from '@kubernetes/client-node';
import type { Run } from '../../protocol/api.js';
import { loadKube, type KubeClients } from '../../server/k8s/client.js';
import { observeScheduleSuccess, registry } from '../../server/metrics.js';
import { deleteJob } from '../../server/k8s/jobs.js';
import { createLogger } from '../../server/logger.js';
import { ServiceError } from '../../server/errors.js';
import { createRunService, type ManagedRunService } from '../../server/runs/service.js';
import { createSlotLauncher } from '../../server/schedules/launch.js';
import { slotJobName } from '../../server/schedules/names.js';
import { Scheduler, type ScheduledTask } from '../../server/schedules/scheduler.js';
import type { ScheduleSlot, SlotStore } from '../../server/schedules/store.js';
import { requestedIn, scheduledTasksOf, statusWriter } from '../../server/schedules/wire.js';
import type { RequestContext } from '../../server/services.js';
import type { AuditLog, OutputStore, RunStore } from '../../server/store/index.js';
import { ScheduleSlots } from '../../server/store/schedules.js';
import type { DbTarget } from '../../server/store/target.js';
import { createTestNamespace, eventually, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { testStores } from '../support/stores.js';
import { applyTaskCrd } from '../support/task-crd.js';

const stores = testStores('schedules');
const ALLOW = { 'oddjob.io/allowed-users': 'alice' };
const QUICK = ['node', '-e', 'console.log("slot ran")'];
const SLOW = ['node', '-e', 'setTimeout(() => {}, 150000)'];
const alice: RequestContext = { identity: { login: 'alice', teams: [] }, client: { kind: 'cli' } };

let cluster: TestCluster;
let custom: k8s.CustomObjectsApi;
let ns: { name: string; dispose: () => Promise<void> };
let runs: ManagedRunService;
let kube: KubeClients;
let runStore: RunStore;
let output: OutputStore;
let audit: AuditLog;
let store: SlotStore;
let scheduler: Scheduler;
let lateTarget: DbTarget;
const lateStore = async () => new ScheduleSlots(await stores.connect(lateTarget));
let late: Scheduler | undefined;
const stopped: Scheduler[] = [];

const TASK = { group: 'oddjob.io', version: 'v1alpha1', plural: 'tasks' };
function taskBody(name: string, deployment: string, command: string[], schedule: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: 'oddjob.io/v1alpha1',
    kind: 'Task',
    metadata: { name, namespace: ns.name },
    spec: { deployment, command, ...extra, schedule: { cron: '* * * * *', timeZone: 'UTC', ...schedule } },
  };
}
const applyTask = (body: ReturnType<typeof taskBody>) => custom.createNamespacedCustomObject({ ...TASK, namespace: ns.name, body });
const readTaskObject = (name: string) =>
  custom.getNamespacedCustomObject({ ...TASK, namespace: ns.name, name }) as Promise<{
    spec: { schedule?: Record<string, unknown> };
    status?: Record<string, unknown> & { conditions?: Array<{ type: string; status: string; reason: string; message: string }> };
  }>;

/** The scheduled Tasks as the server's scheduler gets them: from the run service's Task catalog. */
const fromCatalog = (keep: (t: ScheduledTask) => boolean) => {
  const all = scheduledTasksOf(() => runs.cachedTasks());
  return () => all()?.filter(keep);
};

function schedulerOn(slotStore: SlotStore, list: () => ScheduledTask[] | undefined): Scheduler {
  const logger = createLogger('warn');
  const launcher = createSlotLauncher({
    runs,
    readRun: (id) => runStore.get(id),
    requested: requestedIn(audit),
    deleteJob: (namespace, name, uid) => deleteJob(kube, namespace, name, uid),
  });
  return new Scheduler({
    tasks: list,
    store: slotStore,
    launcher,
    logger,
    tickMs: 1000,
    recordMissed: async () => {},
    writeStatus: statusWriter(kube),
  });
}

const ref = (name: string) => ({ namespace: ns.name, name });
const history = (name: string, s: SlotStore = store) => s.history(ref(name), { limit: 50 }).then((h) => h.reverse());
const decided = (h: ScheduleSlot[]) => h.filter((s) => s.state !== 'scheduled');

async function jobsOf(deployment: string): Promise<k8s.V1Job[]> {
  const list = await cluster.batch.listNamespacedJob({ namespace: ns.name, labelSelector: `oddjob.io/deployment=${deployment}` });
  return list.items;
}

async function outputOf(runId: string): Promise<string> {
  let text = '';
  for await (const c of output.read(runId)) text += c.data.toString();
  return text;
}

let gatedRefusal: unknown;

before(async () => {
  cluster = await requireCluster();
  custom = cluster.kc.makeApiClient(k8s.CustomObjectsApi);
  await applyTaskCrd(cluster);
  ns = await createTestNamespace(cluster, 'sched');
  for (const d of ['api', 'slow', 'owned']) {
    await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment(d, ALLOW) });
  }
  const opened = await stores.open('sqlite', { maxOutputBytesPerRun: 1 << 20 });
  runStore = opened.runs;
  output = opened.output;
  audit = opened.audit;
  kube = loadKube({ kubeconfig: cluster.kubeconfigPath });
  runs = createRunService({
    kube,
    audit,
    runs: runStore,
    output: opened.output,
    wakeups: opened.wakeups,
    logger: createLogger('warn'),
    config: {
      namespaces: [ns.name],
      defaultTimeoutSeconds: 600,
      maxTimeoutSeconds: 3600,
      ttlSecondsAfterFinished: 600,
      startTimeoutSeconds: 120,
      splitLogStreams: 'auto',
    },
  });
  await runs.start();
  store = opened.schedules;
  const yearly = { cron: '0 0 1 1 *' };
  const bodies = [
    // The schedule's params reach the command as one argv element each.
    taskBody(
      'every',
      'api',
      ['node', '-e', 'console.log("slot ran with " + process.argv[1])', '$(params.word)'],
      { params: { word: 'w0rd; echo no' } },
      {
        params: [{ name: 'word', type: 'string', required: true }],
      },
    ),
    taskBody('forbid', 'slow', SLOW, { concurrencyPolicy: 'Forbid' }),
    taskBody('replace', 'slow', SLOW, { concurrencyPolicy: 'Replace' }),
    taskBody('allow', 'slow', SLOW, { concurrencyPolicy: 'Allow' }),
    taskBody('consent', 'owned', QUICK, {}),
    taskBody('paused', 'api', QUICK, {}),
    taskBody('pruned', 'api', QUICK, { historyLimit: { succeeded: 1, failed: 0 } }),
    taskBody('late', 'api', QUICK, { startingDeadline: '50s' }),
    taskBody(
      'badparams',
      'api',
      ['echo', '$(params.merchant)'],
      { params: { merchant: 'nope' } },
      {
        params: [{ name: 'merchant', type: 'string', required: true, pattern: '^m_[a-z0-9]{8}$' }],
      },
    ),
    taskBody('hand-forbid', 'slow', SLOW, { ...yearly, concurrencyPolicy: 'Forbid' }),
    taskBody('hand-replace', 'slow', SLOW, { ...yearly, concurrencyPolicy: 'Replace' }),
  ];
  for (const body of bodies) await applyTask(body);
  gatedRefusal = await applyTask(taskBody('gated', 'api', QUICK, {}, { approval: 'required' })).then(
    () => undefined,
    (err: unknown) => err,
  );
  await eventually('the catalog has every Task', async () => (runs.cachedTasks()?.length ?? 0) >= bodies.length);
  await store.setSuspension(ref('paused'), { at: new Date().toISOString(), by: 'alice', reason: 'testing suspension' });
  scheduler = schedulerOn(
    store,
    fromCatalog((t) => t.name !== 'late'),
  );
  scheduler.start();

  // `late` has a store (and so a cursor) of its own: it is "the server" that stops.
  lateTarget = await stores.target('sqlite');
  const lateOnly = fromCatalog((t) => t.name === 'late');
  late = schedulerOn(await lateStore(), lateOnly);
  await late.tick(); // first sight: the schedule starts now
  const stoppedAt = Date.now();
  late = undefined;
  // Restart once two slots have passed (the second at most 120 s after stoppedAt), a few seconds after the second.
  const secondSlot = (Math.floor(stoppedAt / 60_000) + 2) * 60_000;
  setTimeout(
    () =>
      void lateStore().then((s) => {
        late = schedulerOn(s, lateOnly);
        late.start();
      }),
    secondSlot + 5_000 - Date.now(),
  ).unref();

  // Withdraw consent on `owned` once its first slot has started.
  void eventually(
    'consent: first slot started',
    async () => (await history('consent')).some((s) => s.state === 'started' || s.state === 'succeeded'),
    150_000,
  ).then(async () => {
    const d = await cluster.apps.readNamespacedDeployment({ name: 'owned', namespace: ns.name });
    d.metadata!.annotations = {};
    await cluster.apps.replaceNamespacedDeployment({ name: 'owned', namespace: ns.name, body: d });
  });

  await eventually(
    'two decided slots for every schedule, and the late restart',
    async () => {
      const pruned = (await jobsOf('api')).filter((j) => j.metadata!.name!.startsWith('pruned-') && !j.metadata!.deletionTimestamp);
      if (decided(await history('pruned')).filter((s) => s.state === 'succeeded').length < 2 || pruned.length !== 1) return false;
      for (const name of ['every', 'forbid', 'replace', 'allow', 'consent', 'paused']) {
        const h = await history(name);
        if (name === 'every' ? decided(h).filter((s) => s.state === 'succeeded').length < 2 : h.length < 2) return false;
        if (name === 'replace' && decided(h).length < 1) return false;
      }
      if (!late) return false;
      const lh = await history('late', await lateStore());
      return lh.some((s) => s.state === 'succeeded');
    },
    240_000,
  );
});

after(async () => {
  await scheduler?.stop();
  await late?.stop();
  for (const s of stopped) await s.stop();
  await runs?.stop();
  await ns?.dispose();
});

describe('schedules on the real cluster', () => {
  test('every minute, on time, deterministic Job names, one audit trail per run', async () => {
    const h = (await history('every')).filter((s) => s.state === 'succeeded').slice(0, 2);
    assert.equal(h.length, 2);
    const [a, b] = h.map((s) => Date.parse(s.nominal));
    assert.equal(b! - a!, 60_000, 'consecutive minutes');
    for (const slot of h) {
      assert.equal(new Date(slot.nominal).getUTCSeconds(), 0);
      const run = (await runStore.get(slot.runId!)) as Run;
      assert.equal(run.jobName, slotJobName(ref('every'), new Date(slot.nominal)));
      assert.equal(run.user, `schedule:${ns.name}/every`);
      // On time: created within seconds of the slot (the tick is 1 s).
      assert.ok(Date.parse(run.createdAt) - Date.parse(slot.nominal) < 5_000, `created ${run.createdAt} for slot ${slot.nominal}`);
      const events = (await audit.query({ runId: run.id, limit: 100 })).items.map((e) => e.type);
      assert.deepEqual(events.filter((t) => t === 'run.requested').length, 1);
      assert.deepEqual(events.filter((t) => t === 'run.created').length, 1);
      assert.deepEqual(events.filter((t) => t === 'run.finished').length, 1);
    }
    const names = (await jobsOf('api')).map((j) => j.metadata!.name!);
    for (const slot of h) assert.ok(names.includes(slotJobName(ref('every'), new Date(slot.nominal))), names.join(', '));
    // The Task's command with the schedule's params, the value one literal argument.
    const run = (await runStore.get(h[0]!.runId!))!;
    assert.equal(run.task, 'every');
    assert.deepEqual(run.command.slice(-1), ['w0rd; echo no']);
    assert.match(await outputOf(run.id), /^slot ran with w0rd; echo no$/m);
  });

  test("the Task's status: last, next and last successful slot, missed count, a Scheduled condition beside Ready", async () => {
    const t = await eventually('every: status written after its second success', async () => {
      const o = await readTaskObject('every');
      return o.status?.lastSuccessfulTime ? o : undefined;
    });
    const last = (await history('every')).filter((s) => s.state === 'succeeded').at(-1)!;
    assert.ok(Date.parse(String(t.status!.lastScheduleTime)) >= Date.parse(last.nominal) - 60_000);
    assert.ok(Date.parse(String(t.status!.nextScheduleTime)) > Date.parse(String(t.status!.lastScheduleTime)));
    assert.equal(t.status!.missedSlots, 0);
    const scheduled = t.status!.conditions!.find((c) => c.type === 'Scheduled')!;
    assert.equal(scheduled.status, 'True', JSON.stringify(scheduled));
    assert.ok(t.status!.conditions!.some((c) => c.type === 'Ready' && c.status === 'True'));
  });

  test('params the Task refuses: the schedule fires nothing, and its status says which parameter', async () => {
    const t = await eventually('badparams: Scheduled=False', async () => {
      const o = await readTaskObject('badparams');
      return o.status?.conditions?.find((c) => c.type === 'Scheduled');
    });
    assert.equal(t.status, 'False');
    assert.equal(t.reason, 'InvalidSchedule');
    assert.match(t.message, /spec\.schedule\.params: parameter merchant: must match/);
    assert.deepEqual(await history('badparams'), []);
  });

  test('approval: required with a schedule is refused by the API server, saying why', async () => {
    assert.ok(gatedRefusal, 'the API server accepted a Task that needs approval and has a schedule');
    assert.equal((gatedRefusal as { code?: number }).code, 422);
    assert.match(String((gatedRefusal as Error).message), /a Task with approval: required cannot have a schedule/);
  });

  test('Forbid: the overlapping slot is skipped and recorded', async () => {
    const h = await history('forbid');
    assert.equal(h[0]!.state, 'started');
    assert.equal(h[1]!.state, 'skipped');
    assert.match(h[1]!.message!, /Forbid: run [a-z0-9]{12} of an earlier slot is still going/);
    assert.equal(h[1]!.runId, undefined);
  });

  test('Replace: the old run is cancelled, the new one runs', async () => {
    const h = await history('replace');
    assert.equal(h[0]!.state, 'failed');
    assert.match(h[0]!.message!, /ended cancelled/);
    assert.equal((await runStore.get(h[0]!.runId!))!.status, 'cancelled');
    assert.equal(h[1]!.state, 'started');
    assert.notEqual((await runStore.get(h[1]!.runId!))!.status, 'cancelled');
  });

  test('Allow: both runs go at once', async () => {
    const h = await history('allow');
    assert.deepEqual(
      h.slice(0, 2).map((s) => s.state),
      ['started', 'started'],
    );
    const statuses = await Promise.all(h.slice(0, 2).map(async (s) => (await runStore.get(s.runId!))!.status));
    for (const s of statuses) assert.ok(s === 'pending' || s === 'running', statuses.join(','));
  });

  test('consent withdrawn: the next slot is denied, audited, and no Job is created', async () => {
    const h = await history('consent');
    assert.ok(['started', 'succeeded'].includes(h[0]!.state), h[0]!.state);
    const denied = h.slice(1).find((s) => s.state === 'denied');
    assert.ok(denied, JSON.stringify(h));
    assert.match(denied.message!, /has not opted in to oddjob/);
    assert.equal(denied.runId, undefined);
    const jobs = (await jobsOf('owned')).map((j) => j.metadata!.name);
    assert.equal(jobs.length, 1, jobs.join(', '));
    const refusals = (await audit.query({ type: 'run.denied', deployment: 'owned', limit: 10 })).items;
    assert.ok(refusals.some((e) => e.actor.login === `schedule:${ns.name}/consent`));
  });

  test('suspended: slots are skipped with who and why, and nothing runs', async () => {
    const h = await history('paused');
    assert.ok(h.length >= 2);
    for (const s of h) {
      assert.equal(s.state, 'skipped');
      assert.equal(s.message, 'suspended by alice: testing suspension');
    }
    const runsOfPaused = (await runStore.list({ limit: 500, user: `schedule:${ns.name}/paused` })).items;
    assert.equal(runsOfPaused.length, 0);
  });

  test('historyLimit: only the newest succeeded slot keeps its Job; the older run keeps its record and output', async () => {
    const h = decided(await history('pruned')).filter((s) => s.state === 'succeeded');
    const jobs = (await jobsOf('api')).filter((j) => j.metadata!.name!.startsWith('pruned-') && !j.metadata!.deletionTimestamp);
    assert.deepEqual(
      jobs.map((j) => j.metadata!.name),
      [slotJobName(ref('pruned'), new Date(h.at(-1)!.nominal))],
    );
    const older = (await runStore.get(h[0]!.runId!))!;
    assert.equal(older.status, 'succeeded');
    assert.ok(older.outputBytes > 0, 'its output is still stored');
  });

  test('metrics: start delay (with the 1200 s bucket), slot outcomes, run duration, time since last success', async () => {
    // As schedules/wire.ts does for the server's scheduler.
    observeScheduleSuccess(() => scheduler.sinceLastSuccess());
    const text = await registry.metrics();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? NaN);
    assert.ok(value(/^oddjob_schedule_start_delay_seconds_bucket\{le="1200"\} (\d+)$/m) >= 2);
    assert.equal(
      value(/^oddjob_schedule_start_delay_seconds_bucket\{le="1200"\} (\d+)$/m),
      value(/^oddjob_schedule_start_delay_seconds_count (\d+)$/m),
      'every slot so far started within 20 minutes',
    );
    assert.ok(value(/^oddjob_schedule_slots_total\{outcome="succeeded"\} (\d+)$/m) >= 2);
    assert.ok(value(/^oddjob_schedule_slots_total\{outcome="skipped"\} (\d+)$/m) >= 3);
    assert.ok(value(/^oddjob_schedule_slots_total\{outcome="denied"\} (\d+)$/m) >= 1);
    assert.ok(value(/^oddjob_schedule_run_duration_seconds_count\{status="succeeded"\} (\d+)$/m) >= 2);
    const every = `${ns.name}/every`;
    const since = value(new RegExp(`^oddjob_schedule_seconds_since_last_success\\{task="${every}"\\} ([0-9.e+-]+)$`, 'm'));
    assert.ok(since >= 0 && since < 180, String(since));
  });

  test('stopped across two slots: the older is missed, the latest inside startingDeadline runs once', async () => {
    const slots = await lateStore();
    const h = await history('late', slots);
    assert.equal(h.length >= 2, true, JSON.stringify(h));
    assert.equal(h[0]!.state, 'missed');
    assert.equal(h[1]!.state, 'succeeded');
    assert.equal(Date.parse(h[1]!.nominal) - Date.parse(h[0]!.nominal), 60_000);
    const jobs = (await jobsOf('api')).filter((j) => j.metadata!.name!.startsWith('late-'));
    assert.equal(jobs.length, 1, jobs.map((j) => j.metadata!.name).join(', '));
    assert.equal(jobs[0]!.metadata!.name, slotJobName(ref('late'), new Date(h[1]!.nominal)));
    assert.equal((await slots.taskState(ref('late'))).missedTotal, 1);
  });
  test('run now honours Forbid: refused while a run of the Task goes, --force starts one and the audit says so', async () => {
    const first = (await runs.createRun(alice, { namespace: ns.name, task: 'hand-forbid', params: {} })) as Run;
    await assert.rejects(
      runs.createRun(alice, { namespace: ns.name, task: 'hand-forbid', params: {} }),
      (err: unknown) =>
        err instanceof ServiceError && err.code === 'concurrency_forbid' && err.message.includes(first.id) && /concurrencyPolicy is Forbid/.test(err.message),
    );
    const forced = (await runs.createRun(alice, { namespace: ns.name, task: 'hand-forbid', params: {}, force: true })) as Run;
    assert.notEqual(forced.id, first.id);
    const requested = (await audit.query({ runId: forced.id, type: 'run.requested', limit: 1 })).items[0]!;
    assert.equal(requested.actor.login, 'alice');
    assert.match(requested.message!, new RegExp(`--force past its schedule's concurrencyPolicy Forbid \\(run ${first.id} still going\\)`));
    for (const r of [first, forced]) await runs.cancelRun(alice, r.id);
  });

  test('run now honours Replace: the going run is cancelled by the person, audited, then the new one starts', async () => {
    const first = (await runs.createRun(alice, { namespace: ns.name, task: 'hand-replace', params: {} })) as Run;
    const second = (await runs.createRun(alice, { namespace: ns.name, task: 'hand-replace', params: {} })) as Run;
    assert.equal((await runStore.get(first.id))!.status, 'cancelled');
    const cancelled = (await audit.query({ runId: first.id, type: 'run.cancelled', limit: 1 })).items[0]!;
    assert.equal(cancelled.actor.login, 'alice');
    assert.notEqual((await runStore.get(second.id))!.status, 'cancelled');
    await runs.cancelRun(alice, second.id);
  });
});
