#!/usr/bin/env bash
# Builds the control plane (and the node's Kubernetes binaries) from this Go module.
#
# Output: .tools/cluster/<kubernetes version>/ in the clone. The built binaries are cached
# outside the clone, under the user's cache directory, keyed by a hash of go.mod, go.sum,
# versions.env and this script, so a fresh clone on the same machine links them in seconds.
# GOMODCACHE and GOCACHE stay where `go env` puts them (also outside the clone).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

if ! command -v go >/dev/null 2>&1; then
  echo "cluster tools: skipped (no Go toolchain on PATH): real-cluster tests and 'make cluster' need Go 1.26"
  exit 0
fi

key="$(cat "$here/go.mod" "$here/go.sum" "$here/versions.env" "$here/build.sh" | sha256sum | cut -c1-16)"
cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
cache_dir="$cache_root/cluster/$key"
out_dir="$root/.tools/cluster/$KUBERNETES_VERSION"
stamp="$out_dir/.built-$key"

if [ -f "$stamp" ]; then
  echo "cluster tools: up to date in $out_dir"
  exit 0
fi

started=$SECONDS
if [ ! -f "$cache_dir/.complete" ]; then
  mkdir -p "$cache_dir.partial"
  minor="${KUBERNETES_VERSION#v1.}"; minor="${minor%%.*}"
  commit="$(go mod download -json "k8s.io/kubernetes@$KUBERNETES_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("Origin", {}).get("Hash", ""))')"
  # Upstream stamps these so /version reports the release; helm's kubeVersion checks read it.
  version_flags=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    version_flags+=" -X $pkg.gitVersion=$KUBERNETES_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
    version_flags+=" -X $pkg.gitTreeState=clean -X $pkg.gitCommit=$commit -X $pkg.buildDate=1970-01-01T00:00:00Z"
  done
  build() { # output-name package [extra ldflags]
    local name="$1" pkg="$2" extra="${3:-}" t=$SECONDS
    (cd "$here" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w $extra" -o "$cache_dir.partial/$name" "$pkg")
    echo "cluster tools: built $name in $((SECONDS - t)) s"
  }
  for cmd in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    [ -x "$cache_dir.partial/$cmd" ] || build "$cmd" "k8s.io/kubernetes/cmd/$cmd" "$version_flags"
  done
  [ -x "$cache_dir.partial/etcd" ] || build etcd go.etcd.io/etcd/server/v3
  kwok_flags="-X sigs.k8s.io/kwok/pkg/consts.KubeVersion=${KUBERNETES_VERSION#v}"
  [ -x "$cache_dir.partial/kwok" ] || build kwok sigs.k8s.io/kwok/cmd/kwok "$kwok_flags"
  [ -x "$cache_dir.partial/kwokctl" ] || build kwokctl sigs.k8s.io/kwok/cmd/kwokctl "$kwok_flags"
  # kwok reads its Stages as custom resources; their CRD ships in the kwok module, not in a binary.
  kwok_dir="$(cd "$here" && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  install -m 0644 "$kwok_dir/kustomize/crd/bases/kwok.x-k8s.io_stages.yaml" "$cache_dir.partial/kwok-stages-crd.yaml"
  rm -rf "$cache_dir"
  mv "$cache_dir.partial" "$cache_dir"
  touch "$cache_dir/.complete"
fi

# Builds for other pins are ~550 MB each; keep only this one.
for stale in "$cache_root"/cluster/*; do
  [ "$stale" = "$cache_dir" ] || rm -rf "$stale"
done
rm -rf "$out_dir"
mkdir -p "$out_dir"
for binary in "$cache_dir"/*; do
  ln -f "$binary" "$out_dir/" 2>/dev/null || cp "$binary" "$out_dir/"
done
touch "$stamp"
echo "cluster tools: ready in $out_dir ($((SECONDS - started)) s)"
