// Worker-thread entry of verifyInWorker (verify-worker.ts): re-hashes the whole
// chain on its own read-only connection, off the server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { AuditLog } from './audit.js';
import { openConnection } from './database.js';
import type { DbTarget } from './target.js';

const conn = await openConnection((workerData as { target: DbTarget }).target, { readonly: true, maxConnections: 1 });
try {
  parentPort!.postMessage(await new AuditLog(conn).verify());
} finally {
  await conn.close();
}
