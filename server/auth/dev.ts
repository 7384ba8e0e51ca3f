// --auth dev: every request is the same configured person. Only for local
// demos; config.ts refuses it on anything but a loopback address, and every
// request must be addressed to a loopback name (http/host.ts: DNS rebinding).
// The demo person is also an auditor, so the demo can show the whole audit log.
import { checkLoopbackHost } from '../http/host.js';
import type { Authenticator, Identity, Principal } from '../services.js';

export function createDevAuthenticator(identity: Identity): Authenticator {
  const principal: Principal = Object.freeze({
    identity: Object.freeze({ ...identity, teams: [...identity.teams] }),
    via: 'dev' as const,
    auditor: true,
  });
  return {
    mode: 'dev',
    async authenticate(req) {
      // Here too, not only in the HTTP middleware: WebSocket upgrades never pass through Express.
      checkLoopbackHost(req);
      return principal;
    },
  };
}
