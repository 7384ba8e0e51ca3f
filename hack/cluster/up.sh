#!/usr/bin/env bash
# cluster:up — leaves a running single-node Kubernetes cluster (real etcd,
# apiserver, controller-manager, scheduler, containerd, kubelet, kube-proxy,
# kube-router's NetworkPolicy controller) with the demo images imported.
# Idempotent: a healthy cluster is left alone.
. "$(dirname "$0")/lib.sh"
require_root
T_ALL=$SECONDS
phase() { log "── $* ──"; PHASE_T0=$SECONDS; }
phase_done() { log "   done in $((SECONDS - PHASE_T0))s"; }

if bash "$HACK_DIR/status.sh" --quiet 2>/dev/null; then
  log "cluster already running and healthy — nothing to do (npm run cluster:status for details)"
  exit 0
fi
# A cluster started before kube-router was part of it: add it instead of restarting everything.
if ! is_running kube-router && ODDJOB_STATUS_SKIP=kube-router bash "$HACK_DIR/status.sh" --quiet 2>/dev/null; then
  log "cluster running without kube-router (started by an older cluster:up): adding it"
  command -v ipset >/dev/null || { DEBIAN_FRONTEND=noninteractive apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ipset >/dev/null; }
  bash "$HACK_DIR/build-binaries.sh"
  bash "$HACK_DIR/pki.sh"
  start_kube_router
  exit 0
fi

