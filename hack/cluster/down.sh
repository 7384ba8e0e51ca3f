#!/usr/bin/env bash
# cluster:down — stops exactly the processes cluster:up started (by pid file),
# and removes the cluster's containers, mounts, interfaces, iptables rules and
# state. --keep-pki keeps the certificates for the next start.
. "$(dirname "$0")/lib.sh"
require_root
keep_pki=false; [ "${1:-}" = "--keep-pki" ] && keep_pki=true

stop() { # NAME — SIGTERM, then SIGKILL after 10 s
  local p; p=$(pid_of "$1")
  if [ -n "$p" ] && kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$p" 2>/dev/null || true
    log "stopped $1 (pid $p)"
  fi
  rm -f "$PIDS/$1.pid"
}

# 1. Let the kubelet tear pods down properly (CNI releases IPs and veths).
if is_running kubelet && is_running kube-apiserver && [ -f "$ADMIN_KUBECONFIG" ]; then
  kc delete pods --all-namespaces --all --grace-period=0 --force --wait=false >/dev/null 2>&1 || true
  for _ in $(seq 1 40); do
    [ -z "$(ctr -n k8s.io tasks ls -q 2>/dev/null)" ] && break; sleep 0.5
  done
fi
stop kubelet

# 2. Whatever is left in the CRI namespace belongs to this cluster's kubelet.
if ctr version >/dev/null 2>&1; then
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
  sleep 0.5
  for t in $(ctr -n k8s.io tasks ls -q 2>/dev/null); do ctr -n k8s.io tasks delete -f "$t" >/dev/null 2>&1 || true; done
  for c in $(ctr -n k8s.io containers ls -q 2>/dev/null); do ctr -n k8s.io containers rm "$c" >/dev/null 2>&1 || true; done
fi

# 3. kube-proxy and kube-router, and their iptables rules (and kube-router's ipsets).
stop kube-router
bash "$HACK_DIR/kube-router-cleanup.sh"
stop kube-proxy
[ -x "$K8S_BIN/kube-proxy" ] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true

# 4. Control plane.
stop kube-scheduler
stop kube-controller-manager
stop kube-apiserver
stop etcd
stop containerd   # only if we started it (pid file exists)

# 5. Mounts, network namespaces, interfaces, leases, state.
if [ -d "$KUBELET_ROOT" ]; then
  grep " $KUBELET_ROOT/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do umount -l "$m" 2>/dev/null || true; done
  rm -rf "${KUBELET_ROOT:?}"/pods "${KUBELET_ROOT:?}"/plugins* "${KUBELET_ROOT:?}"/pod-resources "${KUBELET_ROOT:?}"/*_state 2>/dev/null || true
fi
for ns in /var/run/netns/cni-*; do [ -e "$ns" ] || continue; umount "$ns" 2>/dev/null || true; rm -f "$ns"; done
ip link del cni0 2>/dev/null || true
rm -rf /var/lib/cni/networks/oddjob-pods /etc/cni/net.d/10-oddjob-bridge.conflist
ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
rm -rf "$STATE/etcd" "$STATE/apiserver-certs" "$PIDS"
$keep_pki || rm -rf "$PKI" "$CONF" "$ADMIN_KUBECONFIG"
log "cluster stopped and cleaned up (logs kept in $LOGS)"
