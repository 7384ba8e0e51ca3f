// `oddjob db ...`: store maintenance run by an operator (it opens the database
// directly, like the server). Today: `oddjob db migrate-to URL` copies a SQLite store
// into PostgreSQL, for moving a single-node install to several replicas.
import { copyStore } from './store/copy.js';
import { openStore } from './store/index.js';
import { DbTargetError, describeTarget, parseDbTarget } from './store/target.js';

const USAGE = `Usage: oddjob db migrate-to postgres://USER@HOST:PORT/DATABASE [--db FILE] [--db-password-file FILE]

Copies the SQLite store (--db, env ODDJOB_DB, default ./oddjob.db: audit chain, runs,
output, sign-ins) into an empty PostgreSQL database and verifies the audit chain
there. Stop the server first. The PostgreSQL password comes from the URL,
--db-password-file or PGPASSWORD.
`;

export async function runDbCli(argv: string[]): Promise<number> {
  const args = argv.slice(3);
  if (args.length === 0 || args.includes('--help') || args.includes('-h')) {
    process.stdout.write(USAGE);
    return args.length === 0 ? 2 : 0;
  }
  const [command, url, ...rest] = args;
  if (command !== 'migrate-to' || !url) {
    process.stderr.write(`oddjob db: unknown command ${JSON.stringify(command)}\n${USAGE}`);
    return 2;
  }
  let db = process.env.ODDJOB_DB ?? './oddjob.db';
  let passwordFile = process.env.ODDJOB_DB_PASSWORD_FILE;
  for (let i = 0; i < rest.length; i++) {
    const flag = rest[i];
    const value = rest[++i];
    if (value === undefined) return fail(`${flag} needs a value`);
    if (flag === '--db') db = value;
    else if (flag === '--db-password-file') passwordFile = value;
    else return fail(`unknown option ${flag}`);
  }
  let from, to;
  try {
    const source = parseDbTarget(db);
    if (source.engine !== 'sqlite') return fail(`--db must be the SQLite file to copy from, not ${describeTarget(source)}`);
    const target = parseDbTarget(url, { passwordFile, env: process.env });
    if (target.engine !== 'postgres') return fail(`the target must be a postgres:// URL, not ${url}`);
    from = await openStore(source);
    to = await openStore(target);
    process.stderr.write(`copying ${describeTarget(source)} into ${describeTarget(target)}\n`);
    const r = await copyStore(from, to, (line) => process.stderr.write(`  ${line}\n`));
    if (!r.verify.ok) return fail(`the copy does not verify: event ${r.verify.brokenAt}: ${r.verify.problem}`);
    process.stdout.write(
      `copied ${r.events} audit events (chain verified), ${r.runs} runs, ${r.outputChunks} output chunks, ${r.credentials} credentials, ` +
        `${r.approvals} approval requests, ${r.scheduleTasks} scheduled tasks, ${r.scheduleSlots} schedule slots\n` +
        `point every replica at it: --db ${describeTarget(target)}\n`,
    );
    return 0;
  } catch (err) {
    return fail(err instanceof DbTargetError ? err.message : (err as Error).message);
  } finally {
    await from?.close();
    await to?.close();
  }
}

function fail(message: string): number {
  process.stderr.write(`oddjob db: ${message}\n`);
  return 1;
}
