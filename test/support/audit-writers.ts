// Runs N audit-writer processes against one store at the same moment (see audit-writer.ts).
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { DbTarget } from '../../server/store/target.js';

const WRITER = fileURLToPath(new URL('./audit-writer.ts', import.meta.url));

export async function runWriters(
  target: DbTarget,
  writers: number,
  count: number,
  concurrency = 8,
): Promise<{ total: number; wallMs: number; names: string[] }> {
  const names = Array.from({ length: writers }, (_, i) => `w${i}x`);
  const procs = names.map((name) =>
    spawn(process.execPath, ['--import', 'tsx', WRITER], {
      env: {
        ...process.env,
        ODDJOB_WRITER_TARGET: JSON.stringify(target),
        ODDJOB_WRITER_NAME: name,
        ODDJOB_WRITER_COUNT: String(count),
        ODDJOB_WRITER_CONCURRENCY: String(concurrency),
      },
      stdio: ['pipe', 'pipe', 'pipe'],
    }),
  );
  const stderr = procs.map((p) => {
    const chunks: string[] = [];
    p.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()));
    return chunks;
  });
  const lines = procs.map((p) => createInterface({ input: p.stdout! })[Symbol.asyncIterator]());
  const exited = procs.map(
    (p, i) =>
      new Promise<void>((resolve, reject) =>
        p.once('exit', (code) => (code === 0 ? resolve() : reject(new Error(`writer ${names[i]} exited ${code}: ${stderr[i]!.join('')}`)))),
      ),
  );
  await Promise.all(
    lines.map(async (l, i) => {
      const first = await l.next();
      if (first.value !== 'ready') throw new Error(`writer ${names[i]} did not start: ${stderr[i]!.join('')}`);
    }),
  );
  const t0 = performance.now();
  for (const p of procs) p.stdin!.write('go\n');
  const results = await Promise.all(lines.map(async (l) => JSON.parse((await l.next()).value as string) as { appended: number; ms: number }));
  const wallMs = performance.now() - t0;
  await Promise.all(exited);
  return { total: results.reduce((n, r) => n + r.appended, 0), wallMs, names };
}
