#!/usr/bin/env bash
# The real-cluster acceptance check: run it from the repository root against a cluster where
# charts/platform is installed (deploy/README.md). Its pieces are tested against a fake platform
# (deploy/e2e/test_e2e_cluster.py); CI runs it whole, for Medusa, against the platform installed on
# the real node (localcluster/tests/test_platform_on_real_node.py).
#
# For each engine it creates a store through the platform API, waits for it to be ready, fetches the
# store's page (the shop for WooCommerce, the admin dashboard for headless Medusa), reveals the
# admin credentials and places a Cash on Delivery order for "Test Product" with the store client
# (python -m testkit.storefront place-order, which also confirms the order through the store's admin
# API); then deletes every store and checks that the namespaces and their volumes are gone. Every
# step is printed; the first failure stops the run with a non-zero exit. Without DNS for the store
# domain, point http_proxy at the ingress controller (the Python clients honour it; kubectl talks
# https to the apiserver and ignores it).
set -Eeuo pipefail

usage() {
  cat <<'USAGE'
usage: deploy/e2e-cluster.sh --url DASHBOARD_URL [options]

  --url URL            the dashboard, e.g. http://dashboard.127.0.0.1.nip.io (required)
  --namespace NS       namespace the platform chart is installed in (default: platform)
  --release NAME       helm release name of the platform (default: platform)
  --engines LIST       comma-separated: woocommerce,medusa (default: both)
  --domain DOMAIN      STORE_BASE_DOMAIN, if the API does not return store URLs (default: from --url)
  --timeout SECONDS    how long one store may take to become ready or go away (default: 900)
  --token-env VAR      use the API token in $VAR instead of creating a tenant and token in the web pod
  --keep               leave the stores in place (skips the teardown checks)
  -h, --help           this text

environment: KUBECTL (default kubectl), PYTHON (default .venv/bin/python, else python3),
             E2E_POLL_SECONDS (default 5)
USAGE
}

url="" namespace="platform" release="platform" engines="woocommerce,medusa" domain=""
timeout=900 token_env="" keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url="${2:?--url needs a value}"; shift 2 ;;
    --namespace) namespace="${2:?--namespace needs a value}"; shift 2 ;;
    --release) release="${2:?--release needs a value}"; shift 2 ;;
    --engines) engines="${2:?--engines needs a value}"; shift 2 ;;
    --domain) domain="${2:?--domain needs a value}"; shift 2 ;;
    --timeout) timeout="${2:?--timeout needs a value}"; shift 2 ;;
    --token-env) token_env="${2:?--token-env needs a value}"; shift 2 ;;
    --keep) keep=1; shift ;;
    -h|--help) usage; exit 0 ;;
    *) echo "e2e: unknown argument: $1" >&2; usage >&2; exit 2 ;;
  esac
done
if [ -z "$url" ]; then
  echo "e2e: --url is required" >&2; usage >&2; exit 2
fi
case "$timeout" in ''|*[!0-9]*) echo "e2e: --timeout must be a number of seconds" >&2; exit 2 ;; esac
IFS=',' read -r -a engine_list <<<"$engines"
for engine in "${engine_list[@]}"; do
  case "$engine" in
    woocommerce|medusa) ;;
    *) echo "e2e: unknown engine '$engine' (woocommerce or medusa)" >&2; exit 2 ;;
  esac
done

url="${url%/}"
scheme="${url%%://*}"
if [ -z "$domain" ]; then
  # dashboard.<domain> -> <domain>: the chart publishes the dashboard one label below the store domain.
  host="${url#*://}"; host="${host%%/*}"; domain="${host#*.}"
fi
KUBECTL="${KUBECTL:-kubectl}"
if [ -z "${PYTHON:-}" ]; then
  if [ -x .venv/bin/python ]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi
poll="${E2E_POLL_SECONDS:-5}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
storefront_module="${E2E_STOREFRONT_MODULE:-testkit.storefront}"

step_no=0
current_step="start"
step() {
  step_no=$((step_no + 1))
  current_step="$*"
  printf '\n==> [%d] %s\n' "$step_no" "$*"
}
on_error() {
  local code=$?
  printf '\ne2e: FAILED at step [%d] %s (exit %d)\n' "$step_no" "$current_step" "$code" >&2
  exit "$code"
}
trap on_error ERR

bound_volumes() { # namespace -> names of PersistentVolumes whose claim was in it
  "$KUBECTL" get pv -o jsonpath='{range .items[*]}{.metadata.name} {.spec.claimRef.namespace}{"\n"}{end}' \
    | awk -v ns="$1" '$2 == ns {print $1}'
}

