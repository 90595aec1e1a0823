#!/usr/bin/env bash
# Builds the real node's components from their Go modules: containerd (+ its runc shim and ctr),
# CoreDNS and Traefik. runc, the CNI plugins, iptables and conntrack come from Debian (installed
# here when missing, as root).
#
#   bash deploy/node/build.sh                 # every component
#   bash deploy/node/build.sh containerd      # only the ones named
#
# Output: .tools/node/ in the clone. Each component is cached outside the clone, under the user's
# cache directory, keyed by a hash of its go.mod, go.sum, versions.env and this script, so a fresh
# clone on the same machine links them in seconds. GOMODCACHE and GOCACHE stay where `go env` puts
# them (also outside the clone).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "node tools: skipped (no Go toolchain on PATH): the real node needs Go 1.26"
  exit 0
fi

debian_packages=(runc containernetworking-plugins iptables conntrack)
missing=()
for package in "${debian_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    # Only running the node needs them (and root anyway); the Go builds below do not, so `make tools`
    # still works for a developer without root. The real-node tests name what is missing.
    echo "node tools: missing Debian packages ${missing[*]}; the real node needs them (install as root)" >&2
  else
    # No recommends: they would bring crun, which fails on cgroup v1 hosts and which buildah then prefers.
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
    echo "node tools: installed ${missing[*]} from Debian"
  fi
fi

cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
out_dir="$root/.tools/node"
mkdir -p "$out_dir"

# origin_hash MODULE@VERSION: the upstream commit, stamped into the binaries as their revision.
origin_hash() {
  go mod download -json "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin", {}).get("Hash", ""))'
}

# build_component NAME: builds (or reuses) one wrapper module's binaries and links them into out_dir.
build_component() {
  local name="$1" module_dir="$here/$1"
  local key cache_dir started=$SECONDS
  key="$(cat "$module_dir/go.mod" "$module_dir/go.sum" "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)"
  cache_dir="$cache_root/node/$name-$key"
  if [ ! -f "$cache_dir/.complete" ]; then
    rm -rf "$cache_dir.partial"
    mkdir -p "$cache_dir.partial"
    # go_build OUTPUT PACKAGE [go build flags...]
    go_build() {
      local output="$1" package="$2" t=$SECONDS
      shift 2
      (cd "$module_dir" && CGO_ENABLED=0 go build -trimpath "$@" -o "$cache_dir.partial/$output" "$package")
      echo "node tools: built $output in $((SECONDS - t)) s"
    }
    case "$name" in
      containerd)
        local pkg=github.com/containerd/containerd/v2 revision
        revision="$(cd "$module_dir" && origin_hash "$pkg@$CONTAINERD_VERSION")"
        local ldflags="-s -w -X $pkg/version.Version=$CONTAINERD_VERSION -X $pkg/version.Revision=$revision -X $pkg/version.Package=$pkg"
        # The tags upstream's Makefile uses; the shim leaves out gRPC (it speaks ttrpc only).
        go_build containerd "$pkg/cmd/containerd" -tags urfave_cli_no_docs -ldflags "$ldflags"
        go_build containerd-shim-runc-v2 "$pkg/cmd/containerd-shim-runc-v2" -tags "urfave_cli_no_docs no_grpc" -ldflags "$ldflags"
        go_build ctr "$pkg/cmd/ctr" -tags urfave_cli_no_docs -ldflags "$ldflags"
        ;;
      coredns)
        local revision
        revision="$(cd "$module_dir" && origin_hash "github.com/coredns/coredns@$COREDNS_VERSION")"
        go_build coredns github.com/coredns/coredns -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$revision"
        ;;
      traefik)
        local pkg=github.com/traefik/traefik/v3/pkg/version
        go_build traefik github.com/traefik/traefik/v3/cmd/traefik \
          -ldflags "-s -w -X $pkg.Version=$TRAEFIK_VERSION -X $pkg.BuildDate=1970-01-01T00:00:00Z"
        ;;
      *)
        echo "node tools: unknown component $name (containerd, coredns, traefik)" >&2
        return 1
        ;;
    esac
    rm -rf "$cache_dir"
    mv "$cache_dir.partial" "$cache_dir"
    touch "$cache_dir/.complete"
  fi
  # Builds for other pins of this component are tens of MB each; keep only this one.
  for stale in "$cache_root/node/$name"-*; do
    [ "$stale" = "$cache_dir" ] || rm -rf "$stale"
  done
  for binary in "$cache_dir"/*; do
    ln -f "$binary" "$out_dir/" 2>/dev/null || cp -f "$binary" "$out_dir/"
  done
  echo "node tools: $name ready in $out_dir ($((SECONDS - started)) s)"
}

components=("$@")
[ "${#components[@]}" -gt 0 ] || components=(containerd coredns traefik)
for component in "${components[@]}"; do
  build_component "$component"
done
