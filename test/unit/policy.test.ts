// Table-driven tests of who may run where (server/policy/decide.ts).
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideAccess, parseAccessPolicy } from '../../server/policy/decide.js';

const T = 'oddjob.io/allowed-teams';
const U = 'oddjob.io/allowed-users';

describe('decideAccess', () => {
  const cases: Array<{ name: string; ann?: Record<string, string>; login: string; teams?: string[]; org?: string; allow: boolean; match: RegExp }> = [
    { name: 'no annotations', ann: {}, login: 'alice', allow: false, match: /has not opted in/ },
    { name: 'undefined annotations', ann: undefined, login: 'alice', allow: false, match: /has not opted in/ },
    { name: 'listed user', ann: { [U]: 'bob, alice' }, login: 'alice', allow: true, match: /user alice/ },
    { name: 'listed user, different case', ann: { [U]: 'Alice' }, login: 'ALICE', allow: true, match: /user alice/ },
    { name: 'team member', ann: { [T]: 'acme/payments' }, login: 'carol', teams: ['acme/web', 'acme/payments'], allow: true, match: /team acme\/payments/ },
    { name: 'team, different case', ann: { [T]: 'ACME/Payments' }, login: 'carol', teams: ['acme/payments'], allow: true, match: /team/ },
    {
      name: 'same slug in another org does not match',
      ann: { [T]: 'acme/payments' },
      login: 'eve',
      teams: ['evil/payments'],
      allow: false,
      match: /you \(eve\) are not in acme\/payments/,
    },
    {
      name: 'bare slug with a default org',
      ann: { [T]: 'payments' },
      login: 'carol',
      teams: ['acme/payments'],
      org: 'acme',
      allow: true,
      match: /acme\/payments/,
    },
    {
      name: 'bare slug without a default org matches nobody',
      ann: { [T]: 'payments' },
      login: 'carol',
      teams: ['acme/payments', 'payments'],
      allow: false,
      match: /not in any allowed team/,
    },
    { name: 'opted in but nobody listed', ann: { [T]: '' }, login: 'alice', allow: false, match: /not in any allowed team/ },
    {
      name: 'nobody',
      ann: { [T]: 'acme/payments', [U]: 'bob' },
      login: 'mallory',
      teams: [],
      allow: false,
      match: /mallory.*acme\/payments.*allowed users.*bob/,
    },
    {
      name: 'malformed entries are ignored, valid ones kept',
      ann: { [T]: 'acme/pay ments, acme/payments', [U]: 'not a login' },
      login: 'x',
      teams: ['acme/payments'],
      allow: true,
      match: /team acme\/payments/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideAccess({
        namespace: 'demo',
        deployment: 'api',
        annotations: c.ann,
        identity: { login: c.login, teams: c.teams ?? [] },
        defaultOrg: c.org,
      });
      assert.equal(d.allow, c.allow);
      assert.match(d.allow ? d.via : d.reason, c.match);
    });
  }
});

describe('parseAccessPolicy', () => {
  test('normalizes, dedupes and reports problems by entry', () => {
    const p = parseAccessPolicy({ [T]: ' acme/Payments ,acme/payments,, x/y/z, ops', [U]: '@Alice, bad login' }, undefined);
    assert.deepEqual(p.allowedTeams, ['acme/payments']);
    assert.deepEqual(p.allowedUsers, ['alice']);
    assert.equal(p.optedIn, true);
    assert.equal(p.problems.length, 3);
    assert.match(p.problems.join('\n'), /"x\/y\/z"/);
    assert.match(p.problems.join('\n'), /"ops" has no org/);
    assert.match(p.problems.join('\n'), /"bad login"/);
  });
  test('not opted in without either annotation', () => {
    assert.equal(parseAccessPolicy({ other: 'x' }).optedIn, false);
  });
});
