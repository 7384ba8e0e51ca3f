// The schedules' failover soak (issue 18): two oddjob replicas on one PostgreSQL, many
// every-minute Tasks on the real cluster, and the leader SIGKILLed again and again —
// sometimes in the second after a minute begins, while its slots are being launched,
// sometimes anywhere in the minute — then restarted as a new replica. Every slot from the
// first to the last whole minute must end `succeeded` with exactly one run and one Job,
// none missed, skipped, failed or denied, no minute without a slot, no Job for anything
// else. The slot-to-Job delay (nominal time → the run.created audit event, written once
// the API server has the Job) is reported as p50/p99/max over all slots and over the
// slots a kill hit.
//
//   npm run soak:schedules                     # 12 minutes, 24 schedules, a kill every ~75 s
//   ODDJOB_SOAK_MINUTES=30 ODDJOB_SOAK_SCHEDULES=50 npm run soak:schedules
//
// The replicas use the production lease timings (15 s / 10 s / 2 s): the failover measured
// is the one users get. Not part of `npm test` (it takes as long as it is told to).
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pgClient from 'pg';
import { createTestNamespace, optedInDeployment, requireCluster, type TestCluster } from '../support/cluster.js';
import { startServerProcess, tailLines, type ServerProcess } from '../support/oddjob.js';
import { type PostgresServer, startPostgres } from '../support/postgres.js';
import { applyTaskCrd, createTask } from '../support/task-crd.js';

const MINUTES = Number(process.env.ODDJOB_SOAK_MINUTES ?? 12);
const SCHEDULES = Number(process.env.ODDJOB_SOAK_SCHEDULES ?? 24);
const KILL_EVERY_S = Number(process.env.ODDJOB_SOAK_KILL_EVERY ?? 75);
/** A slot not started this long after its time is missed: a failover must fit well inside it. */
const STARTING_DEADLINE = '2m';

let cluster: TestCluster;
let ns: Awaited<ReturnType<typeof createTestNamespace>>;
let pg: PostgresServer;
let db: pgClient.Client;
let serverArgs: string[];
const replicas: Array<{ name: string; server: ServerProcess }> = [];
const retired: ServerProcess[] = [];
let generation = 0;

before(async () => {
  cluster = await requireCluster();
  await applyTaskCrd(cluster);
  ns = await createTestNamespace(cluster, 'soak-sched');
  await cluster.apps.createNamespacedDeployment({ namespace: ns.name, body: optedInDeployment('api', { 'oddjob.io/allowed-users': 'alice' }) });
  pg = await startPostgres();
  const url = await pg.createDatabase('oddjob');
  const passwordFile = path.join(pg.dir, 'client-password');
  fs.writeFileSync(passwordFile, pg.password);
  db = new pgClient.Client({ connectionString: url });
  await db.connect();
  serverArgs = [
    '--auth',
    'dev',
    '--dev-user',
    'alice',
    '--namespaces',
    ns.name,
    '--kubeconfig',
    cluster.kubeconfigPath,
    '--db',
    url.replace(`:${encodeURIComponent(pg.password)}@`, '@'),
    '--db-password-file',
    passwordFile,
    '--ttl-after-finished',
    '1h',
  ];
  await Promise.all([startReplica(), startReplica()]);
});

after(async () => {
  await Promise.all(replicas.map((r) => r.server.kill('SIGKILL')));
  await db?.end();
  await pg?.destroy();
  await ns?.dispose();
});

async function startReplica() {
  const name = `replica-${++generation}`;
  replicas.push({ name, server: await startServerProcess(serverArgs, { POD_NAME: name }) });
}

const leads = async (s: ServerProcess) => {
  const text = await (await fetch(`${s.url}/metrics`, { signal: AbortSignal.timeout(5000) })).text().catch(() => '');
  return /^oddjob_leader 1$/m.test(text);
};

async function leader(): Promise<(typeof replicas)[number] | undefined> {
  for (const r of replicas) if (await leads(r.server)) return r;
  return undefined;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const percentile = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]! : NaN;
};

interface Kill {
  at: number;
  who: string;
  mid: boolean;
}

async function createTasks(names: string[]) {
  for (const name of names) {
    await createTask(cluster, ns.name, name, {
      deployment: 'api',
      command: ['node', '-e', `console.log("${name}")`],
      schedule: { cron: '* * * * *', timeZone: 'UTC', startingDeadline: STARTING_DEADLINE, historyLimit: { succeeded: 100, failed: 100 } },
    });
  }
}

/** Every Job name seen in the namespace (listed every ~2 s; finished Jobs live an hour). */
const jobsSeen = new Set<string>();
async function pollJobs() {
  const list = await cluster.batch.listNamespacedJob({ namespace: ns.name });
  for (const j of list.items) jobsSeen.add(j.metadata!.name!);
}

async function pollUntil(until: number) {
  while (Date.now() < until) {
    await pollJobs();
    await sleep(Math.min(2000, Math.max(0, until - Date.now())));
  }
}

