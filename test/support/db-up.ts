// `npm run db:up`: a local PostgreSQL 15 for trying oddjob with several replicas
// (Debian's postgresql-15; data in .postgres/, kept between runs). `npm run db:down` stops it.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startPostgres } from './postgres.js';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = path.join(root, '.postgres');
const port = Number(process.env.ODDJOB_PG_PORT ?? 55432);
const pg = await startPostgres({ dir, port, detached: true });
const created = await pg.createDatabase('oddjob').then(
  () => true,
  (err: Error) => (/already exists/.test(err.message) ? false : Promise.reject(err)),
);
const url = pg.url('oddjob', { password: false });
process.stdout.write(
  [
    `PostgreSQL 15 is up on 127.0.0.1:${port} (data in ${dir}${created ? ', database oddjob created' : ''}).`,
    'Point every replica at it:',
    `  oddjob server --db ${url} --db-password-file ${path.join(dir, 'password')} ...`,
    'Stop it with: npm run db:down',
    '',
  ].join('\n'),
);
