// Entry of the single-file executable (hack/sea/build.sh): the CLI alone. The server
// needs better-sqlite3's native addon, which a single executable cannot load; it
// ships as the package and the image.
import { main } from './main.js';

async function sea(argv: string[]): Promise<number> {
  if (argv[2] === 'server') {
    process.stderr.write('oddjob: the server is not in the single-file executable; run it from the npm package or the image (docs/operating.md)\n');
    return 1;
  }
  return main(argv);
}

void sea(process.argv).then(async (code) => {
  // As bin/oddjob.mjs: exit once the output is flushed, so idle sockets cannot hold the process.
  const flushed = (s: NodeJS.WriteStream) => new Promise((resolve) => s.write('', resolve));
  await Promise.all([flushed(process.stdout), flushed(process.stderr)]);
  process.exit(code);
});
