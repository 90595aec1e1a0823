#!/usr/bin/env bash
# Copies cert-manager's CRDs out of its Go module into .tools/cert-manager/<version>/ (the module
# proxy serves the root module; the module cache, outside the clone, keeps the download).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=cert-manager.env
source "$here/cert-manager.env"

if ! command -v go >/dev/null 2>&1; then
  echo "cert-manager CRDs: skipped (no Go toolchain on PATH); the chart Certificate tests need them"
  exit 0
fi
out="$root/.tools/cert-manager/$CERT_MANAGER_VERSION"
if [ -f "$out/.complete" ]; then
  echo "cert-manager CRDs: up to date in $out"
  exit 0
fi
dir="$(cd "$root" && GOFLAGS=-mod=mod go mod download -json "github.com/cert-manager/cert-manager@$CERT_MANAGER_VERSION" |
  python3 -c 'import json,sys; d=json.load(sys.stdin); sys.exit(d["Error"]) if d.get("Error") else print(d["Dir"])')"
mkdir -p "$out"
cp "$dir"/deploy/crds/cert-manager.io_*.yaml "$out/"
chmod 0644 "$out"/*.yaml
touch "$out/.complete"
echo "cert-manager CRDs: $CERT_MANAGER_VERSION in $out"
