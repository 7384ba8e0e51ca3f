#!/usr/bin/env bash
# npm run demo — the README's one command: brings up the local cluster, deploys
# the annotated sample Deployment, starts the oddjob server (dev auth, loopback
# only), runs a command through `oddjob run`, shows its audit trail, and leaves
# the server running for the web UI and more commands until Ctrl-C.
#   bash hack/demo.sh --stop   (npm run demo:stop)  stops a demo server left running
#   bash hack/demo.sh --once                         stops it at the end (scripts, CI)
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/cluster/lib.sh
say() { printf '\n\033[1;36m▶ %s\033[0m\n' "$*" >&2; }
PIDFILE="$STATE/demo-server.pid"

# Stops the demo server this script started earlier, if it still runs (and is one).
stop_demo_server() {
  [ -f "$PIDFILE" ] || return 0
  local pid
  pid="$(cat "$PIDFILE")"
  if [ -n "$pid" ] && grep -qa 'oddjob.mjs' "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped the demo server (pid $pid)" >&2
  fi
  rm -f "$PIDFILE"
}
case "${1:-}" in
  --stop) stop_demo_server; exit 0 ;;
  --once | '') ;;
  *) echo "usage: bash hack/demo.sh [--once | --stop]" >&2; exit 2 ;;
esac

# The project runs on its pinned Node (fetched from the npm registry into the cache),
# whatever Node the machine has: node_modules' native modules are built for it.
NODE_BIN="$(bash hack/node/ensure-node.sh)"
export PATH="$NODE_BIN:$PATH" npm_config_nodedir="$(dirname "$NODE_BIN")"
[ -d node_modules ] || { say "installing npm dependencies"; npm ci --no-audit --no-fund; }
say "local Kubernetes cluster (first run builds it: ~6 min on 2 cores)"
bash hack/cluster/up.sh
export KUBECONFIG="$ADMIN_KUBECONFIG"

say "deploying demo/api (annotated: allowed-teams acme/payments)"
kc apply -f hack/demo/demo.yaml >/dev/null
kc -n demo rollout status deploy/api --timeout=120s >&2

say "building the web UI"
npm run --silent build:web -- --logLevel warn

PORT="${ODDJOB_DEMO_PORT:-8787}"
stop_demo_server   # a demo server left running from an earlier npm run demo holds the port
DB="$STATE/demo-audit.db"
rm -f "$DB" "$DB-wal" "$DB-shm"   # each demo starts a fresh audit trail
say "starting oddjob server on 127.0.0.1:$PORT (dev auth as alice, team acme/payments)"
node bin/oddjob.mjs server --auth dev --dev-user alice --dev-teams acme/payments \
  --namespaces demo --kubeconfig "$KUBECONFIG" --db "$DB" --host 127.0.0.1 --port "$PORT" \
  >"$LOGS/oddjob-demo.log" 2>&1 &
SERVER_PID=$!
echo "$SERVER_PID" >"$PIDFILE"
trap 'kill $SERVER_PID 2>/dev/null || true; rm -f "$PIDFILE"' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$LOGS/oddjob-demo.log" >&2; exit 1; }
export ODDJOB_SERVER="http://127.0.0.1:$PORT"

say "oddjob run deploy/api -n demo --reason \"demo\" -- node scripts/hello.js"
set +e
node bin/oddjob.mjs run deploy/api -n demo --reason "demo" -- node scripts/hello.js --batch=42
code=$?
set -e
say "the command exited with $code. The Tasks the owners declared in demo:"
node bin/oddjob.mjs tasks -n demo
say "oddjob run task/backfill -n demo -p batches=3"
node bin/oddjob.mjs run task/backfill -n demo -p batches=3 --reason "demo"
say "the audit trail of both runs:"
node bin/oddjob.mjs audit -n demo --limit 10
# `oddjob` as an installed CLI would be, for the commands printed below (completion needs it on PATH).
mkdir -p "$STATE/bin"
printf '#!/bin/sh\nexec "%s/node" "%s/bin/oddjob.mjs" "$@"\n' "$NODE_BIN" "$PWD" >"$STATE/bin/oddjob"
chmod 755 "$STATE/bin/oddjob"
if [ "${1:-}" = --once ]; then
  say "done. The server log is in $LOGS/oddjob-demo.log; the audit DB in $DB."
  exit 0
fi
say "the oddjob server keeps running"
cat >&2 <<EOT
  Open the web UI:  http://127.0.0.1:$PORT/   (signed in as alice: dev auth, this machine only)
  More commands, in another terminal:
                    export PATH="$STATE/bin:\$PATH" ODDJOB_SERVER=$ODDJOB_SERVER
                    oddjob run deploy/api -n demo -- node scripts/backfill.js 20
                    oddjob run task/backfill -n demo -p batches=20
                    oddjob runs
                    source <(oddjob completion bash)     # then: oddjob run deploy/api -n demo -- node scripts/<TAB>
                                                         # (the first TAB lists the image in a few seconds; TAB again)
  Server log:       $LOGS/oddjob-demo.log     Audit DB: $DB
  Stop it:          Ctrl-C here, or 'npm run demo:stop' from another terminal
EOT
# Ctrl-C reaches the server too (same process group); demo:stop signals it. Either way
# wait for it to finish shutting down (it drains for up to ~15 s), then clean up.
trap 'echo "stopping the oddjob server…" >&2' INT TERM
while kill -0 "$SERVER_PID" 2>/dev/null; do wait "$SERVER_PID" || true; done
echo "the demo server has stopped; the cluster keeps running (npm run cluster:down stops it)" >&2
