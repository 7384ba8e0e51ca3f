// Real SQLite files for store tests: a temp directory per test file, fresh
// database files on demand, everything closed and removed afterwards.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before } from 'node:test';
import { type Database, openDatabase } from '../../server/audit/db.js';

export function tempDatabases(prefix: string) {
  let dir = '';
  let n = 0;
  const open: Database[] = [];
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), `oddjob-${prefix}-`));
  });
  after(() => {
    for (const db of open) if (db.open) db.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return {
    get dir() {
      return dir;
    },
    /** A path for a new database file (not created yet). */
    file: () => path.join(dir, `${prefix}-${++n}.db`),
    /** Opens (creating if needed) and tracks a database for clean-up. */
    open(file: string, opts?: Parameters<typeof openDatabase>[1]): Database {
      const db = openDatabase(file, opts);
      open.push(db);
      return db;
    },
    track(db: Database) {
      open.push(db);
      return db;
    },
  };
}
