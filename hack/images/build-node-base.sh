#!/usr/bin/env bash
# Builds a local stand-in for node:24-bookworm-slim with buildah, for builders that
# cannot reach a container registry (tests here, air-gapped CI): Debian's static
# busybox for the shell tools, the host's (Debian) glibc, the pinned Node from
# hack/node/ensure-node.sh and npm from the npm registry. Prints the image name:
#   buildah bud --build-arg BASE_IMAGE="$(bash hack/images/build-node-base.sh)" .
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
NPM_VERSION="${ODDJOB_BASE_NPM_VERSION:-11.6.2}"
node_bin="$(bash "$REPO_ROOT/hack/node/ensure-node.sh")"
node_version="$("$node_bin/node" --version)"
IMAGE="localhost/oddjob-node-base:${node_version#v}"
[ "${1:-}" = --rebuild ] && buildah rmi "$IMAGE" >/dev/null 2>&1 || true
if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then echo "$IMAGE"; exit 0; fi

root="$(mktemp -d)"; trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,usr/bin,usr/lib,usr/lib64,usr/local/bin,usr/local/lib/node_modules,tmp,etc,root}
ln -s usr/lib "$root/lib"; ln -s usr/lib64 "$root/lib64"   # merged /usr, as in Debian 12
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ -e "$root/bin/$applet" ] || ln -s busybox "$root/bin/$applet"
done
ln -s /bin/env "$root/usr/bin/env"
cp "$node_bin/node" "$root/usr/local/bin/node"
# The C and C++ runtime as the host's Debian packages install it (native addons such
# as rolldown's need more of glibc than node itself: librt, libdl, ...).
for pkg in libc6 libgcc-s1 libstdc++6; do
  dpkg -L "$pkg" | grep -E '^/(usr/)?lib' | while read -r f; do
    if [ -f "$f" ] || [ -L "$f" ]; then mkdir -p "$root$(dirname "$f")"; cp -P "$f" "$root$f"; fi
  done
done

(cd "$root/tmp" && PATH="$node_bin:$PATH" npm pack --silent "npm@$NPM_VERSION" >/dev/null)
mkdir "$root/usr/local/lib/node_modules/npm"
tar -xzf "$root/tmp/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1 --no-same-owner
rm "$root/tmp/npm-$NPM_VERSION.tgz"
ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
# The host's trust store (Debian's ca-certificates, plus any CA this machine adds for
# its registry mirror), so npm in the build stage trusts what the host trusts.
mkdir -p "$root/etc/ssl/certs"
cp -L /etc/ssl/certs/ca-certificates.crt "$root/etc/ssl/certs/ca-certificates.crt"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000:node:/home/node:/bin/sh\n' > "$root/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' > "$root/etc/group"

ctr="$(buildah from scratch)"
buildah copy --quiet "$ctr" "$root/" / >/dev/null
buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --env HOME=/root \
  --env NODE_EXTRA_CA_CERTS=/etc/ssl/certs/ca-certificates.crt --cmd node "$ctr"
buildah commit --quiet --rm "$ctr" "$IMAGE" >/dev/null
echo "$IMAGE"
