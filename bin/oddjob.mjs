#!/usr/bin/env node
// Launcher for the `oddjob` command: hands over to the service (`oddjob server ...`,
// `oddjob db ...`) or the CLI. Only the half that is needed gets imported, to keep the CLI's start fast.
// The installed package and the image carry only the compiled dist/ (tsx, a dev
// dependency, is not installed there); a checkout runs the TypeScript sources
// through tsx, so a stale dist/ from `npm run build` is never run by mistake.
// ODDJOB_COMPILED=1 forces dist/.
import { existsSync } from 'node:fs';

const compiled = process.env.ODDJOB_COMPILED === '1' || !existsSync(new URL('../cli/main.ts', import.meta.url));
if (!compiled) {
  const { register } = await import('tsx/esm/api');
  register();
}
const entry = (name) => (compiled ? `../dist/${name}.js` : `../${name}.ts`);

const argv = process.argv;
// The server's SQLite driver (better-sqlite3 13) crashes with SIGSEGV on Node < 22: say so
// instead. (The CLI half does not load it.)
if ((argv[2] === 'server' || argv[2] === 'db') && Number(process.versions.node.split('.')[0]) < 22) {
  process.stderr.write(
    `oddjob ${argv[2]}: needs Node 22 or newer, and this is Node ${process.versions.node} (its SQLite driver crashes on older ones).\n` +
      'Run it on Node 24 (the image and `npm test` do; in a checkout: export PATH="$(bash hack/node/ensure-node.sh):$PATH").\n',
  );
  process.exit(1);
}
let code;
try {
  if (argv[2] === 'server') {
    const { runServerCli } = await import(entry('server/main'));
    code = await runServerCli(argv);
  } else if (argv[2] === 'db') {
    const { runDbCli } = await import(entry('server/db-cli'));
    code = await runDbCli(argv);
  } else {
    const { main } = await import(entry('cli/main'));
    code = await main(argv);
  }
} catch (err) {
  // main() reports its own errors; this is for failures to load at all.
  process.stderr.write(`oddjob: ${err instanceof Error ? err.message : String(err)}\n`);
  if (process.env.ODDJOB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
  code = argv[2] === 'run' ? 125 : 1;
}

process.exitCode = typeof code === 'number' ? code : 0;
// The CLI is done once its output is flushed; the server once it has shut down
// (runServerCli returns only then: lease released, in-flight work drained, stores
// closed). Exiting explicitly stops idle keep-alive sockets, a paused stdin or a
// leftover timer from holding the process open, and waiting for the flush means no
// output is lost.
const flushed = (stream) => new Promise((resolve) => stream.write('', resolve));
await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
process.exit(process.exitCode);
