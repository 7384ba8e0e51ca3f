#!/usr/bin/env bash
# Builds the CLI as a single-file executable for Linux (Node's SEA): the CLI bundled
# into one CommonJS file with esbuild, a SEA blob made by the pinned Node, injected
# into a copy of that Node with postject. Prints the path of the executable:
#   bash hack/sea/build.sh [OUT_DIR]     (default dist/sea; the file is oddjob-linux-<arch>)
# It runs on any Linux with a glibc like the build machine's; nothing else is needed.
set -euo pipefail
REPO_ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
OUT="${1:-$REPO_ROOT/dist/sea}"
export PATH="$(bash "$REPO_ROOT/hack/node/ensure-node.sh"):$PATH"
version="$(node -p "require('$REPO_ROOT/package.json').version")"
arch="$(node -p process.arch)"
work="$(mktemp -d)"; trap 'rm -rf "$work"' EXIT
mkdir -p "$OUT"

# esbuild and postject are dev dependencies; --define writes the version in.
"$REPO_ROOT/node_modules/.bin/esbuild" "$REPO_ROOT/cli/sea.ts" --bundle --platform=node --format=cjs --target=node22 \
  --define:ODDJOB_BUILD_VERSION="\"$version\"" --log-level=error --outfile="$work/oddjob.cjs"
printf '{"main":"%s","output":"%s","disableExperimentalSEAWarning":true}\n' "$work/oddjob.cjs" "$work/sea.blob" > "$work/sea-config.json"
quietly() { local out; out="$("$@" 2>&1)" || { printf '%s\n' "$out" >&2; return 1; }; }
quietly node --experimental-sea-config "$work/sea-config.json"
exe="$OUT/oddjob-linux-$arch"
cp "$(command -v node)" "$work/oddjob"
# The fuse is Node's documented sentinel for SEA blobs.
(cd "$work" && quietly "$REPO_ROOT/node_modules/.bin/postject" oddjob NODE_SEA_BLOB sea.blob \
  --sentinel-fuse NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2)
mv "$work/oddjob" "$exe"
echo "$exe"
