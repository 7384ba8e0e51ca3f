// Table-driven tests of what owners decide beyond who may run (server/policy/containers.ts):
// which containers a run may target, and whether it may drop the sidecars.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { decideContainer, decideSidecars } from '../../server/policy/containers.js';

const AC = 'oddjob.io/allowed-containers';
const SC = 'oddjob.io/sidecars';
const containers = ['app', 'proxy', 'vault-agent'];

describe('decideContainer (oddjob.io/allowed-containers)', () => {
  const cases: Array<{ name: string; ann?: Record<string, string>; chosen: string; requested?: string; allow: boolean; match?: RegExp }> = [
    { name: 'no annotation: any regular container', ann: {}, chosen: 'vault-agent', requested: 'vault-agent', allow: true },
    { name: 'no annotations at all', ann: undefined, chosen: 'app', allow: true },
    { name: 'listed container via -c', ann: { [AC]: 'app, proxy' }, chosen: 'proxy', requested: 'proxy', allow: true },
    { name: 'listed default container', ann: { [AC]: 'app' }, chosen: 'app', allow: true },
    { name: 'tolerates empty entries and spaces', ann: { [AC]: ' app ,, ' }, chosen: 'app', allow: true },
    {
      name: '-c an unlisted container',
      ann: { [AC]: 'app' },
      chosen: 'vault-agent',
      requested: 'vault-agent',
      allow: false,
      match: /-c vault-agent: runs in deployment demo\/api may use only app \(oddjob\.io\/allowed-containers\)/,
    },
    {
      name: 'the default container must be allowed too',
      ann: { [AC]: 'proxy' },
      chosen: 'app',
      allow: false,
      match: /default container of deployment demo\/api, app, is not one runs may use \(oddjob\.io\/allowed-containers: proxy\)/,
    },
    {
      name: 'empty value is malformed (fail closed)',
      ann: { [AC]: '' },
      chosen: 'app',
      allow: false,
      match: /malformed oddjob\.io\/allowed-containers annotation \(it lists no container/,
    },
    { name: 'only commas is malformed', ann: { [AC]: ' , ,' }, chosen: 'app', allow: false, match: /malformed oddjob\.io\/allowed-containers/ },
    { name: 'not a container name is malformed', ann: { [AC]: 'app, Proxy!' }, chosen: 'app', allow: false, match: /"Proxy!" is not a container name/ },
    {
      name: 'an unknown container is malformed even when the chosen one is listed',
      ann: { [AC]: 'app, migrator' },
      chosen: 'app',
      allow: false,
      match: /names container "migrator", but the deployment has only: app, proxy, vault-agent/,
    },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideContainer({ where: 'demo/api', annotations: c.ann, containers, chosen: c.chosen, requested: c.requested });
      assert.equal(d.allow, c.allow, JSON.stringify(d));
      if (!d.allow) {
        assert.match(d.reason, c.match!);
        assert.ok(d.hint.length > 0);
      }
    });
  }
});

describe('decideSidecars (oddjob.io/sidecars)', () => {
  const sidecars = ['proxy'];
  const cases: Array<{ name: string; value?: string; drop: boolean; sidecars?: string[]; allow: boolean; dropped?: boolean; match?: RegExp }> = [
    { name: 'default (either): kept', drop: false, allow: true, dropped: false },
    { name: 'default (either): --no-sidecars drops', drop: true, allow: true, dropped: true },
    { name: 'either: kept', value: 'either', drop: false, allow: true, dropped: false },
    { name: 'either: dropped on request', value: 'either', drop: true, allow: true, dropped: true },
    { name: 'keep: kept', value: 'keep', drop: false, allow: true, dropped: false },
    {
      name: 'keep: --no-sidecars refused',
      value: 'keep',
      drop: true,
      allow: false,
      match: /--no-sidecars: deployment demo\/api keeps its sidecars in every run \(oddjob\.io\/sidecars: keep\): proxy/,
    },
    { name: 'keep: --no-sidecars with nothing to drop is harmless', value: 'keep', drop: true, sidecars: [], allow: true, dropped: false },
    { name: 'drop: dropped even without --no-sidecars', value: 'drop', drop: false, allow: true, dropped: true },
    { name: 'drop: dropped', value: 'drop', drop: true, allow: true, dropped: true },
    { name: 'case and spaces are forgiven', value: ' Keep ', drop: false, allow: true, dropped: false },
    {
      name: 'unknown value is malformed (fail closed)',
      value: 'sometimes',
      drop: false,
      allow: false,
      match: /malformed oddjob\.io\/sidecars annotation \("sometimes" is not one of keep, drop, either\)/,
    },
    { name: 'empty value is malformed', value: '', drop: true, allow: false, match: /malformed oddjob\.io\/sidecars/ },
  ];
  for (const c of cases) {
    test(c.name, () => {
      const d = decideSidecars({
        where: 'demo/api',
        annotations: c.value === undefined ? {} : { [SC]: c.value },
        requestedDrop: c.drop,
        sidecars: c.sidecars ?? sidecars,
      });
      assert.equal(d.allow, c.allow, JSON.stringify(d));
      if (d.allow) assert.equal(d.drop, c.dropped);
      else assert.match(d.reason, c.match!);
    });
  }
});
