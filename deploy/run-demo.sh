#!/usr/bin/env bash
# `make demo`: the platform of `make run` against a cluster started here in the background: the real
# control plane of `make cluster` (kube-apiserver, etcd, controllers, kwok nodes) when its binaries
# are built, else the Kubernetes API test double. Its own database and broker folder keep demo stores
# away from a real cluster's. Every page says which it is.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bin=.venv/bin
demo_dir=var/demo
mkdir -p "$demo_dir"

export DATABASE_URL="sqlite:///$PWD/$demo_dir/platform.sqlite3"
export BROKER_DATA_DIR="$PWD/$demo_dir/broker"
export HELM_BINARY="${HELM_BINARY:-$PWD/.tools/bin/helm}"
export PROVISIONING_TIMEOUT="${PROVISIONING_TIMEOUT:-120}"
export TEARDOWN_NAMESPACE_TIMEOUT="${TEARDOWN_NAMESPACE_TIMEOUT:-30}"
export RECONCILE_INTERVAL="${RECONCILE_INTERVAL:-10}"

"$bin/python" manage.py migrate --noinput >/dev/null
"$bin/python" manage.py ensure_local_admin

started_pid=""
trap '[ -n "$started_pid" ] && kill "$started_pid" 2>/dev/null || true' EXIT
if missing="$("$bin/python" -c 'from localcluster import ClusterBinaries, BinariesMissing
try:
    ClusterBinaries.find()
except BinariesMissing as exc:
    print(exc)' )" && [ -z "$missing" ]; then
  export CLUSTER_NODES_SIMULATED=1
  "$bin/python" -m localcluster --dir "$demo_dir/cluster" > "$demo_dir/cluster.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 150); do
    grep -q 'kubeconfig:' "$demo_dir/cluster.log" 2>/dev/null && break
    kill -0 "$started_pid" 2>/dev/null || break
    sleep 0.2
  done
  grep -q 'kubeconfig:' "$demo_dir/cluster.log" || { echo "the local control plane did not start:"; cat "$demo_dir/cluster.log"; exit 1; }
  export KUBECONFIG="$PWD/$demo_dir/cluster/kubeconfig"
  echo "Real Kubernetes control plane with kwok nodes running; kubeconfig: $KUBECONFIG"
else
  echo "make demo: $missing; using the Kubernetes API test double instead."
  export CLUSTER_IS_SIMULATED=1
  export KUBECONFIG="$PWD/$demo_dir/kubeconfig"
  rm -f "$KUBECONFIG"
  "$bin/python" -m kubeapi_double --port "${KUBEAPI_PORT:-0}" --kubeconfig "$KUBECONFIG" \
    --ready-delay "${KUBEAPI_READY_DELAY:-2}" > "$demo_dir/kubeapi.log" 2>&1 &
  started_pid=$!
  for _ in $(seq 1 50); do
    grep -q '^READY' "$demo_dir/kubeapi.log" 2>/dev/null && break
    sleep 0.2
  done
  grep '^READY' "$demo_dir/kubeapi.log" || { echo "the Kubernetes API double did not start:"; cat "$demo_dir/kubeapi.log"; exit 1; }
  echo "Simulated cluster (Kubernetes API test double) running; kubeconfig: $KUBECONFIG"
fi
bash deploy/run-local.sh
