// The CLI's version, for --version and the X-Oddjob-Client header: the version of
// the package it was installed from.
import { packageVersion } from '../protocol/package-version.js';

export function cliVersion(): string {
  return packageVersion(import.meta.url);
}
