// Checks for "many runs at once" tests (test/integration/faults.test.ts on one server,
// test/integration/replicas.test.ts over several replicas on one PostgreSQL): every run
// has exactly one Job and exactly one complete audit trail that ends with its own exit code.
import assert from 'node:assert/strict';
import type * as k8s from '@kubernetes/client-node';
import { eventually } from './cluster.js';

export interface AuditEventLite {
  seq: number;
  type: string;
  runId?: string;
  status?: string;
  exitCode?: number;
}

/** The audit events matching `query`, oldest first, through a server's NDJSON export. */
export async function auditExport(serverUrl: string, query: string): Promise<AuditEventLite[]> {
  const res = await fetch(`${serverUrl}/api/audit/export?${query}`);
  assert.equal(res.status, 200, await res.clone().text());
  return (await res.text())
    .trim()
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as AuditEventLite)
    .sort((a, b) => a.seq - b.seq);
}

/**
 * Waits until every run in `ids` has ended (as `serverUrl` lists them) and its ending is
 * in the audit log; resolves with their list entries. Both: a run's record is ended a
 * moment before its run.finished is appended, and a trail read in between lacked it.
 */
export async function waitForRunsToEnd(
  serverUrl: string,
  ids: ReadonlySet<string>,
  where: { namespace: string; deployment: string },
  timeoutMs: number,
): Promise<Array<{ id: string; status: string; exitCode?: number }>> {
  const until = Date.now() + timeoutMs;
  const done = await eventually(
    `all ${ids.size} runs to end`,
    async () => {
      const res = await fetch(`${serverUrl}/api/runs?namespace=${where.namespace}&deployment=${where.deployment}&limit=500`);
      const page = (await res.json()) as { items: Array<{ id: string; status: string; exitCode?: number }> };
      const ended = page.items.filter((r) => ids.has(r.id) && !['pending', 'running'].includes(r.status));
      return ended.length === ids.size ? ended : undefined;
    },
    timeoutMs,
  );
  await eventually(
    `the endings of all ${ids.size} runs to be audited`,
    async () => {
      const endings = (await auditExport(serverUrl, `namespace=${where.namespace}&deployment=${where.deployment}`)).filter(
        (e) => ids.has(e.runId ?? '') && ['run.finished', 'run.lost', 'run.cancelled'].includes(e.type),
      );
      return new Set(endings.map((e) => e.runId)).size === ids.size || undefined;
    },
    Math.max(10_000, until - Date.now()),
  );
  return done;
}

/** Exactly one Job per run (the run id is a label on the Job), and none for anything else. */
export function assertOneJobPerRun(jobs: readonly k8s.V1Job[], ids: ReadonlySet<string>): void {
  const perRun = new Map<string, number>();
  for (const j of jobs) {
    const id = j.metadata?.labels?.['oddjob.io/run-id'] ?? '';
    perRun.set(id, (perRun.get(id) ?? 0) + 1);
  }
  for (const id of ids) assert.equal(perRun.get(id), 1, `run ${id} has ${perRun.get(id) ?? 0} Jobs`);
  assert.equal(jobs.length, ids.size, `${jobs.length} Jobs for ${ids.size} runs`);
}

/**
 * One complete trail per run, in seq order: requested → created → started → finished,
 * each event once, the ending with the run's own exit code (`exitCodes`: run id → code)
 * — a run whose ending carries another run's code was mixed up. `events` are all the
 * events of these runs' deployment; an event of a run not in `exitCodes` fails too.
 */
export function assertOneTrailPerRun(events: readonly AuditEventLite[], exitCodes: ReadonlyMap<string, number>): void {
  assert.equal(new Set(events.map((e) => e.seq)).size, events.length, 'no seq appears twice');
  const trails = new Map<string, AuditEventLite[]>();
  for (const e of events) trails.set(e.runId ?? '', [...(trails.get(e.runId ?? '') ?? []), e]);
  const strangers = [...trails.keys()].filter((id) => !exitCodes.has(id));
  assert.deepEqual(strangers, [], 'events of runs nobody started');
  for (const [id, code] of exitCodes) {
    const trail = trails.get(id) ?? [];
    assert.deepEqual(
      trail.map((e) => e.type),
      ['run.requested', 'run.created', 'run.started', 'run.finished'],
      `audit trail of run ${id}: ${JSON.stringify(trail)}`,
    );
    const ending = trail[3]!;
    assert.deepEqual([ending.status, ending.exitCode], [code === 0 ? 'succeeded' : 'failed', code], `the ending of run ${id}`);
  }
}
