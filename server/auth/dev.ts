// --auth dev: every request is the same configured person. Only for local
// demos; config.ts refuses it on anything but a loopback address.
import type { Authenticator, Identity } from '../services.js';

export function createDevAuthenticator(identity: Identity): Authenticator {
  const frozen = Object.freeze({ ...identity, teams: [...identity.teams] });
  return {
    async authenticate() {
      return frozen;
    },
  };
}
