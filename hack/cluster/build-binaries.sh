#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet,
# kube-proxy (pinned K8S_VERSION), etcd (pinned ETCD_VERSION) and kube-router
# (pinned KUBE_ROUTER_VERSION) from the Go module proxy into a version-keyed
# cache. A present, complete cache is reused.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

K8S_CMDS="kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl"

k8s_complete() { for c in $K8S_CMDS; do [ -x "$K8S_BIN/$c" ] || return 1; done; }

build_k8s() {
  if k8s_complete; then log "kubernetes v$K8S_VERSION binaries cached in $K8S_BIN"; return; fi
  local minor="${K8S_VERSION#*.}"; minor="${minor%%.*}"
  local work="$ODDJOB_CACHE/k8s/v$K8S_VERSION/wrapper"
  mkdir -p "$work" "$K8S_BIN"
  cd "$work"
  log "kubernetes v$K8S_VERSION: resolving modules (downloads ~1 GB into $GOMODCACHE on a cold cache)"
  if [ ! -f go.mod ]; then
    go mod download -json "k8s.io/kubernetes@v$K8S_VERSION" > k.json
    local mod; mod=$(sed -n 's/.*"GoMod": "\(.*\)".*/\1/p' k.json)
    local staging; staging=$(grep -E '^\s+k8s\.io/[a-z0-9-]+ v0\.0\.0$' "$mod" | awk '{print $1}')
    # The wrapper module must map every staging module to its published tag, or
    # Go resolves the v0.0.0 placeholders and fails (kubernetes/kubernetes#79384).
    cat > go.mod.tmp <<MOD
module example.local/k8sbins

go 1.24.0

godebug default=go1.24
MOD
    mv go.mod.tmp go.mod
    for m in $staging; do go mod edit "-replace=$m=$m@v0.$minor.${K8S_VERSION##*.}"; done
    go mod edit "-require=k8s.io/kubernetes@v$K8S_VERSION"
  fi
  local pkgs=""; for c in $K8S_CMDS; do pkgs="$pkgs k8s.io/kubernetes/cmd/$c@v$K8S_VERSION"; done
  # shellcheck disable=SC2086
  go get $pkgs
  local ld="-s -w"
  for kv in "gitVersion=v$K8S_VERSION" gitMajor=1 "gitMinor=$minor" gitTreeState=clean "buildDate=$(date -u +%FT%TZ)"; do
    ld="$ld -X k8s.io/component-base/version.$kv -X k8s.io/client-go/pkg/version.$kv"
  done
  local i=0 n; n=$(echo $K8S_CMDS | wc -w)
  for c in $K8S_CMDS; do
    i=$((i+1))
    if [ -x "$K8S_BIN/$c" ]; then log "[$i/$n] $c cached"; continue; fi
    log "[$i/$n] compiling $c (cold: several minutes each on 2 cores; later ones reuse shared packages)"
    local t0=$SECONDS
    CGO_ENABLED=0 go build -trimpath -tags notest,grpcnotrace -ldflags "$ld" -o "$K8S_BIN/$c.tmp" "k8s.io/kubernetes/cmd/$c"
    mv "$K8S_BIN/$c.tmp" "$K8S_BIN/$c"
    log "[$i/$n] $c built in $((SECONDS-t0))s"
  done
}

build_etcd() {
  if [ -x "$ETCD_BIN/etcd" ]; then log "etcd v$ETCD_VERSION cached in $ETCD_BIN"; return; fi
  local work="$ODDJOB_CACHE/etcd/v$ETCD_VERSION/wrapper"
  mkdir -p "$work" "$ETCD_BIN"; cd "$work"
  log "etcd v$ETCD_VERSION: building (a few minutes cold)"
  [ -f go.mod ] || go mod init example.local/etcdw >/dev/null 2>&1
  # etcd's own go.mod has replace directives, so `go install pkg@v` refuses it;
  # a wrapper module that requires the server module works.
  go get "go.etcd.io/etcd/server/v3@v$ETCD_VERSION" >/dev/null
  local t0=$SECONDS
  CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$ETCD_BIN/etcd.tmp" go.etcd.io/etcd/server/v3
  mv "$ETCD_BIN/etcd.tmp" "$ETCD_BIN/etcd"
  log "etcd built in $((SECONDS-t0))s"
}

build_kube_router() {
  if [ -x "$KUBE_ROUTER_BIN/kube-router" ]; then log "kube-router v$KUBE_ROUTER_VERSION cached in $KUBE_ROUTER_BIN"; return; fi
  mkdir -p "$KUBE_ROUTER_BIN"
  log "kube-router v$KUBE_ROUTER_VERSION: building (a few minutes cold)"
  local t0=$SECONDS
  # Its go.mod has no replace directives, so `go install pkg@version` works as is.
  CGO_ENABLED=0 GOBIN="$KUBE_ROUTER_BIN" GOFLAGS=-buildvcs=false go install -trimpath -ldflags "-s -w" \
    "github.com/cloudnativelabs/kube-router/v2/cmd/kube-router@v$KUBE_ROUTER_VERSION"
  log "kube-router built in $((SECONDS-t0))s"
}

T0=$SECONDS
build_etcd
build_k8s
build_kube_router
log "binaries ready in $((SECONDS-T0))s: $K8S_BIN, $ETCD_BIN, $KUBE_ROUTER_BIN"
