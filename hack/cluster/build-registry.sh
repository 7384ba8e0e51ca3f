#!/usr/bin/env bash
# Builds distribution's registry (pinned REGISTRY_VERSION) from the Go module proxy
# into a version-keyed cache, like the cluster binaries. Reused when present.
# The image-pull test (test/integration/image-pull.test.ts) runs it on loopback so
# the kubelet really pulls an image: the cluster itself has every image imported.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
if [ -x "$REGISTRY_BIN/registry" ]; then echo "registry v$REGISTRY_VERSION cached in $REGISTRY_BIN" >&2; exit 0; fi
mkdir -p "$REGISTRY_BIN"
echo "registry v$REGISTRY_VERSION: building (cold: ~10 min on 2 cores, most of it its cloud storage drivers)" >&2
t0=$SECONDS
# Its go.mod has no replace directives, so `go install pkg@version` works as is.
CGO_ENABLED=0 GOBIN="$REGISTRY_BIN.tmp" go install -trimpath -ldflags "-s -w" \
  "github.com/distribution/distribution/v3/cmd/registry@v$REGISTRY_VERSION"
mv "$REGISTRY_BIN.tmp/registry" "$REGISTRY_BIN/registry"; rmdir "$REGISTRY_BIN.tmp"
echo "registry built in $((SECONDS - t0))s: $("$REGISTRY_BIN/registry" --version)" >&2