/**
 * SIGKILLs the leader until `end`. Every other kill lands while the leader is launching a
 * minute's slots: right after the minute begins, as soon as the audit log has the first
 * run.requested of that minute (the store polled every 10 ms), so claims, audits and
 * creates are in flight. The others land anywhere in the minute.
 */
async function killLeaderRepeatedly(end: number): Promise<Kill[]> {
  const kills: Kill[] = [];
  let mid = true;
  while (Date.now() < end) {
    const minute = Math.ceil(Date.now() / 60_000) * 60_000;
    await pollUntil(Math.min(end, mid ? minute - 3000 : Date.now() + Math.max(20_000, KILL_EVERY_S * 1000 * (0.6 + Math.random() * 0.8))));
    if (Date.now() >= end) break;
    const victim = await leader();
    if (!victim) {
      // Between leaders (a failover still going): look again shortly.
      await sleep(1000);
      continue;
    }
    if (mid && !(await firstLaunchOf(minute))) continue;
    await victim.server.kill('SIGKILL');
    const launched = mid ? await launchedSince(minute) : 0;
    kills.push({ at: Date.now(), who: victim.name, mid });
    console.log(
      `# ${new Date().toISOString()} SIGKILLed the leader ${victim.name}${mid ? ` while it launched the minute (${launched} of ${SCHEDULES} runs requested)` : ''}`,
    );
    replicas.splice(replicas.indexOf(victim), 1);
    retired.push(victim.server);
    await startReplica();
    mid = !mid;
    // At least one whole failover before the next kill.
    await pollUntil(Math.min(end, Date.now() + KILL_EVERY_S * 500));
  }
  return kills;
}

const launchedSince = async (minute: number) =>
  (
    await db.query<{ n: number }>(`select count(*)::int as n from audit_events where namespace = $1 and type = 'run.requested' and time >= $2`, [
      ns.name,
      new Date(minute).toISOString(),
    ])
  ).rows[0]!.n;

/** Waits for the first run.requested of the minute starting at `minute`; false if none came within 10 s of it. */
async function firstLaunchOf(minute: number): Promise<boolean> {
  while (Date.now() < minute + 10_000) {
    if (Date.now() >= minute && (await launchedSince(minute)) > 0) return true;
    await sleep(10);
  }
  return false;
}

interface SlotRow {
  task: string;
  nominal: string;
  state: string;
  run_id: string | null;
  run_ids: string;
  message: string | null;
}

async function readOutcome() {
  const slots = (
    await db.query<SlotRow>(`select task, nominal, state, run_id, run_ids, message from schedule_slots where namespace = $1 order by task, nominal`, [ns.name])
  ).rows;
  const createdRows = await db.query<{ run_id: string; time: string }>(`select run_id, time from audit_events where namespace = $1 and type = 'run.created'`, [
    ns.name,
  ]);
  const requested = (
    await db.query<{ run_id: string; n: number }>(
      `select run_id, count(*)::int as n from audit_events where namespace = $1 and type = 'run.requested' group by run_id`,
      [ns.name],
    )
  ).rows;
  const continued = (
    await db.query<{ n: number }>(
      `select count(*)::int as n from audit_events where namespace = $1 and type = 'run.requested' and json like '%continues the launch%'`,
      [ns.name],
    )
  ).rows[0]!.n;
  return { slots, created: new Map(createdRows.rows.map((r) => [r.run_id, Date.parse(r.time)])), requested, continued };
}

/** The Jobs seen, by slot (`task@yyyymmddhhmm`); a Job of no slot is a problem. */
function jobsBySlot(problems: string[]): Map<string, string[]> {
  const bySlot = new Map<string, string[]>();
  for (const job of jobsSeen) {
    const m = /^(tick-\d{3})-(\d{12})-[0-9a-z]+$/.exec(job);
    if (!m) {
      problems.push(`a Job that belongs to no slot: ${job}`);
      continue;
    }
    const k = `${m[1]}@${m[2]}`;
    bySlot.set(k, [...(bySlot.get(k) ?? []), job]);
  }
  return bySlot;
}

const stamp = (iso: string) => iso.slice(0, 16).replace(/[-T:]/g, '');

