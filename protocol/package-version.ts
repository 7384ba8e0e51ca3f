// The version in oddjob's package.json, for the CLI and the server (Node only; the
// web UI never imports this). Looked up from the calling module: the sources sit one
// level below the package root (cli/version.ts), the compiled code two (dist/cli/version.js).
import { readFileSync } from 'node:fs';

export function packageVersion(moduleUrl: string): string {
  for (const rel of ['../package.json', '../../package.json']) {
    try {
      const pkg = JSON.parse(readFileSync(new URL(rel, moduleUrl), 'utf8')) as { name?: unknown; version?: unknown };
      if (pkg.name === 'oddjob' && typeof pkg.version === 'string') return pkg.version;
    } catch {
      // not here: try the next level up
    }
  }
  return '0.0.0-unknown';
}
