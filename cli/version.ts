// The CLI's version, for --version and the X-Oddjob-Client header: the version of
// the package it was installed from, or, in the single-file executable (which has no
// package.json beside it), the one hack/sea/build.sh wrote in at build time.
import { packageVersion } from '../protocol/package-version.js';

declare const ODDJOB_BUILD_VERSION: string | undefined;

export function cliVersion(): string {
  return typeof ODDJOB_BUILD_VERSION === 'string' ? ODDJOB_BUILD_VERSION : packageVersion(import.meta.url);
}
