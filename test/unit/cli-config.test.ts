// Where the CLI gets its server and token, and how it treats the config file.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configPath, contextsOf, loadConfig, normaliseServer, resolveEndpoint, updateContexts, type ConfigFile } from '../../cli/config.js';
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
    assert.throws(
      () => loadConfig(configDir('{nope')),
      (e: CliError) => /config\.json is not valid JSON/.test(e.message) && Boolean(e.hint),
    );
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
      context: { name: 'f:1' },
    });
  });
  test("the file's token only goes to the server it was issued for", () => {
    const c = cfg({ server: 'https://oddjob.example.com', token: 'secret' });
    assert.equal(resolveEndpoint('https://oddjob.example.com/', {}, c).token, 'secret');
    assert.equal(resolveEndpoint('https://evil.example.com', {}, c).token, undefined);
    assert.equal(resolveEndpoint('http://oddjob.example.com', {}, c).token, undefined, 'not over plain http either');
  });
  test('no server anywhere explains the two ways to set one', () => {
    assert.throws(
      () => resolveEndpoint(undefined, {}, cfg(undefined)),
      (e: CliError) => /no oddjob server/.test(e.message) && /--server.*ODDJOB_SERVER/.test(e.hint ?? ''),
    );
  });
  test('server URLs are checked and normalised', () => {
    assert.equal(normaliseServer('http://127.0.0.1:8080/'), 'http://127.0.0.1:8080');
    assert.equal(normaliseServer('https://x.example.com/oddjob/?a=1#f'), 'https://x.example.com/oddjob');
    assert.throws(() => normaliseServer('localhost:8080'), /not an http/);
    assert.throws(() => normaliseServer('127.0.0.1:8080'), /not an http/);
  });
});

describe('contexts', () => {
  const cfg = (c: ConfigFile | undefined) => () => c;
  const two: ConfigFile = {
    currentContext: 'prod',
    contexts: {
      prod: { server: 'https://oddjob.example.com', token: 'prod-token', namespace: 'payments' },
      staging: { server: 'https://staging.example.com', token: 'staging-token' },
    },
  };

  test('a file from before contexts is one context for its server, and current', () => {
    assert.deepEqual(contextsOf({ server: 'http://127.0.0.1:8080/', token: 't0k' }), {
      current: '127.0.0.1:8080',
      contexts: { '127.0.0.1:8080': { server: 'http://127.0.0.1:8080/', token: 't0k' } },
    });
    assert.deepEqual(resolveEndpoint(undefined, {}, cfg({ server: 'https://oddjob.example.com', token: 'old' })), {
      server: 'https://oddjob.example.com',
      token: 'old',
      context: { name: 'oddjob.example.com' },
    });
  });
  test('the current context gives server, token and namespace', () => {
    assert.deepEqual(resolveEndpoint(undefined, {}, cfg(two)), {
      server: 'https://oddjob.example.com',
      token: 'prod-token',
      context: { name: 'prod', namespace: 'payments' },
    });
  });
  test('--context, then $ODDJOB_CONTEXT, pick another', () => {
    assert.equal(resolveEndpoint(undefined, {}, cfg(two), 'staging').token, 'staging-token');
    assert.equal(resolveEndpoint(undefined, { ODDJOB_CONTEXT: 'staging' }, cfg(two)).server, 'https://staging.example.com');
    assert.equal(resolveEndpoint(undefined, { ODDJOB_CONTEXT: 'staging' }, cfg(two), 'prod').token, 'prod-token', 'the flag wins');
  });
  test('--server finds the context of that server, and only its token goes there', () => {
    assert.equal(resolveEndpoint('https://staging.example.com', {}, cfg(two)).token, 'staging-token');
    assert.equal(resolveEndpoint('https://elsewhere.example.com', {}, cfg(two)).token, undefined);
    assert.equal(resolveEndpoint('https://elsewhere.example.com', {}, cfg(two), 'prod').token, undefined, '--context with another --server sends no token');
  });
  test('an unknown context is an error that lists the known ones', () => {
    assert.throws(
      () => resolveEndpoint(undefined, {}, cfg(two), 'prdo'),
      (e: CliError) => /no context named "prdo"/.test(e.message) && /prod, staging/.test(e.hint ?? ''),
    );
  });
  test('a write migrates the old file: contexts instead of server/token, unknown keys kept, mode 0600', () => {
    const env = configDir('{"server":"https://oddjob.example.com","token":"old","editor":"vim"}', 0o600);
    updateContexts(env, (c) => {
      c.contexts['staging.example.com'] = { server: 'https://staging.example.com', token: 'new' };
      c.current = 'staging.example.com';
    });
    const path = configPath(env);
    assert.deepEqual(JSON.parse(readFileSync(path, 'utf8')), {
      editor: 'vim',
      currentContext: 'staging.example.com',
      contexts: {
        'oddjob.example.com': { server: 'https://oddjob.example.com', token: 'old' },
        'staging.example.com': { server: 'https://staging.example.com', token: 'new' },
      },
    });
    assert.equal(statSync(path).mode & 0o777, 0o600);
    // And the old login still works after the migration.
    assert.equal(resolveEndpoint('https://oddjob.example.com', {}, () => loadConfig(env).config).token, 'old');
  });
  test('an invalid namespace in a context names the field', () => {
    assert.throws(() => loadConfig(configDir('{"contexts":{"a":{"server":"http://a:1","namespace":"Not OK"}}}')), /contexts\.a\.namespace/);
  });
});
