// Writes N MiB (default 5) of deterministic, line-structured output to stdout.
const mib = Number(process.argv[2] ?? 5);
const total = mib * 1024 * 1024;
let written = 0,
  line = 0;
function chunk() {
  const parts = [];
  let n = 0;
  while (n < 65536 && written + n < total) {
    let s = `line ${String(line++).padStart(9, '0')} ${'abcdefghijklmnopqrstuvwxyz0123456789'.repeat(2)}\n`;
    if (written + n + s.length > total) s = s.slice(0, total - written - n);
    parts.push(s);
    n += s.length;
  }
  written += n;
  return parts.join('');
}
function pump() {
  while (written < total) if (!process.stdout.write(chunk())) return process.stdout.once('drain', pump);
}
pump();
