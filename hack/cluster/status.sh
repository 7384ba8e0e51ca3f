#!/usr/bin/env bash
# cluster:status — one line per component; exit 0 only when all are healthy.
# --quiet prints nothing (used by cluster:up to detect a running cluster).
. "$(dirname "$0")/lib.sh"
quiet=false; [ "${1:-}" = "--quiet" ] && quiet=true
ok=true
say() { $quiet || printf '%-24s %s\n' "$1" "$2"; }
check() { # NAME PROBE...
  local name=$1; shift
  # ODDJOB_STATUS_SKIP: components to leave out (up.sh asks whether all but kube-router are healthy).
  [[ " ${ODDJOB_STATUS_SKIP:-} " == *" $name "* ]] && return
  local state="stopped"
  if [ "$name" = containerd ] && ! is_running containerd && ctr version >/dev/null 2>&1; then state="running (not started by oddjob)"
  elif is_running "$name"; then state="running (pid $(pid_of "$name"))"; fi
  if [[ $state == running* ]] && "$@" >/dev/null 2>&1; then say "$name" "ok — $state"
  else say "$name" "NOT HEALTHY — $state (log: $LOGS/$name.log)"; ok=false; fi
}
check containerd ctr version
check etcd curl -fsS http://127.0.0.1:2379/health
check kube-apiserver curl -fsSk https://127.0.0.1:$APISERVER_PORT/readyz
check kube-controller-manager curl -fsSk https://127.0.0.1:10257/healthz
check kube-scheduler curl -fsSk https://127.0.0.1:10259/healthz
check kubelet curl -fsS http://127.0.0.1:10248/healthz
check kube-proxy curl -fsS http://127.0.0.1:10256/healthz
check kube-router curl -fsS http://127.0.0.1:20244/healthz
if $ok && kc get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
  say "node $NODE_NAME" "Ready"
else say "node $NODE_NAME" "not Ready"; ok=false; fi
$quiet || { $ok && echo "KUBECONFIG=$ADMIN_KUBECONFIG"; }
$ok
