# Shared settings and helpers for the local-cluster scripts (sourced).
set -euo pipefail
HACK_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$HACK_DIR/../.." && pwd)"
. "$HACK_DIR/versions.sh"

# Runtime state of the cluster lives in the repo's git-ignored .cluster/.
STATE="${ODDJOB_CLUSTER_STATE:-$REPO_ROOT/.cluster}"
PKI="$STATE/pki"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
CONF="$STATE/config"

NODE_NAME="${NODE_NAME:-oddjob-node}"
NODE_IP="${NODE_IP:-10.201.0.1}"        # a /32 on lo: this kernel has no dummy interfaces
SVC_CIDR="10.96.0.0/12"
SVC_IP="10.96.0.1"
POD_CIDR="10.88.0.0/16"
APISERVER_PORT=6443
KUBELET_ROOT=/var/lib/kubelet
CONTAINERD_SOCK=/run/containerd/containerd.sock

COMPONENTS="containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kube-router"

KUBECTL="$K8S_BIN/kubectl"
ADMIN_KUBECONFIG="$STATE/kubeconfig"

step_t0=$SECONDS
log()  { printf '\033[1m[cluster %s]\033[0m %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
warn() { printf '\033[33m[cluster %s] %s\033[0m\n' "$(date +%H:%M:%S)" "$*" >&2; }
die()  { printf '\033[31m[cluster] error: %s\033[0m\n' "$*" >&2; exit 1; }

require_root() { [ "$(id -u)" = 0 ] || die "the local cluster needs root (it runs containerd and the kubelet); run as root"; }

pid_of() { local f="$PIDS/$1.pid"; [ -f "$f" ] && cat "$f" || true; }
is_running() { local p; p=$(pid_of "$1"); [ -n "$p" ] && kill -0 "$p" 2>/dev/null; }

# start NAME CMD... — starts a component in the background, logs to .cluster/logs/NAME.log.
start_component() {
  local name=$1; shift
  mkdir -p "$LOGS" "$PIDS"
  if is_running "$name"; then log "$name already running (pid $(pid_of "$name"))"; return; fi
  # setsid: own process group, so stopping it never touches the caller's group.
  setsid "$@" >>"$LOGS/$name.log" 2>&1 < /dev/null &
  echo $! > "$PIDS/$name.pid"
}

# wait_for WHAT TIMEOUT_S CMD... — retries CMD until it succeeds, printing progress.
wait_for() {
  local what=$1 timeout=$2; shift 2
  local t0=$SECONDS last=0
  until "$@" >/dev/null 2>&1; do
    if (( SECONDS - t0 >= timeout )); then die "$what not ready after ${timeout}s — see $LOGS/"; fi
    if (( SECONDS - last >= 10 )); then log "waiting for $what ($((SECONDS - t0))s)"; last=$SECONDS; fi
    sleep 0.5
  done
  log "$what ready ($((SECONDS - t0))s)"
}

kc() { "$KUBECTL" --kubeconfig "$ADMIN_KUBECONFIG" "$@"; }

# NetworkPolicy enforcement: the bridge CNI has none. kube-router's firewall
# controller alone (no routing, no service proxy) filters pod traffic with
# iptables and ipsets; it reads the Node object, so it starts after the node.
start_kube_router() {
  kc apply -f "$HACK_DIR/kube-router-rbac.yaml" >/dev/null
  start_component kube-router "$KUBE_ROUTER_BIN/kube-router" --kubeconfig="$CONF/kube-router.kubeconfig" \
    --run-firewall=true --run-router=false --run-service-proxy=false \
    --hostname-override="$NODE_NAME" --service-cluster-ip-range="$SVC_CIDR" --health-port=20244 --v=1
  wait_for kube-router 60 curl -fsS http://127.0.0.1:20244/healthz
}
