// Version reporting and skew: what --version says, what the server announces, and
// when the CLI warns.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SERVER_VERSION_HEADER, versionSkewWarning } from '../../protocol/version.js';
import { packageVersion } from '../../protocol/package-version.js';
import { cliVersion } from '../../cli/version.js';
import { serverVersion } from '../../server/version.js';
import { OddjobClient } from '../../cli/client.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

describe('versions', () => {
  test("the CLI and the server report package.json's version", () => {
    assert.equal(cliVersion(), pkg.version);
    assert.equal(serverVersion, pkg.version);
  });
  test('compiled code two levels below the package root finds package.json too', () => {
    // dist/cli/version.js: the layout of the installed package.
    assert.equal(packageVersion(new URL('../../dist/cli/version.js', import.meta.url).href), pkg.version);
  });

  const cases: Array<[cli: string, server: string | null, warns: RegExp | undefined]> = [
    ['0.1.0', '0.1.0', undefined],
    ['0.1.0', '0.1.7', undefined],
    ['0.1.3', '0.1.0-rc.1', undefined],
    ['1.2.0', '1.2.9+build.5', undefined],
    ['0.1.0', '0.2.0', /this CLI is 0\.1 but the server is 0\.2 \(0\.2\.0\).*npm i -g oddjob@0\.2/],
    ['1.0.0', '2.0.0', /this CLI is 1\.0 but the server is 2\.0/],
    ['0.10.0', '0.1.0', /this CLI is 0\.10 but the server is 0\.1/],
    ['0.1.0', null, undefined], // an older server that does not announce itself: nothing to compare
    ['0.1.0', '', undefined],
    ['0.1.0', 'banana\x1b[31m', /reports version "banana\?\[31m", which this CLI cannot read/],
  ];
  for (const [cli, server, warns] of cases) {
    test(`CLI ${cli}, server ${JSON.stringify(server)}: ${warns ? 'warns' : 'quiet'}`, () => {
      const w = versionSkewWarning(cli, server);
      if (warns) assert.match(w ?? '', warns);
      else assert.equal(w, undefined);
    });
  }

  test("the client hands every answer's version header to the caller, error answers too", async () => {
    const server = createServer((req, res) => {
      const ok = req.url === '/api/whoami';
      res.writeHead(ok ? 200 : 404, { 'content-type': 'application/json', [SERVER_VERSION_HEADER]: ok ? '9.8.7' : '9.8.6' });
      res.end(ok ? JSON.stringify({ login: 'alice', teams: [] }) : JSON.stringify({ error: { code: 'not_found', message: 'no' } }));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const seen: Array<string | null> = [];
      const client = new OddjobClient({
        server: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
        version: '1.0.0',
        onServerVersion: (v) => seen.push(v),
      });
      await client.whoami();
      await assert.rejects(client.getRun('aaaaaaaaaaaa'));
      assert.deepEqual(seen, ['9.8.7', '9.8.6']);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});
