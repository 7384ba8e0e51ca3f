// Says hello from inside the Deployment's runtime: same image, env and secrets.
import os from 'node:os';
const key = process.env.API_KEY;
console.log(`hello from ${os.hostname()} (node ${process.version})`);
console.log(`args: ${JSON.stringify(process.argv.slice(2))}`);
console.log(`GREETING=${process.env.GREETING ?? '(unset)'}`);
console.log(`API_KEY from the Secret: ${key ? `set (${key.length} chars)` : 'NOT SET'}`);
