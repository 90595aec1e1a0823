#!/usr/bin/env bash
# Builds the cert-manager controller (main.go: the root module's controllers, see there why) for the
# real-cluster tests. Output: .tools/cert-manager/<version>/cert-manager-controller in the clone; the
# binary is cached outside the clone, keyed by a hash of go.mod, go.sum, main.go and this script.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=../tools/cert-manager.env
source "$root/deploy/tools/cert-manager.env"

if ! command -v go >/dev/null 2>&1; then
  echo "cert-manager controller: skipped (no Go toolchain on PATH)"
  exit 0
fi
key="$(cat "$here/go.mod" "$here/go.sum" "$here/main.go" "$here/build.sh" | sha256sum | cut -c1-16)"
cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
cache_dir="$cache_root/cert-manager/$key"
out_dir="$root/.tools/cert-manager/$CERT_MANAGER_VERSION"
mkdir -p "$out_dir"
if [ ! -x "$cache_dir/cert-manager-controller" ]; then
  started=$SECONDS
  mkdir -p "$cache_dir.partial"
  (cd "$here" && CGO_ENABLED=0 GOFLAGS=-mod=readonly go build -trimpath -o "$cache_dir.partial/cert-manager-controller" .)
  rm -rf "$cache_dir" && mv "$cache_dir.partial" "$cache_dir"
  echo "cert-manager controller: built in $((SECONDS - started)) s"
fi
ln -sf "$cache_dir/cert-manager-controller" "$out_dir/cert-manager-controller"
echo "cert-manager controller: $out_dir/cert-manager-controller"
