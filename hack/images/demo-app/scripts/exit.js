// Writes one line to stdout and one to stderr, then exits with the given code.
const code = Number(process.argv[2] ?? 0);
process.stdout.write('to stdout\n');
process.stderr.write('to stderr\n');
process.exitCode = code;
