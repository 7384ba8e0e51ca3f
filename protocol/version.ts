// Version skew between the CLI and the server. The server names its version in a
// header on every answer; the CLI warns (never refuses) when the major.minor
// differs, because that is where request and answer shapes may have changed.

/** Response header on every server answer: the server's package version. */
export const SERVER_VERSION_HEADER = 'X-Oddjob-Version';

const MAJOR_MINOR = /^v?(\d+)\.(\d+)(?:[.+-]|$)/;

/** The warning to print when the two versions' major.minor differ; undefined when they match or cannot be read. */
export function versionSkewWarning(cli: string, server: string | null | undefined): string | undefined {
  if (!server) return undefined;
  const c = MAJOR_MINOR.exec(cli);
  const s = MAJOR_MINOR.exec(server);
  if (!c) return undefined;
  // Bytes from the network: show at most a short, printable excerpt.
  const shown = server.replace(/[^\x20-\x7e]/g, '?').slice(0, 40);
  if (!s) return `the server reports version "${shown}", which this CLI cannot read; if commands fail, install the CLI that matches the server`;
  if (c[1] === s[1] && c[2] === s[2]) return undefined;
  return `this CLI is ${c[1]}.${c[2]} but the server is ${s[1]}.${s[2]} (${shown}); if commands fail, install the matching CLI: npm i -g oddjob@${s[1]}.${s[2]}`;
}
