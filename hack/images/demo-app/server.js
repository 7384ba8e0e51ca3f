// The demo service: a tiny HTTP server that a Deployment runs, and whose image
// oddjob borrows for one-off commands (see scripts/).
import http from 'node:http';
import os from 'node:os';

const port = Number(process.env.PORT ?? 8080);
const role = process.env.ROLE ?? 'api';
http
  .createServer((req, res) => {
    if (req.url === '/healthz') return res.end('ok\n');
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ role, pod: os.hostname(), greeting: process.env.GREETING ?? 'hello' }) + '\n');
  })
  .listen(port, () => console.log(`${role} listening on :${port}`));
for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
