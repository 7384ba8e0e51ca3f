// `audit verify` re-hashes every event: at a million events that is seconds of
// CPU, which on the server's event loop would stall every stream and request.
// It runs in a worker thread instead, on its own read-only connection (SQLite's WAL
// and PostgreSQL's snapshots let it read one consistent state while runs keep appending).
import { Worker } from 'node:worker_threads';
import type { AuditVerifyResult } from '../../protocol/api.js';
import type { DbTarget } from './target.js';

function startWorker(target: DbTarget): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./verify-thread.js', import.meta.url), { workerData: { target } });
  // Running from source (tsx: development and tests): Node 20 does not hand the tsx
  // loader to workers, so the worker registers it before importing the .ts entry.
  const tsx = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./verify-thread.ts', import.meta.url).href;
  return new Worker(`import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`, {
    eval: true,
    workerData: { target },
  });
}

export function verifyInWorker(target: DbTarget): Promise<AuditVerifyResult> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(target);
    let result: AuditVerifyResult | undefined;
    worker.once('message', (r: AuditVerifyResult) => (result = r));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`audit verification stopped before it finished (worker exit ${code})`));
    });
  });
}
