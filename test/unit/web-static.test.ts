// server/http/static.ts: the built web UI at /, client routes fall back to
// index.html, hashed assets are cached for good, the API and health endpoints
// are never shadowed, and an unbuilt UI says how to build it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import express from 'express';
import request from 'supertest';
import { serveWebUi } from '../../server/http/static.js';

let dir: string;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'oddjob-web-'));
  mkdirSync(join(dir, 'assets'));
  writeFileSync(join(dir, 'index.html'), '<!doctype html><title>oddjob</title>');
  writeFileSync(join(dir, 'assets', 'index-abc123.js'), 'console.log(1)');
});
after(() => rmSync(dir, { recursive: true, force: true }));

function app(dirs: string[]) {
  const a = express();
  a.get('/healthz', (_q, r) => void r.send('ok'));
  a.use('/api', (_q, r) => void r.status(404).json({ error: { code: 'not_found', message: 'no such API endpoint' } }));
  a.use(serveWebUi({ dirs }));
  a.use((_q, r) => void r.status(404).send('fell through'));
  return a;
}

describe('web UI static serving', () => {
  test('index.html at / and for client routes, never cached', async () => {
    for (const path of ['/', '/runs/abcdefabcdef', '/audit', '/run']) {
      const r = await request(app([dir]))
        .get(path)
        .expect(200);
      assert.match(r.headers['content-type'] ?? '', /text\/html/);
      assert.equal(r.headers['cache-control'], 'no-cache');
      assert.match(r.text, /<title>oddjob/);
    }
  });
  test('hashed assets are immutable for a year; a missing asset is a 404, not index.html', async () => {
    const r = await request(app([dir]))
      .get('/assets/index-abc123.js')
      .expect(200);
    assert.match(r.headers['cache-control'] ?? '', /max-age=31536000/);
    assert.match(r.headers['cache-control'] ?? '', /immutable/);
    const miss = await request(app([dir]))
      .get('/assets/nope-1.js')
      .expect(404);
    assert.doesNotMatch(miss.text, /<title>/);
    await request(app([dir]))
      .get('/favicon.ico')
      .expect(404);
    await request(app([dir]))
      .get('/assets/../index.html')
      .expect((res) => assert.notEqual(res.status, 500));
  });
  test('/api, /auth, /healthz, /readyz and /metrics are never answered by the UI', async () => {
    const a = app([dir]);
    const api = await request(a).get('/api/nope').expect(404);
    assert.equal(api.body.error.code, 'not_found');
    assert.equal((await request(a).get('/healthz').expect(200)).text, 'ok');
    for (const p of ['/auth/github', '/readyz', '/metrics', '/metrics/x']) assert.equal((await request(a).get(p).expect(404)).text, 'fell through', p);
  });
  test('POST is not the UI’s business', async () => {
    assert.equal(
      (
        await request(app([dir]))
          .post('/runs/x')
          .expect(404)
      ).text,
      'fell through',
    );
  });
  test('an unbuilt UI answers 503 with how to build it', async () => {
    const r = await request(app([join(dir, 'missing')]))
      .get('/')
      .expect(503);
    assert.match(r.text, /npm run build:web/);
  });
});
