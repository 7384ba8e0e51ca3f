// Where the CLI gets its server and token, and how it treats the config file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, loadConfig, normaliseServer, resolveEndpoint, type ConfigFile } from '../../cli/config.js';
import { CliError } from '../../cli/errors.js';

function configDir(content: string | undefined, mode = 0o600) {
  const dir = mkdtempSync(join(tmpdir(), 'oddjob-cli-config-'));
  if (content !== undefined) {
    mkdirSync(join(dir, 'oddjob'));
    writeFileSync(join(dir, 'oddjob', 'config.json'), content);
    chmodSync(join(dir, 'oddjob', 'config.json'), mode);
  }
  return { XDG_CONFIG_HOME: dir };
}

describe('config file', () => {
  test('lives under XDG_CONFIG_HOME, else ~/.config', () => {
    assert.equal(configPath({ XDG_CONFIG_HOME: '/x' }), '/x/oddjob/config.json');
    assert.equal(configPath({ HOME: '/home/a' }), '/home/a/.config/oddjob/config.json');
    assert.equal(configPath({ XDG_CONFIG_HOME: '', HOME: '/home/a' }), '/home/a/.config/oddjob/config.json');
  });
  test('a missing file is no config, not an error', () => {
    assert.deepEqual(loadConfig(configDir(undefined)).config, undefined);
  });
  test('a 0600 file loads without warnings; unknown keys are kept', () => {
    const l = loadConfig(configDir('{"server":"https://oddjob.example.com","token":"t0k","user":"alice"}'));
    assert.deepEqual(l.config, { server: 'https://oddjob.example.com', token: 't0k', user: 'alice' });
    assert.deepEqual(l.warnings, []);
  });
  test('a file others can read is loaded, with a warning that says how to fix it', () => {
    const l = loadConfig(configDir('{"token":"t0k"}', 0o644));
    assert.equal(l.config?.token, 't0k');
    assert.equal(l.warnings.length, 1);
    assert.match(l.warnings[0]!, /mode 0644.*chmod 600/);
  });
  test('invalid JSON and invalid fields name the file and the field', () => {
    assert.throws(() => loadConfig(configDir('{nope')), (e: CliError) => /config\.json is not valid JSON/.test(e.message) && Boolean(e.hint));
    assert.throws(() => loadConfig(configDir('{"server":"ftp://x"}')), /is invalid: server: must be an http/);
    assert.throws(() => loadConfig(configDir('{"token":""}')), /token: must not be empty/);
  });
});

describe('resolveEndpoint', () => {
  const cfg = (c: ConfigFile | undefined) => () => c;
  const never = () => assert.fail('the config file should not be read');

  test('--server wins over the environment, which wins over the file', () => {
    const c = cfg({ server: 'http://file:1' });
    assert.equal(resolveEndpoint('http://flag:1/', { ODDJOB_SERVER: 'http://env:1' }, c).server, 'http://flag:1');
    assert.equal(resolveEndpoint(undefined, { ODDJOB_SERVER: 'http://env:1' }, c).server, 'http://env:1');
    assert.equal(resolveEndpoint(undefined, {}, c).server, 'http://file:1');
  });
  test('the file is not read when flag and env say everything', () => {
    assert.deepEqual(resolveEndpoint('http://a:1', { ODDJOB_TOKEN: 'env-token' }, never), { server: 'http://a:1', token: 'env-token' });
  });
  test('an empty variable counts as unset', () => {
    assert.deepEqual(resolveEndpoint(undefined, { ODDJOB_SERVER: '', ODDJOB_TOKEN: '' }, cfg({ server: 'http://f:1', token: 'ft' })), {
      server: 'http://f:1',
      token: 'ft',
    });
  });
  test("the file's token only goes to the server it was issued for", () => {
    const c = cfg({ server: 'https://oddjob.example.com', token: 'secret' });
    assert.equal(resolveEndpoint('https://oddjob.example.com/', {}, c).token, 'secret');
    assert.equal(resolveEndpoint('https://evil.example.com', {}, c).token, undefined);
    assert.equal(resolveEndpoint('http://oddjob.example.com', {}, c).token, undefined, 'not over plain http either');
  });
  test('no server anywhere explains the two ways to set one', () => {
    assert.throws(() => resolveEndpoint(undefined, {}, cfg(undefined)), (e: CliError) => /no oddjob server/.test(e.message) && /--server.*ODDJOB_SERVER/.test(e.hint ?? ''));
  });
  test('server URLs are checked and normalised', () => {
    assert.equal(normaliseServer('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
    assert.equal(normaliseServer('https://x.example.com/oddjob/?a=1#f'), 'https://x.example.com/oddjob');
    assert.throws(() => normaliseServer('localhost:8080'), /not an http/);
    assert.throws(() => normaliseServer('127.0.0.1:8080'), /not an http/);
  });
});
