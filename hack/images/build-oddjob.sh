#!/usr/bin/env bash
# Builds the oddjob image from the Dockerfile, as users build it, with buildah (no
# Docker engine) on the local Node 24 base (no registry here; build-node-base.sh).
# Prints the image name, docker.io/oddjob/oddjob:<version>-<content hash>.
#   --import  also imports it into the local cluster's containerd (k8s.io), where
#             pods with imagePullPolicy Never find it.
# The tag names the build's inputs (base image, Dockerfile, lockfile, sources), so an
# unchanged tree reuses the built image and a changed one never overwrites the image
# another checkout's test is running on the shared cluster. --layers keeps `npm ci`
# cached while package-lock.json is unchanged.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
import=false
[ "${1:-}" = --import ] && import=true
log() { printf '[build-oddjob %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

base="$(bash "$REPO_ROOT/hack/images/build-node-base.sh")"
version="$(sed -n 's/^  "version": "\(.*\)",$/\1/p' "$REPO_ROOT/package.json")"
[ -n "$version" ] || { echo "no version in package.json" >&2; exit 1; }
# Exactly what the Dockerfile copies (its COPY lines), less .dockerignore's outputs.
hash="$(
  cd "$REPO_ROOT"
  {
    buildah inspect --type image --format '{{.FromImageID}}' "$base"
    find Dockerfile .dockerignore LICENSE package.json package-lock.json tsconfig.json tsconfig.build.json protocol server cli bin web \
      -type f -not -path 'web/dist/*' -not -path '*/node_modules/*' -print0 | sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-12
)"
IMAGE="docker.io/oddjob/oddjob:$version-$hash"

if buildah inspect --type image "$IMAGE" >/dev/null 2>&1; then
  log "$IMAGE already built"
else
  log "building $IMAGE from the Dockerfile on $base"
  # --network host: the build stage's npm ci reaches the registry as this machine does.
  buildah bud --quiet --layers --isolation chroot --network host \
    --build-arg "BASE_IMAGE=$base" --build-arg "VERSION=$version" \
    --build-arg "REVISION=$(git -C "$REPO_ROOT" rev-parse HEAD 2>/dev/null || echo unknown)" \
    -t "$IMAGE" "$REPO_ROOT" >/dev/null
fi

if $import; then
  if [ -n "$(ctr -n k8s.io images ls -q "name==$IMAGE" 2>/dev/null)" ]; then
    log "$IMAGE already in containerd"
  else
    archive="$(mktemp -d)"; trap 'rm -rf "$archive"' EXIT
    buildah push --quiet "$IMAGE" "docker-archive:$archive/oddjob.tar:$IMAGE" >/dev/null
    ctr -n k8s.io images import "$archive/oddjob.tar" >/dev/null
    log "$IMAGE imported into containerd (k8s.io)"
  fi
fi
echo "$IMAGE"
