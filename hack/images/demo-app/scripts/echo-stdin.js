// Interactive: echoes each line typed until "exit", then exits with status 3.
import readline from 'node:readline';
const rl = readline.createInterface({ input: process.stdin });
process.stdout.write('ready\n');
rl.on('line', (l) => {
  if (l.trim() === 'exit') {
    process.stdout.write('bye\n');
    process.exit(3);
  }
  process.stdout.write(`echo: ${l}\n`);
});
rl.on('close', () => process.exit(0));
