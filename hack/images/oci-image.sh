#!/usr/bin/env bash
# oci-image.sh ROOTFS_DIR IMAGE_NAME OUT_TAR ENTRYPOINT_JSON [ENV_JSON] [WORKDIR] [USER]
# Packs a directory as a single-layer OCI image archive that `ctr images import`
# understands — no Docker engine, no registry. Reproducible: sorted entries,
# fixed mtimes and owners, so the same inputs give the same digest.
set -euo pipefail
rootfs=$1 name=$2 out=$3 entrypoint=$4 env=${5:-'["PATH=/usr/local/bin:/usr/bin:/bin"]'} workdir=${6:-/} user=${7:-}
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
mkdir -p "$work/blobs/sha256"
sha() { sha256sum "$1" | cut -d' ' -f1; }
put() { local d; d=$(sha "$1"); mv "$1" "$work/blobs/sha256/$d"; echo "$d"; }

tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 --format=posix \
    --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime -C "$rootfs" -cf "$work/layer.tar" .
layer_size=$(stat -c %s "$work/layer.tar")
layer=$(put "$work/layer.tar")   # uncompressed layer: diff_id == digest, and import is faster

printf '{"architecture":"amd64","os":"linux","config":{"Entrypoint":%s,"Env":%s,"WorkingDir":"%s","User":"%s"},"rootfs":{"type":"layers","diff_ids":["sha256:%s"]},"history":[{"created_by":"oddjob hack/images/oci-image.sh"}]}' \
  "$entrypoint" "$env" "$workdir" "$user" "$layer" > "$work/config.json"
config_size=$(stat -c %s "$work/config.json"); config=$(put "$work/config.json")

printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":"sha256:%s","size":%s}]}' \
  "$config" "$config_size" "$layer" "$layer_size" > "$work/manifest.json"
manifest_size=$(stat -c %s "$work/manifest.json"); manifest=$(put "$work/manifest.json")

printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s,"platform":{"architecture":"amd64","os":"linux"},"annotations":{"io.containerd.image.name":"%s","org.opencontainers.image.ref.name":"%s"}}]}' \
  "$manifest" "$manifest_size" "$name" "${name##*:}" > "$work/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' > "$work/oci-layout"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$work" -cf "$out.tmp" oci-layout index.json blobs
mv "$out.tmp" "$out"
echo "sha256:$manifest"
