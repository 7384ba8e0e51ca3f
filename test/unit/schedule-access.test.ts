// Table-driven tests of who may see and change (suspend, resume) a Task's schedule
// (server/tasks/access.ts decideScheduleAccess): exactly who may run the Task — its own
// allowedTeams/allowedUsers when it has them, else the Deployment's — while auditors
// may read every schedule and change none they may not run. A Deployment that is gone,
// or a broken Task whose own lists cannot be read, refuses (fail closed).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideScheduleAccess } from '../../server/tasks/access.js';

const DEPLOYMENT = { annotations: { 'oddjob.io/allowed-teams': 'acme/payments', 'oddjob.io/allowed-users': 'bob' } };
const CLOSED = { annotations: {} };
const COMMAND = ['node', '-e', '1'];
const SCHEDULE = { cron: '@daily', timeZone: 'UTC' };
const task = (extra: Record<string, unknown> = {}) => ({ deployment: 'api', command: COMMAND, schedule: SCHEDULE, ...extra });
/** Invalid: a Task without a command cannot run. */
const broken = (extra: Record<string, unknown> = {}) => ({ deployment: 'api', schedule: SCHEDULE, ...extra });

const alice = { login: 'alice', teams: ['acme/payments'] };
const bob = { login: 'bob', teams: [] };
const lead = { login: 'lena', teams: ['acme/leads'] };
const erin = { login: 'erin', teams: ['acme/security'] };

type Case = {
  name: string;
  spec: unknown;
  deployment?: { annotations?: Record<string, string> } | null;
  who: { login: string; teams: string[] };
  auditor?: boolean;
  read: boolean;
  change: boolean;
  why?: RegExp;
};

const cases: Case[] = [
  { name: 'the Deployment allows a team member of a Task without own lists', spec: task(), who: alice, read: true, change: true },
  { name: 'the Deployment allows a user of a Task without own lists', spec: task(), who: bob, read: true, change: true },
  { name: 'nobody else', spec: task(), who: lead, read: false, change: false, why: /you \(lena\) are not in acme\/payments/ },
  {
    name: "allowed by the Deployment but not by the Task's allowedUsers: neither sees nor changes it",
    spec: task({ allowedUsers: ['bob'] }),
    who: alice,
    read: false,
    change: false,
    why: /you \(alice\) are not in any allowed team or the allowed users of .*\/task nightly/,
  },
  { name: "the user the Task's allowedUsers names", spec: task({ allowedUsers: ['bob'] }), who: bob, read: true, change: true },
  { name: 'a team member listed only on the Task', spec: task({ allowedTeams: ['acme/leads'] }), who: lead, read: true, change: true },
  { name: "a bare team slug on the Task is in the server's org", spec: task({ allowedTeams: ['leads'] }), who: lead, read: true, change: true },
  { name: 'an auditor reads every schedule but changes none', spec: task({ allowedUsers: ['bob'] }), who: erin, auditor: true, read: true, change: false },
  { name: 'an auditor who may run the Task may change it', spec: task({ allowedUsers: ['erin'] }), who: erin, auditor: true, read: true, change: true },
  {
    name: 'a Deployment that is gone refuses everyone but auditors reading',
    spec: task({ allowedUsers: ['bob'] }),
    deployment: null,
    who: bob,
    read: false,
    change: false,
    why: /deployment .*\/api, which does not exist/,
  },
  { name: 'the same for an auditor changing it', spec: task(), deployment: null, who: erin, auditor: true, read: true, change: false },
  {
    name: "a Deployment that has not opted in refuses whatever the Task's lists say",
    spec: task({ allowedUsers: ['bob'] }),
    deployment: CLOSED,
    who: bob,
    read: false,
    change: false,
    why: /cannot run: deployment .*\/api has not opted in/,
  },
  {
    name: 'a Task that names no deployment refuses',
    spec: { command: COMMAND, schedule: SCHEDULE },
    who: bob,
    read: false,
    change: false,
    why: /names no deployment/,
  },
  { name: "a broken Task without own lists: the Deployment's lists", spec: broken(), who: alice, read: true, change: true },
  { name: 'a broken Task without own lists refuses whom the Deployment refuses', spec: broken(), who: lead, read: false, change: false },
  { name: 'a broken Task with own lists: those must allow too', spec: broken({ allowedUsers: ['bob'] }), who: alice, read: false, change: false },
  {
    name: 'a broken Task with own lists: the Deployment must allow too',
    spec: broken({ allowedTeams: ['acme/leads'] }),
    who: lead,
    read: false,
    change: false,
  },
  { name: 'a broken Task with own lists: allowed by both', spec: broken({ allowedUsers: ['bob'] }), who: bob, read: true, change: true },
  {
    name: 'a broken Task whose own lists cannot be read refuses',
    spec: broken({ allowedUsers: 'bob' }),
    who: bob,
    read: false,
    change: false,
    why: /allowedTeams\/allowedUsers cannot be read/,
  },
];

describe('decideScheduleAccess', () => {
  for (const c of cases) {
    test(c.name, () => {
      for (const action of ['read', 'change'] as const) {
        const d = decideScheduleAccess({
          namespace: 'payments',
          task: 'nightly',
          action,
          taskSpec: c.spec,
          deployment: c.deployment === undefined ? DEPLOYMENT : c.deployment,
          identity: c.who,
          auditor: c.auditor,
          defaultOrg: 'acme',
        });
        assert.equal(d.allow, c[action], `${action}: ${d.allow ? d.via : d.reason}`);
        if (!d.allow && c.why) assert.match(d.reason, c.why);
      }
    });
  }
});
