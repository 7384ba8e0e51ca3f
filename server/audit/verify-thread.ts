// Worker-thread entry of verifyInWorker (verify-worker.ts): re-hashes the whole
// chain on its own read-only connection, off the server's event loop.
import { parentPort, workerData } from 'node:worker_threads';
import { openDatabase } from './db.js';
import { AuditLog } from './store.js';

const db = openDatabase((workerData as { dbPath: string }).dbPath, { readonly: true });
try {
  parentPort!.postMessage(new AuditLog(db).verify());
} finally {
  db.close();
}