api() { # subcommand args...: the platform API, token from the environment
  "$PYTHON" "$here/e2e/platform_api.py" --api "$url" --token-env E2E_API_TOKEN --poll "$poll" "$@"
}

step "Check the tools and the platform"
command -v "$KUBECTL" >/dev/null || { echo "e2e: kubectl not found (set KUBECTL)" >&2; false; }
"$PYTHON" --version
"$KUBECTL" -n "$namespace" get deployment "$release-web" "$release-worker" "$release-beat"
"$PYTHON" "$here/e2e/platform_api.py" --poll "$poll" fetch --url "$url/healthz" --timeout 60

step "Create a tenant and an API token"
if [ -n "$token_env" ]; then
  E2E_API_TOKEN="${!token_env:-}"
  [ -n "$E2E_API_TOKEN" ] || { echo "e2e: \$$token_env is empty" >&2; false; }
  echo "using the token in \$$token_env"
else
  token_line="$("$KUBECTL" -n "$namespace" exec -i "deployment/$release-web" -c web -- \
    python manage.py shell <"$here/e2e/issue_token.py" | grep '^E2E_TOKEN ' | tail -n 1)"
  E2E_API_TOKEN="${token_line#E2E_TOKEN }"
  [ -n "$E2E_API_TOKEN" ] || { echo "e2e: the web pod printed no token" >&2; false; }
  echo "created a tenant and a token (not shown)"
fi
export E2E_API_TOKEN

run_id="$(date +%s | tail -c 6)$RANDOM"
stores=()
for engine in "${engine_list[@]}"; do
  case "$engine" in woocommerce) short=wc ;; medusa) short=md ;; esac
  store="e2e-$short-$run_id"
  stores+=("$store")

  step "$engine: create store $store"
  api create-store --name "$store" --engine "$engine"

  step "$engine: wait until $store is ready (up to ${timeout}s)"
  api wait-status --name "$store" --status ready --timeout "$timeout"

  step "$engine: fetch the store's page"
  store_url="$(api store-url --name "$store" --domain "$domain" --scheme "$scheme")"
  # WooCommerce's root is the shop. Medusa is headless: its server answers 404 at / (the storefront
  # is its Store API, which the store client drives below) and serves the admin dashboard at /app.
  case "$engine" in medusa) page="${store_url%/}/app" ;; *) page="$store_url" ;; esac
  "$PYTHON" "$here/e2e/platform_api.py" --poll "$poll" fetch --url "$page" --timeout 120

  step "$engine: reveal the admin credentials"
  { read -r admin_user; read -r STORE_ADMIN_PASSWORD; } < <(api credentials --name "$store" --engine "$engine")
  [ -n "$admin_user" ] && [ -n "$STORE_ADMIN_PASSWORD" ]
  export STORE_ADMIN_PASSWORD
  echo "admin user: $admin_user (password kept in the environment, not shown)"

  step "$engine: put \"Test Product\" in the cart, place a Cash on Delivery order and confirm it as admin"
  "$PYTHON" -m "$storefront_module" place-order --engine "$engine" --store-url "$store_url" \
    --admin-user "$admin_user" --password-env STORE_ADMIN_PASSWORD
  unset STORE_ADMIN_PASSWORD
done

if [ "$keep" = 1 ]; then
  step "Keep the stores (--keep): ${stores[*]}"
  echo "e2e: PASSED (teardown not checked)"
  exit 0
fi

for store in "${stores[@]}"; do
  step "Delete store $store"
  api delete-store --name "$store"
done
for store in "${stores[@]}"; do
  step "Wait until $store is deleted (up to ${timeout}s)"
  api wait-gone --name "$store" --timeout "$timeout"

  step "Check that namespace store-$store and its volumes are gone"
  deadline=$((SECONDS + timeout))
  until ! "$KUBECTL" get namespace "store-$store" >/dev/null 2>&1; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "e2e: namespace store-$store still exists:" >&2
      "$KUBECTL" get namespace "store-$store" -o wide >&2 || true
      false
    fi
    sleep "$poll"
  done
  echo "namespace store-$store: gone"
  claims="$("$KUBECTL" get pvc -n "store-$store" -o name 2>/dev/null || true)"
  [ -z "$claims" ] || { echo "e2e: PVCs left in store-$store: $claims" >&2; false; }
  # A released volume is removed by its provisioner a moment after its claim: poll for that too.
  until [ -z "$(bound_volumes "store-$store")" ]; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      echo "e2e: PersistentVolumes still bound to store-$store: $(bound_volumes "store-$store")" >&2
      false
    fi
    sleep "$poll"
  done
  echo "PVCs and PersistentVolumes of store-$store: gone"
done

printf '\ne2e: PASSED (%s)\n' "${engine_list[*]}"
