#!/usr/bin/env bash
# Builds every container image the charts and the real node run, with no registry and no Docker:
# a Debian base from debootstrap, stand-ins tagged with the upstream names the Dockerfiles and charts
# use, the platform and Medusa images from their Dockerfiles, the pause image from Kubernetes' source,
# CoreDNS and Traefik from deploy/node and the NetworkPolicy tests' probe from deploy/netpol. See
# README.md beside this file for what each image is.
#
#   sudo bash deploy/images/build.sh            # every image
#   sudo bash deploy/images/build.sh redis ...  # only the ones named (and what they are built on)
#
# Each image is exported as an OCI archive into the cache (outside the clone) under a key that hashes
# all of its inputs (cache_key.py), so a second run, or a fresh clone on the same machine, reuses it.
# The archives are listed in <cache>/images/index.tsv (image reference, archive) for the real node,
# which imports them with `ctr images import`. Needs root: debootstrap, buildah and runc.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cache_root="${STORE_PLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/store-platform}"
cache_dir="$cache_root/images"
index="$cache_dir/index.tsv"
key_label="org.store-platform.image-key"

if [ "$(id -u)" -ne 0 ]; then
  echo "images: needs root (debootstrap, buildah and runc)" >&2
  exit 1
fi
missing=()
for package in debootstrap buildah runc; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q 'install ok installed' || missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  # No recommends: buildah recommends crun, which fails on this kind of cgroup v1 host.
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" >/dev/null
  echo "images: installed ${missing[*]} from Debian"
