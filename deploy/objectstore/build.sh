#!/usr/bin/env bash
# Builds SeaweedFS's `weed` (the S3-compatible object store the backup tests run on loopback) from
# this Go module. Output: .tools/objectstore/<version>/weed in the clone; the binary is cached outside
# the clone, keyed by a hash of go.mod, go.sum, versions.env and this script, so a fresh clone on the
# same machine links it in seconds. GOMODCACHE and GOCACHE stay where `go env` puts them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "object store: skipped (no Go toolchain on PATH): the backup tests need Go 1.26"
  exit 0
fi
key="$(cat "$here/go.mod" "$here/go.sum" "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)"
cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
cache_dir="$cache_root/objectstore/$key"
out_dir="$root/.tools/objectstore/$SEAWEEDFS_VERSION"
if [ ! -x "$cache_dir/weed" ]; then
  started=$SECONDS
  mkdir -p "$cache_dir.partial"
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" \
    -o "$cache_dir.partial/weed" github.com/seaweedfs/seaweedfs/weed)
  rm -rf "$cache_dir" && mv "$cache_dir.partial" "$cache_dir"
  echo "object store: built weed in $((SECONDS - started)) s"
fi
# Builds for other pins are large; keep only this one.
for stale in "$cache_root"/objectstore/*; do
  [ "$stale" = "$cache_dir" ] || rm -rf "$stale"
done
mkdir -p "$out_dir"
ln -sf "$cache_dir/weed" "$out_dir/weed"
echo "object store: $out_dir/weed"
