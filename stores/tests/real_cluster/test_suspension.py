"""Suspend and resume on a real control plane, through a real Celery worker, real helm and the fleet
watcher: a suspended store's Deployments and StatefulSets are at zero with no pods left, its volumes
are still bound, its Ingress routes to the paused page, and the watcher neither degrades it nor
re-provisions it; resumed, the same volumes come back with running pods and the store is ready."""

import pytest

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus, SuspensionSource
from stores.lifecycle import store_create
from stores.models import StoreObservation
from stores.suspension import store_resume, store_suspend
from stores.tests.real_cluster.support import reason_of, release_states, status_of, unique_name
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def _workloads(cluster, namespace):
    return [
        obj
        for kind in ("deployments", "statefulsets")
        for obj in cluster.objects(kind, namespace, api="apps/v1")
    ]


def _backends(cluster, namespace):
    return {
        path["backend"]["service"]["name"]
        for ingress in cluster.objects("ingresses", namespace, api="networking.k8s.io/v1")
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }


def _workload_pods(cluster, namespace):
    return [
        pod
        for pod in cluster.objects("pods", namespace)
        if not any(ref["kind"] == "Job" for ref in pod["metadata"].get("ownerReferences", []))
    ]


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_a_store_suspended_and_resumed_for_real(engine, cluster, tenant, owner, start_worker, start_watcher):
    start_worker(cluster, HELM_BINARIES["helm4"])
    start_watcher(cluster, STORE_DEGRADE_AFTER_SECONDS="2")
    store, _ = store_create(tenant=tenant, name=unique_name(f"pause-{engine[:3]}"), engine=engine)
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=150, what=f"{store.name} ready")
    claims = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in cluster.objects("persistentvolumeclaims", store.namespace)
    }
    assert claims and _backends(cluster, store.namespace) != {"store-paused"}

    store_suspend(store=store, source=SuspensionSource.STAFF, reason="chargeback on invoice 7", actor=owner)
    wait_for(
        lambda: status_of(store) in {StoreStatus.SUSPENDED, StoreStatus.FAILED},
        timeout=150,
        what=f"{store.name} suspended",
    )
    assert status_of(store) == StoreStatus.SUSPENDED, reason_of(store)

    workloads = _workloads(cluster, store.namespace)
    assert workloads and {w["metadata"]["name"]: w["spec"]["replicas"] for w in workloads} == {
        w["metadata"]["name"]: 0 for w in workloads
    }
    # The controllers scaled them down for real: no workload pod is left.
    wait_for(lambda: _workload_pods(cluster, store.namespace) == [], timeout=60, what="pods gone")
    after = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in cluster.objects("persistentvolumeclaims", store.namespace)
    }
    assert after == claims  # the same claims on the same volumes
    assert all(
        c["status"]["phase"] == "Bound" for c in cluster.objects("persistentvolumeclaims", store.namespace)
    )
    assert _backends(cluster, store.namespace) == {"store-paused"}
    paused = cluster.get("services", "store-paused", store.namespace)
    assert paused["spec"]["type"] == "ExternalName"
    assert paused["spec"]["externalName"].endswith(".svc.cluster.local")
    # One deployed revision (the suspended one) over the superseded install; nothing pending or failed.
    assert sorted(release_states(cluster, store.namespace)) == ["deployed", "superseded"]
    # The watcher saw the release at its new revision and still leaves the store suspended.
    wait_for(
        lambda: StoreObservation.objects.filter(store=store, release_revision__gte=2).exists(),
        timeout=30,
        what="the watcher to observe the suspended release",
    )
    assert status_of(store) == StoreStatus.SUSPENDED
    assert (
        not store.events.filter(actor_label__in=["watcher", "reconciler"], kind=StoreEventKind.TRANSITION)
        .exclude(new_status=StoreStatus.READY)
        .exists()
    )

    store_resume(store=store, source=SuspensionSource.STAFF, actor=owner)
    wait_for(
        lambda: status_of(store) in {StoreStatus.READY, StoreStatus.FAILED},
        timeout=150,
        what=f"{store.name} resumed",
    )
    assert status_of(store) == StoreStatus.READY, reason_of(store)

    workloads = _workloads(cluster, store.namespace)
    assert {w["spec"]["replicas"] for w in workloads} == {1}
    assert all(w["status"].get("readyReplicas") == 1 for w in workloads)
    assert _backends(cluster, store.namespace) != {"store-paused"}
    assert "store-paused" not in {s["metadata"]["name"] for s in cluster.objects("services", store.namespace)}
    after = {
        c["metadata"]["name"]: c["spec"]["volumeName"]
        for c in cluster.objects("persistentvolumeclaims", store.namespace)
    }
    assert after == claims
    moves = list(
        store.events.filter(kind=StoreEventKind.TRANSITION)
        .order_by("id")
        .values_list("new_status", flat=True)
    )
    assert moves[-4:] == [
        StoreStatus.SUSPENDING,
        StoreStatus.SUSPENDED,
        StoreStatus.RESUMING,
        StoreStatus.READY,
    ]
    assert ProvisioningRun.objects.filter(store=store, status=RunStatus.SUCCEEDED).count() == 3
