"""The fleet watcher on a real control plane: drift is seen as it happens (a deleted release Secret, a
deleted namespace, pods that stop being ready), each time through the status writer with an event,
and a reconcile pass over a watched, quiet cluster starts no helm process."""

import pytest

from provisioning.choices import RunKind
from provisioning.clusters import cluster_default
from provisioning.models import Cluster
from stores.choices import StoreEventKind, StoreStatus
from stores.lifecycle import store_create
from stores.models import StoreObservation
from stores.reconcile import fleet_reconcile
from stores.tests.real_cluster.support import release_states, status_of, unique_name
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def _transitions(store, actor="watcher"):
    return list(
        store.events.filter(kind=StoreEventKind.TRANSITION, actor_label=actor).values_list(
            "new_status", "reason"
        )
    )


@pytest.fixture
def watched_store(cluster, tenant, start_worker, start_watcher):
    start_worker(cluster, HELM_BINARIES["helm4"])
    start_watcher(cluster, STORE_DEGRADE_AFTER_SECONDS="2")
    store, _ = store_create(tenant=tenant, name=unique_name("watched"), engine="woocommerce")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready")
    wait_for(
        lambda: StoreObservation.objects.filter(store=store, release_status="deployed").exists(),
        timeout=30,
        what="the watcher to observe the release",
    )
    return store


def test_a_deleted_release_secret_is_seen_and_the_store_reprovisioned(cluster, watched_store):
    store = watched_store
    [secret] = cluster.objects("secrets", store.namespace, label_selector="owner=helm")
    cluster.request("DELETE", f"/api/v1/namespaces/{store.namespace}/secrets/{secret['metadata']['name']}")

    wait_for(lambda: _transitions(store), timeout=20, what="the watcher to react")
    assert _transitions(store)[0] == (
        "requested",
        f"The store's helm release {store.release_name} vanished from the cluster; re-provisioning.",
    )
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready again")
    assert store.runs.filter(kind=RunKind.PROVISION).count() == 2
    assert release_states(cluster, store.namespace) == ["deployed"]


def test_a_deleted_namespace_is_seen_and_the_store_reprovisioned(cluster, watched_store):
    store = watched_store
    cluster.request("DELETE", f"/api/v1/namespaces/{store.namespace}")

    wait_for(lambda: _transitions(store), timeout=20, what="the watcher to react")
    assert _transitions(store)[0] == (
        "requested",
        f"The store's namespace {store.namespace} vanished from the cluster; re-provisioning.",
    )
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=180, what="store ready again")
    assert cluster.get("namespaces", store.namespace) is not None


def test_pods_that_stop_being_ready_degrade_the_store_and_it_recovers(cluster, watched_store):
    store = watched_store
    cluster.make_never_ready(store.namespace)
    for pod in cluster.objects("pods", store.namespace, label_selector="app.kubernetes.io/name=wordpress"):
        cluster.request("DELETE", f"/api/v1/namespaces/{store.namespace}/pods/{pod['metadata']['name']}")
    wait_for(
        lambda: StoreObservation.objects.filter(store=store, workloads_ready=False).exists(),
        timeout=30,
        what="the watcher to see the Deployment not ready",
    )
    # The watcher reports the change; a pass after the grace period marks the store degraded.
    wait_for(
        lambda: fleet_reconcile() and status_of(store) == StoreStatus.DEGRADED, timeout=30, what="degraded"
    )
    reason = store.events.filter(new_status=StoreStatus.DEGRADED).get().reason
    assert reason.startswith("Not all of the store's workloads are ready: deployment wordpress")

    cluster.clear_never_ready(store.namespace)
    for pod in cluster.objects("pods", store.namespace, label_selector="app.kubernetes.io/name=wordpress"):
        cluster.request("DELETE", f"/api/v1/namespaces/{store.namespace}/pods/{pod['metadata']['name']}")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=60, what="ready again")
    assert [status for status, _ in _transitions(store)] == ["degraded", "ready"]


class _CountingHelm:
    def __init__(self, real):
        self.real = real
        self.calls: list[str] = []

    def __call__(self, on_invocation):
        helm = self.real(on_invocation)
        original = helm._run

        def counted(argv, **kwargs):
            self.calls.append(argv[0])
            return original(argv, **kwargs)

        helm._run = counted
        return helm


def test_a_pass_over_a_watched_quiet_cluster_starts_no_helm(cluster, watched_store, tmp_path):
    access = access_for(cluster, HELM_BINARIES["helm4"], tmp_path / "helm")
    counting = _CountingHelm(access.helm_factory)
    access.helm_factory = counting
    assert Cluster.objects.get(pk=cluster_default().pk).watched_at is not None  # the heartbeat is fresh

    report = fleet_reconcile(access=access)

    assert report.errors == [] and counting.calls == []
    # Without a live watcher the pass falls back to looking with helm (here: one `helm list`).
    Cluster.objects.filter(pk=cluster_default().pk).update(watched_at=None)
    watched_store.__class__.objects.filter(pk=watched_store.pk).update(
        status_changed_at=watched_store.created_at.replace(year=2000)
    )
    fleet_reconcile(access=access)
    assert counting.calls == ["list"]