/** Each Task owes a slot every minute from its first to the last whole minute: each must have succeeded with one run and one Job. */
function judge(names: string[], outcome: Awaited<ReturnType<typeof readOutcome>>, kills: Kill[], lastWhole: number) {
  const problems: string[] = [];
  const delays: number[] = [];
  const hitDelays: number[] = [];
  const jobs = jobsBySlot(problems);
  let owed = 0;
  let succeeded = 0;
  let relaunched = 0;
  for (const name of names) {
    const mine = outcome.slots.filter((s) => s.task === name);
    if (!mine.length) problems.push(`${name}: no slot at all`);
    const first = mine.length ? Date.parse(mine[0]!.nominal) : Infinity;
    for (let t = first; t <= lastWhole; t += 60_000) {
      owed++;
      const iso = new Date(t).toISOString();
      const s = mine.find((x) => Date.parse(x.nominal) === t);
      const slotProblems = s ? judgeSlot(s, jobs.get(`${name}@${stamp(iso)}`) ?? [], outcome.created) : ['no slot record (a silent gap)'];
      problems.push(...slotProblems.map((p) => `${name} ${iso}: ${p}`));
      if (s?.state === 'succeeded') succeeded++;
      if (s && (JSON.parse(s.run_ids) as string[]).length > 1) relaunched++;
      const at = s?.run_id ? outcome.created.get(s.run_id) : undefined;
      if (at === undefined) continue;
      const delay = (at - t) / 1000;
      delays.push(delay);
      if (kills.some((k) => k.at >= t - 15_000 && k.at <= at)) hitDelays.push(delay);
    }
    for (const s of mine)
      if (Date.parse(s.nominal) > lastWhole && ['missed', 'failed', 'denied', 'skipped'].includes(s.state)) problems.push(`${name} ${s.nominal}: ${s.state}`);
  }
  for (const r of outcome.requested) if (r.n > 2) problems.push(`run ${r.run_id}: requested ${r.n} times`);
  return { problems, delays, hitDelays, owed, succeeded, relaunched, extraRequests: outcome.requested.reduce((n, r) => n + r.n - 1, 0) };
}

/** One Job, and one run that made it (a run whose Job was never created — its launcher killed first — ran nothing and may precede it). */
function judgeSlot(s: SlotRow, jobs: string[], created: Map<string, number>): string[] {
  const out: string[] = [];
  if (s.state !== 'succeeded') out.push(`${s.state}${s.message ? ` (${s.message})` : ''}`);
  const runIds = JSON.parse(s.run_ids) as string[];
  const made = runIds.filter((id) => created.has(id));
  if (made.length !== 1) out.push(`${made.length} runs with a Job (${runIds.join(', ')})`);
  if (s.run_id && !created.has(s.run_id)) out.push(`run ${s.run_id}: no run.created in the audit log`);
  if (jobs.length !== 1) out.push(`${jobs.length} Jobs (${jobs.join(', ')})`);
  return out;
}

const fmt = (xs: number[]) =>
  `p50 ${percentile(xs, 50).toFixed(1)} s, p99 ${percentile(xs, 99).toFixed(1)} s, max ${Math.max(...xs).toFixed(1)} s (n=${xs.length})`;

test(
  `failover soak: ${SCHEDULES} every-minute schedules for ${MINUTES} minutes, the leader SIGKILLed every ~${KILL_EVERY_S} s`,
  { timeout: (MINUTES + 8) * 60_000 },
  async () => {
    const names = Array.from({ length: SCHEDULES }, (_, i) => `tick-${String(i).padStart(3, '0')}`);
    await createTasks(names);
    const end = Date.now() + MINUTES * 60_000;
    const kills = await killLeaderRepeatedly(end);
    // The last whole minute's slots launch and finish.
    const lastWhole = Math.floor(end / 60_000) * 60_000 - 60_000;
    const settle = Date.now() + 150_000;
    for (;;) {
      await pollJobs();
      const open = await db.query<{ n: number }>(
        `select count(*)::int as n from schedule_slots where namespace = $1 and state in ('scheduled', 'started') and nominal <= $2`,
        [ns.name, new Date(lastWhole).toISOString()],
      );
      if (open.rows[0]!.n === 0 || Date.now() > settle) break;
      await sleep(3000);
    }
    const outcome = await readOutcome();
    const v = judge(names, outcome, kills, lastWhole);
    console.log(`# soak: ${SCHEDULES} schedules × ${MINUTES} min, ${kills.length} leader SIGKILLs (${kills.filter((k) => k.mid).length} mid-launch)`);
    console.log(`# slots owed ${v.owed}, succeeded ${v.succeeded}, problems ${v.problems.length}`);
    console.log(`# slot → Job created, all slots: ${fmt(v.delays)}`);
    if (v.hitDelays.length) console.log(`# slot → Job created, slots a kill hit: ${fmt(v.hitDelays)}`);
    console.log(`# launches continued after an interrupted audit: ${outcome.continued}; extra run.requested: ${v.extraRequests}`);
    console.log(`# slots launched again because their first run's Job was never created: ${v.relaunched}`);
    for (const p of v.problems.slice(0, 50)) console.log(`# PROBLEM ${p}`);
    if (v.problems.length) {
      for (const r of replicas) console.log(`# ${r.name} log tail:\n${tailLines(r.server.logs(), 60)}`);
      for (const s of retired) console.log(`# killed replica log tail:\n${tailLines(s.logs(), 30)}`);
    }
    assert.ok(kills.length >= Math.floor((MINUTES * 60) / KILL_EVERY_S / 2), `only ${kills.length} kills happened`);
    assert.ok(v.owed >= SCHEDULES * (MINUTES - 2), `only ${v.owed} slots were owed`);
    assert.deepEqual(v.problems, [], 'every slot ran exactly once, none missed');
    assert.equal(v.extraRequests, outcome.continued, 'a run is requested twice only when a launch cut short after its audit is continued');
  },
);