phase "1/7 host packages"
need=""
for pair in containerd:containerd runc:runc /usr/lib/cni/bridge:containernetworking-plugins conntrack:conntrack \
            iptables:iptables ipset:ipset openssl:openssl busybox:busybox-static; do
  cmd=${pair%%:*} pkg=${pair#*:}
  if [[ $cmd == /* ]]; then [ -e "$cmd" ] || need="$need $pkg"; else command -v "$cmd" >/dev/null || need="$need $pkg"; fi
done
if [ -n "$need" ]; then
  log "installing from Debian:$need"
  DEBIAN_FRONTEND=noninteractive apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $need >/dev/null
fi
phase_done

phase "2/7 Kubernetes v$K8S_VERSION + etcd v$ETCD_VERSION + helm v$HELM_VERSION + registry v$REGISTRY_VERSION binaries (cache: $ODDJOB_CACHE)"
bash "$HACK_DIR/build-binaries.sh"
bash "$HACK_DIR/build-helm.sh"   # for the chart tests and users of the local cluster
bash "$HACK_DIR/build-registry.sh"   # the local registry the image-pull test pulls from
phase_done

phase "3/7 clean slate (leftovers of an earlier cluster are removed)"
bash "$HACK_DIR/down.sh" --keep-pki >/dev/null 2>&1 || true
# After our own clean-up, ports held by processes we did not start (another cluster, another clone's
# cluster) would make our components fail in confusing ways: say so instead.
for port in 2379 $APISERVER_PORT 10250 10257 10259; do
  owner=$(ss -Hltnp "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\("[^"]*",pid=[0-9]*\).*/\1/p' | head -1)
  if [ -n "$owner" ]; then die "port $port is already in use by $owner — stop that cluster first (npm run cluster:down in its checkout)"; fi
done

mkdir -p "$STATE" "$LOGS" "$PIDS" "$CONF"
bash "$HACK_DIR/pki.sh"
ip addr add "$NODE_IP/32" dev lo 2>/dev/null || true
sysctl -qw net.ipv4.ip_forward=1
sysctl -qw net.bridge.bridge-nf-call-iptables=1 2>/dev/null || warn "net.bridge.bridge-nf-call-iptables not settable"
mkdir -p /etc/cni/net.d "$KUBELET_ROOT"
cat > /etc/cni/net.d/10-oddjob-bridge.conflist <<CNI
{ "cniVersion": "1.0.0", "name": "oddjob-pods",
  "plugins": [
    { "type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
      "ipam": { "type": "host-local", "ranges": [[{ "subnet": "$POD_CIDR" }]], "routes": [{ "dst": "0.0.0.0/0" }] } },
    { "type": "portmap", "capabilities": { "portMappings": true } } ] }
CNI
phase_done

phase "4/7 containerd + images"
cat > "$CONF/containerd.toml" <<TOML
version = 2
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  # These machines drop CAP_SYS_RESOURCE, so no process may lower its
  # oom_score_adj; CRI's default sandbox score (-998) then makes runc fail with
  # "can't get final child's PID from pipe: EOF". Clamp to containerd's own score.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "/etc/cni/net.d"
    max_conf_num = 1
TOML
if ctr version >/dev/null 2>&1 && ! is_running containerd; then
  log "using the containerd that is already running (not started by us; cluster:down leaves it alone)"
else
  start_component containerd containerd --config "$CONF/containerd.toml"
  wait_for containerd 30 ctr version
fi
bash "$REPO_ROOT/hack/images/build.sh"
phase_done

phase "5/7 control plane: etcd → kube-apiserver → controller-manager + scheduler"
start_component etcd "$ETCD_BIN/etcd" --name oddjob --data-dir "$STATE/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster oddjob=http://127.0.0.1:2380 --unsafe-no-fsync --log-level warn
wait_for etcd 30 curl -fsS http://127.0.0.1:2379/health

start_component kube-apiserver "$K8S_BIN/kube-apiserver" \
  --etcd-servers=http://127.0.0.1:2379 \
  --bind-address=0.0.0.0 --secure-port=$APISERVER_PORT --advertise-address="$NODE_IP" \
  --tls-cert-file="$PKI/apiserver.crt" --tls-private-key-file="$PKI/apiserver.key" \
  --client-ca-file="$PKI/ca.crt" \
  --service-account-issuer=https://kubernetes.default.svc.cluster.local \
  --service-account-key-file="$PKI/sa.pub" --service-account-signing-key-file="$PKI/sa.key" \
  --service-cluster-ip-range="$SVC_CIDR" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true \
  --kubelet-client-certificate="$PKI/apiserver-kubelet-client.crt" \
  --kubelet-client-key="$PKI/apiserver-kubelet-client.key" \
  --kubelet-preferred-address-types=InternalIP,Hostname \
  --feature-gates=PodLogsQuerySplitStreams=true \
  --cert-dir="$STATE/apiserver-certs" --v=1
wait_for kube-apiserver 90 curl -fsSk https://127.0.0.1:$APISERVER_PORT/readyz

start_component kube-controller-manager "$K8S_BIN/kube-controller-manager" \
  --kubeconfig="$CONF/kcm.kubeconfig" --authentication-kubeconfig="$CONF/kcm.kubeconfig" \
  --authorization-kubeconfig="$CONF/kcm.kubeconfig" \
  --service-account-private-key-file="$PKI/sa.key" --root-ca-file="$PKI/ca.crt" \
  --cluster-signing-cert-file="$PKI/ca.crt" --cluster-signing-key-file="$PKI/ca.key" \
  --use-service-account-credentials=true --controllers='*' \
  --leader-elect=false --bind-address=127.0.0.1 --v=1
start_component kube-scheduler "$K8S_BIN/kube-scheduler" --kubeconfig="$CONF/scheduler.kubeconfig" \
  --authentication-kubeconfig="$CONF/scheduler.kubeconfig" --authorization-kubeconfig="$CONF/scheduler.kubeconfig" \
  --leader-elect=false --bind-address=127.0.0.1 --v=1
wait_for kube-controller-manager 60 curl -fsSk https://127.0.0.1:10257/healthz
wait_for kube-scheduler 60 curl -fsSk https://127.0.0.1:10259/healthz
phase_done

phase "6/7 node: kubelet + kube-proxy + kube-router (NetworkPolicy)"
cat > "$CONF/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
address: 0.0.0.0
port: 10250
readOnlyPort: 0
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $PKI/ca.crt}
authorization: {mode: Webhook}
tlsCertFile: $PKI/kubelet.crt
tlsPrivateKeyFile: $PKI/kubelet.key
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", nodefs.inodesFree: "1%", imagefs.available: "1%"}
serializeImagePulls: false
featureGates: {PodLogsQuerySplitStreams: true}
YAML
start_component kubelet "$K8S_BIN/kubelet" --config="$CONF/kubelet.yaml" --kubeconfig="$CONF/kubelet.kubeconfig" \
  --hostname-override="$NODE_NAME" --node-ip="$NODE_IP" --root-dir="$KUBELET_ROOT" --v=1
cat > "$CONF/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: $CONF/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
mode: iptables
clusterCIDR: $POD_CIDR
conntrack: {maxPerCore: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
start_component kube-proxy "$K8S_BIN/kube-proxy" --config="$CONF/kube-proxy.yaml" --v=1
wait_for "node $NODE_NAME Ready" 120 kc wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
start_kube_router
phase_done

phase "7/7 cluster services"
wait_for "service account default/default" 60 kc -n default get serviceaccount default
wait_for "configmap default/kube-root-ca.crt" 60 kc -n default get configmap kube-root-ca.crt
# oddjob's Task resource, as the chart installs it (charts/oddjob/crds), so the demo and
# the integration tests have it.
kc apply -f "$REPO_ROOT/charts/oddjob/crds/tasks.oddjob.io.yaml" >/dev/null
wait_for "crd tasks.oddjob.io" 60 kc wait --for=condition=Established crd/tasks.oddjob.io --timeout=5s
phase_done

log "cluster up in $((SECONDS - T_ALL))s"
cat >&2 <<MSG

  Kubernetes v$K8S_VERSION is running on this machine (node $NODE_NAME, $NODE_IP).
    export KUBECONFIG=$ADMIN_KUBECONFIG
    $KUBECTL get nodes
  Component logs: $LOGS/   Status: npm run cluster:status   Stop: npm run cluster:down

MSG
