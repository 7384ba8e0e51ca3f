#!/usr/bin/env bash
# Builds the oddjob service image for the local cluster the way the Dockerfile
# does (compiled dist/, production node_modules only, non-root), but without a
# Docker engine: the host's node and its libraries, packed as an OCI archive
# and imported into containerd as docker.io/oddjob/oddjob:<version>.
. "$(dirname "$0")/../cluster/lib.sh"
IMAGES_DIR="$REPO_ROOT/hack/images"
VERSION=$(node -p "require('$REPO_ROOT/package.json').version")
IMAGE="docker.io/oddjob/oddjob:$VERSION"
OUT="$ODDJOB_CACHE/images"; mkdir -p "$OUT"
root=$(mktemp -d); trap 'rm -rf "$root"' EXIT

log "compiling TypeScript"
(cd "$REPO_ROOT" && rm -rf dist && npx tsc -p tsconfig.build.json)
log "building the web UI"
(cd "$REPO_ROOT" && npx vite build --config web/vite.config.ts --logLevel warn)

mkdir -p "$root"/{app,usr/local/bin,tmp,etc,var/lib/oddjob}
chmod 1777 "$root/tmp"; chown 10001:10001 "$root/var/lib/oddjob"
node_bin=$(readlink -f "$(command -v node)")
cp "$node_bin" "$root/usr/local/bin/node"
for lib in $(ldd "$node_bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  mkdir -p "$root$(dirname "$lib")"; cp "$(readlink -f "$lib")" "$root$lib"
done
printf 'root:x:0:0:root:/root:/sbin/nologin\noddjob:x:10001:10001:oddjob:/app:/sbin/nologin\n' > "$root/etc/passwd"
printf 'root:x:0:\noddjob:x:10001:\n' > "$root/etc/group"
cp -r "$REPO_ROOT/dist" "$REPO_ROOT/bin" "$REPO_ROOT/package.json" "$root/app/"
mkdir -p "$root/app/web" && cp -r "$REPO_ROOT/web/dist" "$root/app/web/dist"
rm -f "$root"/app/web/dist/assets/*.map
# Production dependencies only: the paths npm itself lists for --omit=dev.
(cd "$REPO_ROOT" && npm ls --omit=dev --all --parseable 2>/dev/null | tail -n +2) | while read -r p; do
  rel=${p#"$REPO_ROOT"/}; mkdir -p "$root/app/$(dirname "$rel")"; cp -r "$p" "$root/app/$rel"
done
d=$(bash "$IMAGES_DIR/oci-image.sh" "$root" "$IMAGE" "$OUT/oddjob.tar" '["node","/app/bin/oddjob.mjs"]' \
  '["PATH=/usr/local/bin:/usr/bin:/bin","NODE_ENV=production","ODDJOB_COMPILED=1"]' /app 10001:10001)
have=$(ctr -n k8s.io images ls "name==$IMAGE" 2>/dev/null | awk 'NR>1{print $3}')
if [ "$have" != "$d" ]; then ctr -n k8s.io images import "$OUT/oddjob.tar" >/dev/null; fi
log "image $IMAGE ($d), $(du -h "$OUT/oddjob.tar" | cut -f1)"
