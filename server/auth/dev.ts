// --auth dev: every request is the same configured person. Only for local
// demos; config.ts refuses it on anything but a loopback address. The demo
// person is also an auditor, so the demo can show the whole audit log.
import type { Authenticator, Identity, Principal } from '../services.js';

export function createDevAuthenticator(identity: Identity): Authenticator {
  const principal: Principal = Object.freeze({
    identity: Object.freeze({ ...identity, teams: [...identity.teams] }),
    via: 'dev' as const,
    auditor: true,
  });
  return {
    mode: 'dev',
    async authenticate() {
      return principal;
    },
  };
}
