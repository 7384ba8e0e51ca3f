// A pretend backfill: progress on stdout, a warning on stderr, exit 0.
const total = Number(process.argv[2] ?? 5);
for (let i = 1; i <= total; i++) {
  console.log(`backfilled batch ${i}/${total}`);
  await new Promise((r) => setTimeout(r, 200));
}
console.error('warning: 0 rows skipped');
console.log('done');
