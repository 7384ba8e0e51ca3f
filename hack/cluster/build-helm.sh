#!/usr/bin/env bash
# Builds Helm (pinned HELM_VERSION) from the Go module proxy into a
# version-keyed cache, like the cluster binaries. Reused when present.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
. "$here/versions.sh"
if [ -x "$HELM_BIN/helm" ]; then echo "helm v$HELM_VERSION cached in $HELM_BIN" >&2; exit 0; fi
work="$ODDJOB_CACHE/helm/v$HELM_VERSION/wrapper"; mkdir -p "$work" "$HELM_BIN"; cd "$work"
[ -f go.mod ] || go mod init example.local/helmw >/dev/null 2>&1
echo "helm v$HELM_VERSION: building (a few minutes cold)" >&2
go get "helm.sh/helm/v3/cmd/helm@v$HELM_VERSION" >/dev/null 2>&1
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HELM_VERSION" -o "$HELM_BIN/helm.tmp" helm.sh/helm/v3/cmd/helm
mv "$HELM_BIN/helm.tmp" "$HELM_BIN/helm"
echo "helm built: $("$HELM_BIN/helm" version --short)" >&2
