# Pinned versions for the local cluster. Sourced by the other hack/cluster scripts.
# Kubernetes 1.34: last minor that runs on cgroup v1 by default and still falls
# back to the kubelet's cgroupDriver with containerd 1.6 (see docs/local-cluster.md).
K8S_VERSION="${K8S_VERSION:-1.34.4}"
ETCD_VERSION="${ETCD_VERSION:-3.5.35}"
HELM_VERSION="${HELM_VERSION:-3.22.0}"
# The NetworkPolicy enforcer (its iptables + ipset controller only; see docs/local-cluster.md).
KUBE_ROUTER_VERSION="${KUBE_ROUTER_VERSION:-2.1.0}"
# Build caches live outside the repo, keyed by version, and are never committed.
ODDJOB_CACHE="${ODDJOB_CACHE:-/var/cache/oddjob}"
K8S_BIN="$ODDJOB_CACHE/k8s/v$K8S_VERSION/bin"
ETCD_BIN="$ODDJOB_CACHE/etcd/v$ETCD_VERSION/bin"
KUBE_ROUTER_BIN="$ODDJOB_CACHE/kube-router/v$KUBE_ROUTER_VERSION/bin"
export GOMODCACHE="${GOMODCACHE_OVERRIDE:-$ODDJOB_CACHE/go/mod}"
export GOCACHE="${GOCACHE_OVERRIDE:-$ODDJOB_CACHE/go/build}"
export GOFLAGS="-mod=mod -buildvcs=false"
export GOTOOLCHAIN=local
HELM_BIN="$ODDJOB_CACHE/helm/v$HELM_VERSION/bin"
# distribution's registry: the local registry the image-pull tests push to and the kubelet pulls from.
REGISTRY_VERSION="${REGISTRY_VERSION:-3.1.2}"
REGISTRY_BIN="$ODDJOB_CACHE/registry/v$REGISTRY_VERSION/bin"
