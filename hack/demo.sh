#!/usr/bin/env bash
# npm run demo — the README's one command: brings up the local cluster, deploys
# the annotated sample Deployment, starts the oddjob server (dev auth, loopback
# only), runs a command through `oddjob run`, and shows its audit trail.
set -euo pipefail
cd "$(dirname "$0")/.."
. hack/cluster/lib.sh
say() { printf '\n\033[1;36m▶ %s\033[0m\n' "$*" >&2; }

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

PORT="${ODDJOB_DEMO_PORT:-8787}"
DB="$STATE/demo-audit.db"
rm -f "$DB" "$DB-wal" "$DB-shm"   # each demo starts a fresh audit trail
say "starting oddjob server on 127.0.0.1:$PORT (dev auth as alice, team acme/payments)"
node bin/oddjob.mjs server --auth dev --dev-user alice --dev-teams acme/payments \
  --namespaces demo --kubeconfig "$KUBECONFIG" --db "$DB" --host 127.0.0.1 --port "$PORT" \
  >"$LOGS/oddjob-demo.log" 2>&1 &
SERVER_PID=$!
trap 'kill $SERVER_PID 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break; sleep 0.2; done
curl -fs "http://127.0.0.1:$PORT/readyz" >/dev/null || { cat "$LOGS/oddjob-demo.log" >&2; exit 1; }
export ODDJOB_SERVER="http://127.0.0.1:$PORT"

say "oddjob run deploy/api -n demo --reason \"demo\" -- node scripts/hello.js"
set +e
node bin/oddjob.mjs run deploy/api -n demo --reason "demo" -- node scripts/hello.js --batch=42
code=$?
set -e
say "the command exited with $code; the audit trail of that run:"
node bin/oddjob.mjs audit -n demo --limit 10
say "done. The server log is in $LOGS/oddjob-demo.log; the audit DB in $DB."
echo "  Try more:  ODDJOB_SERVER=$ODDJOB_SERVER node bin/oddjob.mjs run deploy/api -n demo -- node scripts/backfill.js" >&2
echo "  (the server stops when this script exits; rerun npm run demo any time)" >&2
