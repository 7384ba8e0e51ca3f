// --auth dev gives every caller the same identity, and listens on loopback only.
// That alone does not stop a web page: with DNS rebinding, evil.example first
// resolves to the attacker's server, then to 127.0.0.1, and the victim's browser
// sends the page's requests to oddjob as "same origin" — with Host: evil.example.
// So in dev mode every request (HTTP and WebSocket upgrade) must be addressed to a
// loopback name. Any port is accepted: kubectl port-forward and SSH tunnels put
// oddjob behind another port, and the port does not help a rebinding page anyway.
import type { IncomingMessage } from 'node:http';
import { httpRefusal } from './errors.js';

/** localhost, 127.0.0.0/8 and [::1], each with or without a port. */
export function isLoopbackHost(host: string | undefined): boolean {
  if (!host) return false;
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+))(?::\d{1,5})?$/.exec(host.trim());
  if (!m) return false;
  if (m[1] !== undefined) return /^(0{0,4}:){2,7}0{0,3}1$|^::1$/.test(m[1]);
  const name = m[2]!.toLowerCase().replace(/\.$/, '');
  return name === 'localhost' || /^127\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)\.(25[0-5]|2[0-4]\d|1?\d?\d)$/.test(name);
}

/** Throws 421 unless the request is addressed to a loopback name. */
export function checkLoopbackHost(req: IncomingMessage): void {
  const host = req.headers.host;
  if (isLoopbackHost(host)) return;
  throw httpRefusal(
    421,
    'misdirected',
    `this oddjob runs with --auth dev and answers only requests addressed to localhost, 127.0.0.1 or [::1], not ${JSON.stringify(host ?? '')}`,
    'open it as http://localhost:PORT/ (a page under another name may be a DNS-rebinding attack)',
  );
}
