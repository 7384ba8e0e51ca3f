// Stores for tests on both engines: every store test is table-driven over ENGINES.
// SQLite: a real file in a temp directory per test file. PostgreSQL: one real server
// per test file (started on first use), a fresh database per store.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { type Connection, type OpenOptions, openConnection } from '../../server/store/database.js';
import { type Store, type StoreOptions, openStore } from '../../server/store/index.js';
import type { Engine } from '../../server/store/schema.js';
import type { DbTarget } from '../../server/store/target.js';
import { type PostgresServer, startPostgres } from './postgres.js';

export const ENGINES: readonly Engine[] = ['sqlite', 'postgres'];

export function testStores(prefix: string) {
  let dir: string | undefined;
  let n = 0;
  let server: Promise<PostgresServer> | undefined;
  const closers: Array<() => Promise<void>> = [];
  after(async () => {
    for (const close of closers.reverse()) await close().catch(() => {});
    if (server) await (await server).destroy();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });
  const tmp = () => (dir ??= fs.mkdtempSync(path.join(os.tmpdir(), `oddjob-${prefix}-`)));
  const api = {
    /** The PostgreSQL server of this test file (started on first use). */
    postgres(): Promise<PostgresServer> {
      return (server ??= startPostgres());
    },
    /** A fresh, empty target on the engine. */
    async target(engine: Engine): Promise<DbTarget> {
      if (engine === 'sqlite') return { engine, path: path.join(tmp(), `${prefix}-${++n}.db`) };
      const s = await api.postgres();
      const url = new URL(await s.createDatabase());
      url.password = '';
      return { engine, url: url.toString(), password: s.password };
    },
    /** A fresh store on the engine, closed after the file's tests. */
    async open(engine: Engine, opts?: StoreOptions): Promise<Store> {
      return api.track(await openStore(await api.target(engine), opts));
    },
    async reopen(target: DbTarget, opts?: StoreOptions): Promise<Store> {
      return api.track(await openStore(target, opts));
    },
    async connect(target: DbTarget, opts?: OpenOptions): Promise<Connection> {
      const c = await openConnection(target, opts);
      closers.push(() => c.close());
      return c;
    },
    track<T extends { close(): Promise<void> }>(s: T): T {
      closers.push(() => s.close());
      return s;
    },
    get dir() {
      return tmp();
    },
  };
  return api;
}
