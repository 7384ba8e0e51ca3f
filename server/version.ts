// The server's version, announced in the X-Oddjob-Version header so a CLI can warn on skew.
import { packageVersion } from '../protocol/package-version.js';

export const serverVersion = packageVersion(import.meta.url);