fi
mkdir -p "$cache_dir"
work="$(mktemp -d)"
helm_server_pid=""
cleanup() {
  [ -z "$helm_server_pid" ] || kill "$helm_server_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# Every build: runc (crun fails on cgroup v1 hosts), never a registry, the host's network (no CNI
# bridge of buildah's own, whose 10.88.0.0/16 default would also collide with the node's pods).
bud=(buildah bud --pull=never --runtime runc --network host --format oci --quiet)

declare -A image_key=()
built_total=0

# key_of ARGS...: the cache key of an image (see cache_key.py for the arguments).
key_of() { python3 "$here/cache_key.py" "$@"; }

archive_of() { echo "$cache_dir/$1-$2.oci.tar"; } # NAME KEY

# ensure_in_storage REF KEY NAME: the image REF in buildah's storage is the one with KEY (so a build
# on top of it uses exactly the cached parent), loading it from its archive when it is not.
ensure_in_storage() {
  local ref="$1" key="$2" name="$3" present id
  present="$(buildah inspect --type image --format "{{index .OCIv1.Config.Labels \"$key_label\"}}" "$ref" 2>/dev/null || true)"
  if [ "$present" != "$key" ]; then
    id="$(buildah pull --quiet "oci-archive:$(archive_of "$name" "$key")")"
    buildah tag "$id" "$ref"
  fi
}

# record NAME REF KEY: remember the image's key and list its archive for the node.
record() {
  local name="$1" ref="$2" key="$3"
  image_key[$name]="$key"
  { grep -v -P "^\Q$ref\E\t" "$index" 2>/dev/null || true; printf '%s\t%s\n' "$ref" "$(archive_of "$name" "$key")"; } >"$index.new"
  mv "$index.new" "$index"
  # Archives of older keys of this image are never read again. Sixteen characters exactly, so that
  # wordpress-<key> never matches wordpress-cli-<key>.
  for stale in "$cache_dir/$name"-????????????????.oci.tar; do
    [ "$stale" = "$(archive_of "$name" "$key")" ] || rm -f "$stale"
  done
}

# What must hold in each image before it is cached: a build step that fails without failing its
# RUN (medusa build exits 0 when compilation fails) must not leave a broken image to be reused.
declare -A check_of=(
  [debian]="apt-get --version"
  [python]="python -m venv --help && pip --version"
  [node]="node --version && npm --version"
  [postgres]="postgres --version && pg_isready --version && pg_dump --version && command -v curl"
  [redis]="redis-server --version && redis-cli --version"
  [mariadb]="mariadbd --version && command -v healthcheck.sh && mysqldump --version && command -v curl"
  [wordpress]="apache2 -v && php -m | grep -qx mysqli && test -s /usr/src/wordpress/wp-includes/version.php"
  [wordpress-cli]="php -m | grep -qx mysqli && mariadb --version"
  [platform]="helm version --short && python -c 'import django, celery'"
  [medusa]="test -s /app/package.json && test -x /app/node_modules/.bin/medusa"
)

# check_image NAME REF: run the image's check in a throwaway container (images without a shell,
# pause and coredns, have nothing to check but their one binary, which build_from_scratch copies).
check_image() {
  local name="$1" ref="$2" container status=0
  [ -n "${check_of[$name]:-}" ] || return 0
  container="$(buildah from --pull=never "$ref")"
  buildah run --runtime runc --network none --user 0:0 "$container" -- sh -c "${check_of[$name]}" >/dev/null || status=$?
  buildah rm "$container" >/dev/null
  if [ "$status" -ne 0 ]; then
    echo "images: $ref failed its check (${check_of[$name]}); not cached" >&2
    return 1
  fi
}

# image_id REF: the ID of the image REF names in storage now (empty when none).
image_id() { buildah inspect --type image --format '{{.FromImageID}}' "$1" 2>/dev/null || true; }

# drop_replaced ID: a rebuild moves the name to the new image; the old one would otherwise stay in
# storage, nameless, hundreds of MB per rebuild. Only removed when nothing names it any more.
drop_replaced() {
  local id="$1"
  [ -n "$id" ] || return 0
  if buildah images --noheading --no-trunc --filter dangling=true --format '{{.ID}}' | grep -q "$id"; then
    buildah rmi "$id" >/dev/null
  fi
}

# export_image NAME REF KEY STARTED: push REF from storage into its archive, named REF inside it.
export_image() {
  local name="$1" ref="$2" key="$3" started="$4" archive
  check_image "$name" "$ref"
  drop_replaced "${replaced_id:-}"
  archive="$(archive_of "$name" "$key")"
  buildah push --quiet "$ref" "oci-archive:$archive.partial:$ref"
  mv "$archive.partial" "$archive"
  built_total=$((built_total + 1))
  echo "images: built $ref in $((SECONDS - started)) s ($(du -m "$archive" | cut -f1) MB, key $key)"
  # What each archive cost to build (the real-node tests report the cold build time from it).
  printf '%s\t%s\t%s\t%s\n' "$ref" "$key" "$((SECONDS - started))" "$(date -u +%FT%TZ)" >>"$cache_dir/build-times.tsv"
}

# reuse NAME REF KEY: true (and says so) when the archive for KEY exists.
reuse() {
  if [ -f "$(archive_of "$1" "$3")" ]; then
    echo "images: reused $2 (key $3)"
    return 0
  fi
  return 1
}

# bud_image NAME REF CONTAINERFILE CONTEXT PARENT-NAME|- [--key-arg ...] -- [bud args...]
bud_image() {
  local name="$1" ref="$2" containerfile="$3" context="$4" parent="$5" started=$SECONDS key
  shift 5
  local key_args=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do key_args+=("$1"); shift; done
  [ "$#" -eq 0 ] || shift
  local parent_args=()
  if [ "$parent" != - ]; then
    parent_args=(--parent "${image_key[$parent]}")
  fi
  key="$(key_of --containerfile "$containerfile" --context "$context" "${parent_args[@]}" "${key_args[@]}")"
  if ! reuse "$name" "$ref" "$key"; then
    if [ "$parent" != - ]; then
      ensure_in_storage "${image_ref[$parent]}" "${image_key[$parent]}" "$parent"
    fi
    replaced_id="$(image_id "$ref")"
    "${bud[@]}" --label "$key_label=$key" -t "$ref" -f "$containerfile" "$@" "$context" >/dev/null
    export_image "$name" "$ref" "$key" "$started"
  fi
  record "$name" "$ref" "$key"
}

declare -A image_ref=(
  [debian]=localhost/debian:bookworm-minbase
  [python]=docker.io/library/python:3.11.13-slim-bookworm
  [node]=docker.io/library/node:20.19.4-bookworm-slim
  [postgres]=docker.io/library/postgres:16.9-bookworm
  [redis]=docker.io/library/redis:7.4.2-bookworm
  [mariadb]=docker.io/library/mariadb:11.4.7
  [wordpress]=docker.io/library/wordpress:6.8.2-php8.3-apache
  [wordpress-cli]=docker.io/library/wordpress:cli-2.12.0-php8.3
  [platform]=docker.io/library/orchestrator:local
  [medusa]=docker.io/library/medusa-store:2.21.2-2
  [pause]=localhost/pause:3.10.2
  [coredns]=localhost/coredns:v1.14.7
  [traefik]=localhost/traefik:v3.6.12
  [probe]=localhost/netpol-probe:1
)
# The longest builds last, so that the images the real node needs are ready even if one of them fails.
order=(debian pause coredns traefik probe redis python node postgres mariadb wordpress wordpress-cli platform medusa)
declare -A parent_of=(
  [python]=debian [node]=debian [postgres]=debian [redis]=debian [mariadb]=debian [wordpress]=debian
  [wordpress-cli]=debian [platform]=python [medusa]=node
)

build_debian() {
  local name=debian ref="${image_ref[debian]}" started=$SECONDS key
  key="$(key_of --containerfile "$here/debian/Containerfile" --context "$here/debian" \
    --file /etc/ssl/certs/ca-certificates.crt)"
  if ! reuse "$name" "$ref" "$key"; then
    mkdir -p "$work/debian/rootfs"
    "$here/debian/make-rootfs.sh" "$work/debian/rootfs"
    echo "images: debootstrap --variant=minbase bookworm in $((SECONDS - started)) s"
    tar -C "$work/debian/rootfs" --numeric-owner -cf "$work/debian/rootfs.tar" .
    rm -rf "$work/debian/rootfs"
    cp "$here/debian/Containerfile" "$work/debian/"
    replaced_id="$(image_id "$ref")"
    "${bud[@]}" --label "$key_label=$key" -t "$ref" -f "$work/debian/Containerfile" "$work/debian" >/dev/null
    export_image "$name" "$ref" "$key" "$started"
    rm -rf "$work/debian"
  fi
  record "$name" "$ref" "$key"
}

build_node() {
  # The machine's own Node 20 (Debian's nodejs is 18; Medusa 2 needs 20), with the npm it ships.
  local context="$work/node-context" node_bin npm_dir
  node_bin="$(readlink -f "$(command -v node)")"
  npm_dir="$(dirname "$node_bin")/../lib/node_modules/npm"
  if ! "$node_bin" --version | grep -q '^v20\.'; then
    echo "images: the node stand-in needs Node 20 on this machine, found $("$node_bin" --version)" >&2
    return 1
  fi
  mkdir -p "$context"
  cp "$here/node/Containerfile" "$context/"
  cp "$node_bin" "$context/node"
  cp -a "$npm_dir" "$context/npm"
  bud_image node "${image_ref[node]}" "$context/Containerfile" "$context" debian -- \
    --build-arg "BASE_IMAGE=${image_ref[debian]}"
}

build_platform() {
  # deploy/Dockerfile downloads helm from get.helm.sh, which this machine cannot reach: serve the same
  # pinned release (the binary install-helm.sh verified, same sha256 the Dockerfile checks) from
  # loopback and point the Dockerfile's HELM_TARBALL_URL at it.
  local helm="$root/.tools/bin/helm3" version sha port
  version="$(sed -nE 's/^ARG HELM_VERSION=(.*)/\1/p' "$root/deploy/Dockerfile")"
  sha="$(sed -nE 's/^ARG HELM_SHA256=(.*)/\1/p' "$root/deploy/Dockerfile")"
  if [ ! -x "$helm" ] || [ "$(sha256sum "$helm" | cut -d' ' -f1)" != "$sha" ]; then
    echo "images: $helm is missing or not helm $version ($sha); run 'make tools'" >&2
    return 1
  fi
  mkdir -p "$work/helm/linux-amd64"
  install -m 0755 "$helm" "$work/helm/linux-amd64/helm"
  tar -C "$work/helm" -czf "$work/helm/helm-$version-linux-amd64.tar.gz" linux-amd64/helm
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  python3 -m http.server --bind 127.0.0.1 --directory "$work/helm" "$port" >/dev/null 2>&1 &
  helm_server_pid=$!
  bud_image platform "${image_ref[platform]}" "$root/deploy/Dockerfile" "$root" python \
    --dockerignore "$root/.dockerignore" --input "helm=$sha" -- \
    --build-arg "HELM_TARBALL_URL=http://127.0.0.1:$port/helm-$version-linux-amd64.tar.gz"
  kill "$helm_server_pid" 2>/dev/null || true
  helm_server_pid=""
}

build_from_scratch() { # NAME BINARY-PATH CONTAINER-PATH INPUT [buildah config args...]
  local name="$1" binary="$2" target="$3" input="$4" ref key started=$SECONDS container
  shift 4
  ref="${image_ref[$name]}"
  mkdir -p "$work/empty"
  key="$(key_of --containerfile "$here/build.sh" --context "$work/empty" --file "$binary" --input "$input")"
  if ! reuse "$name" "$ref" "$key"; then
    replaced_id="$(image_id "$ref")"
    container="$(buildah from scratch)"
    buildah copy --quiet "$container" "$binary" "$target" >/dev/null
    buildah config --label "$key_label=$key" "$@" "$container"
    buildah commit --quiet --format oci --rm "$container" "$ref" >/dev/null
    export_image "$name" "$ref" "$key" "$started"
  fi
  record "$name" "$ref" "$key"
}

build_pause() {
  # Kubernetes' own pause (build/pause/linux/pause.c in the pinned k8s.io/kubernetes module), built the
  # way its Makefile does: a static binary, alone in an image.
  local kube_version module_dir tag="${image_ref[pause]##*:}"
  kube_version="$(sed -nE 's/^KUBERNETES_VERSION=(.*)/\1/p' "$root/deploy/cluster/versions.env")"
  module_dir="$(cd "$root/deploy/cluster" && go mod download -json "k8s.io/kubernetes@$kube_version" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
  if ! grep -q "^TAG ?= $tag\$" "$module_dir/build/pause/Makefile"; then
    echo "images: Kubernetes $kube_version's pause is not $tag; update image_ref[pause]" >&2
    return 1
  fi
  mkdir -p "$work/pause"
  gcc -Os -Wall -Werror -static -DVERSION="v$tag-$kube_version" -o "$work/pause/pause" "$module_dir/build/pause/linux/pause.c"
  strip "$work/pause/pause"
  build_from_scratch pause "$work/pause/pause" /pause "kubernetes=$kube_version" \
    --entrypoint '["/pause"]' --user 65535:65535
}

build_coredns() {
  local binary="$root/.tools/node/coredns"
  if [ ! -x "$binary" ]; then
    bash "$root/deploy/node/build.sh" coredns
  fi
  build_from_scratch coredns "$binary" /coredns "coredns" \
    --entrypoint '["/coredns"]' --port 53/udp --port 53/tcp --user 65532:65532
}

build_traefik() {
  # The ingress controller of the real node (localcluster/ingress.py), as k3s ships it; uid 65532,
  # listening on unprivileged ports (the pod maps host port 80 to it).
  local binary="$root/.tools/node/traefik"
  if [ ! -x "$binary" ]; then
    bash "$root/deploy/node/build.sh" traefik
  fi
  build_from_scratch traefik "$binary" /traefik "traefik" \
    --entrypoint '["/traefik"]' --port 8000/tcp --user 65532:65532
}

build_probe() {
  # The NetworkPolicy tests' probe (deploy/netpol/probe): one static binary, run as any uid.
  local binary="$root/.tools/netpol/probe"
  bash "$root/deploy/netpol/build.sh" probe >/dev/null
  build_from_scratch probe "$binary" /probe "probe" --entrypoint '["/probe"]' --user 65532:65532
}

build_one() {
  case "$1" in
    debian) build_debian ;;
    node) build_node ;;
    platform) build_platform ;;
    pause) build_pause ;;
    coredns) build_coredns ;;
    traefik) build_traefik ;;
    probe) build_probe ;;
    medusa)
      bud_image medusa "${image_ref[medusa]}" "$root/deploy/medusa/Dockerfile" "$root/deploy/medusa" node \
        --dockerignore "$root/deploy/medusa/.dockerignore" -- ;;
    *)
      bud_image "$1" "${image_ref[$1]}" "$here/$1/Containerfile" "$here/$1" "${parent_of[$1]}" -- \
        --build-arg "BASE_IMAGE=${image_ref[${parent_of[$1]}]}" ;;
  esac
}

# What to build: the images named (default: all), each after the images it is built on.
wanted=("$@")
[ "${#wanted[@]}" -gt 0 ] || wanted=("${order[@]}")
declare -A needed=()
for name in "${wanted[@]}"; do
  if [ -z "${image_ref[$name]:-}" ]; then
    echo "images: unknown image $name (one of: ${order[*]})" >&2
    exit 2
  fi
  while [ -n "$name" ]; do
    needed[$name]=1
    name="${parent_of[$name]:-}"
  done
done
started=$SECONDS
for name in "${order[@]}"; do
  [ -z "${needed[$name]:-}" ] || build_one "$name"
done
echo "images: ${#needed[@]} images ready in $((SECONDS - started)) s ($built_total built); archives listed in $index"
