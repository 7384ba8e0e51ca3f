// Sleeps N seconds (default 3600), printing a heartbeat every second.
const s = Number(process.argv[2] ?? 3600);
let i = 0;
const t = setInterval(() => {
  console.log(`tick ${++i}`);
  if (i >= s) {
    clearInterval(t);
  }
}, 1000);
