#!/usr/bin/env bash
# Builds the real node's NetworkPolicy engine (kube-router, its firewall controller only, see
# README.md) and the network probe of the NetworkPolicy tests, from their Go modules; installs ipset
# from Debian when missing (as root). Test tooling only: nothing here is shipped.
#
#   bash deploy/netpol/build.sh                # kube-router and probe
#   bash deploy/netpol/build.sh probe          # only the ones named
#
# Output: .tools/netpol/ in the clone. Each binary is cached outside the clone, under the user's cache
# directory, keyed by a hash of its module files, versions.env and this script, so a fresh clone on
# the same machine links them in under a second. GOMODCACHE and GOCACHE stay where `go env` puts them.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "netpol tools: skipped (no Go toolchain on PATH): the real node's NetworkPolicy engine needs Go 1.26"
  exit 0
fi
# kube-router runs ipset and iptables-save/-restore at run time (iptables comes with deploy/node's
# packages). Only root can install it; the binaries build without it, and the NetworkPolicy tests
# name it when it is missing.
if ! dpkg-query -W -f='${Status}' ipset 2>/dev/null | grep -q 'install ok installed'; then
  if [ "$(id -u)" -eq 0 ]; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ipset >/dev/null
    echo "netpol tools: installed ipset from Debian"
  else
    echo "netpol tools: Debian's ipset is missing (the real node's engine needs it); install it as root"
  fi
fi

# The toolchain with the standard library's fixes (versions.env), fetched once by the go command.
export GOTOOLCHAIN="$GO_TOOLCHAIN"
cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
out_dir="$root/.tools/netpol"
mkdir -p "$out_dir"

# build_binary NAME: builds (or reuses) one module's binary and links it into out_dir.
build_binary() {
  local name="$1" module_dir="$here/$1" key cache_dir started=$SECONDS
  key="$(find "$module_dir" -maxdepth 1 -type f \( -name 'go.*' -o -name '*.go' \) -print0 | sort -z |
    xargs -0 cat "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)"
  cache_dir="$cache_root/netpol/$name-$key"
  if [ ! -f "$cache_dir/.complete" ]; then
    rm -rf "$cache_dir.partial"
    mkdir -p "$cache_dir.partial"
    case "$name" in
      kube-router)
        local pkg=github.com/cloudnativelabs/kube-router/v2
        # As upstream's Makefile stamps it (`git describe --tags` there); a fixed date keeps the
        # build reproducible.
        (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath \
          -ldflags "-s -w -X $pkg/pkg/version.Version=$KUBE_ROUTER_VERSION -X $pkg/pkg/version.BuildDate=1970-01-01T00:00:00Z" \
          -o "$cache_dir.partial/kube-router" "$pkg/cmd/kube-router")
        ;;
      probe)
        (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "$cache_dir.partial/probe" .)
        ;;
      *)
        echo "netpol tools: unknown binary $name (kube-router, probe)" >&2
        return 1
        ;;
    esac
    echo "netpol tools: built $name in $((SECONDS - started)) s"
    rm -rf "$cache_dir"
    mv "$cache_dir.partial" "$cache_dir"
    touch "$cache_dir/.complete"
  fi
  # Builds for other pins are tens of MB each; keep only this one.
  for stale in "$cache_root/netpol/$name"-*; do
    [ "$stale" = "$cache_dir" ] || rm -rf "$stale"
  done
  ln -f "$cache_dir/$name" "$out_dir/" 2>/dev/null || cp -f "$cache_dir/$name" "$out_dir/"
  echo "netpol tools: $name ready in $out_dir ($((SECONDS - started)) s)"
}

binaries=("$@")
[ "${#binaries[@]}" -gt 0 ] || binaries=(kube-router probe)
for binary in "${binaries[@]}"; do
  build_binary "$binary"
done
