#!/usr/bin/env bash
# `make demo`: the platform of `make run`, pointed at the Kubernetes API test double (a simulated
# cluster started here in the background). Its own database and broker folder keep demo stores
# away from a real cluster's. Every page shows a "simulated cluster" banner.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=.venv/bin
demo_dir=var/demo
mkdir -p "$demo_dir"

export DATABASE_URL="sqlite:///$PWD/$demo_dir/platform.sqlite3"
export BROKER_DATA_DIR="$PWD/$demo_dir/broker"
export KUBECONFIG="$PWD/$demo_dir/kubeconfig"
export CLUSTER_IS_SIMULATED=1
export HELM_BINARY="${HELM_BINARY:-$PWD/.tools/bin/helm}"
export PROVISIONING_TIMEOUT="${PROVISIONING_TIMEOUT:-120}"
export TEARDOWN_NAMESPACE_TIMEOUT="${TEARDOWN_NAMESPACE_TIMEOUT:-30}"
export RECONCILE_INTERVAL="${RECONCILE_INTERVAL:-10}"

"$bin/python" manage.py migrate --noinput >/dev/null
"$bin/python" manage.py ensure_local_admin

rm -f "$KUBECONFIG"
"$bin/python" -m provisioning.testing.kubeapi --port "${KUBEAPI_PORT:-0}" --kubeconfig "$KUBECONFIG" \
  --ready-delay "${KUBEAPI_READY_DELAY:-2}" > "$demo_dir/kubeapi.log" 2>&1 &
double_pid=$!
trap 'kill $double_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 50); do
  grep -q '^READY' "$demo_dir/kubeapi.log" 2>/dev/null && break
  sleep 0.2
done
grep '^READY' "$demo_dir/kubeapi.log" || { echo "the Kubernetes API double did not start:"; cat "$demo_dir/kubeapi.log"; exit 1; }
echo "Simulated cluster (Kubernetes API test double) running; kubeconfig: $KUBECONFIG"
bash deploy/run-local.sh
