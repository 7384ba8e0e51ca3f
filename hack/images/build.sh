#!/usr/bin/env bash
# Builds the local cluster's images as OCI archives and imports them into
# containerd's k8s.io namespace: the pod sandbox (pause) and the demo app
# (Node.js + a small app with scripts/). Skips images already present with the
# same digest.
. "$(dirname "$0")/../cluster/lib.sh"
IMAGES_DIR="$REPO_ROOT/hack/images"
OUT="$ODDJOB_CACHE/images"; mkdir -p "$OUT"
PAUSE_IMAGE=registry.k8s.io/pause:3.10
DEMO_IMAGE=docker.io/oddjob/demo:0.1.0

import_image() { # NAME TAR DIGEST
  local have; have=$(ctr -n k8s.io images ls "name==$1" 2>/dev/null | awk 'NR>1{print $3}')
  if [ "$have" = "$3" ]; then log "image $1 present ($3)"; return; fi
  ctr -n k8s.io images import --no-unpack=false "$2" >/dev/null
  log "image $1 imported ($3)"
}

# pause: a static Go binary, the only file in its image.
pause_root=$(mktemp -d)
(cd "$IMAGES_DIR/pause" && CGO_ENABLED=0 GOFLAGS= go build -trimpath -ldflags "-s -w" -o "$pause_root/pause" .)
d=$(bash "$IMAGES_DIR/oci-image.sh" "$pause_root" "$PAUSE_IMAGE" "$OUT/pause.tar" '["/pause"]' '[]' /)
import_image "$PAUSE_IMAGE" "$OUT/pause.tar" "$d"; rm -rf "$pause_root"

# demo: the pinned Node (hack/node/ensure-node.sh) with exactly the shared libraries it
# links, busybox (sh, ls, cat… for debugging), and the demo app under /app. The pinned one,
# not whichever node is first on PATH: a cluster:up from a shell with the machine's old
# Node built an image with Node 20, and the next test run failed on it.
command -v busybox >/dev/null || die "busybox-static is missing (apt-get install busybox-static)"
demo_root=$(mktemp -d)
mkdir -p "$demo_root"/{app,bin,usr/bin,usr/local/bin,tmp,etc,lib64,lib/x86_64-linux-gnu,home/app}
chmod 1777 "$demo_root/tmp"
node_bin=$(readlink -f "$(bash "$REPO_ROOT/hack/node/ensure-node.sh")/node")
cp "$node_bin" "$demo_root/usr/local/bin/node"
for lib in $(ldd "$node_bin" | awk '/=>/ {print $3} /ld-linux/ {print $1}'); do
  real=$(readlink -f "$lib"); mkdir -p "$demo_root$(dirname "$lib")"; cp "$real" "$demo_root$lib"
done
cp "$(command -v busybox)" "$demo_root/bin/busybox"
for a in sh ls cat echo env sleep true false id printf head wc grep; do ln -s busybox "$demo_root/bin/$a"; done
printf 'root:x:0:0:root:/root:/bin/sh\napp:x:10001:10001:app:/home/app:/bin/sh\n' > "$demo_root/etc/passwd"
printf 'root:x:0:\napp:x:10001:\n' > "$demo_root/etc/group"
chown 10001:10001 "$demo_root/home/app"
cp -r "$IMAGES_DIR/demo-app/." "$demo_root/app/"
d=$(bash "$IMAGES_DIR/oci-image.sh" "$demo_root" "$DEMO_IMAGE" "$OUT/demo.tar" '["node","/app/server.js"]' \
  '["PATH=/usr/local/bin:/usr/bin:/bin","NODE_ENV=production"]' /app)
import_image "$DEMO_IMAGE" "$OUT/demo.tar" "$d"; rm -rf "$demo_root"
