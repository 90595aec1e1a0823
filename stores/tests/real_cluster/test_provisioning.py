"""Both engines provisioned and torn down on a real control plane, through a real Celery worker and
real helm 3 and helm 4: real admission (quota, limits, Pod Security), real controllers, a real
scheduler placing pods on kwok nodes, and the real namespace controller cleaning up."""

import pytest

from stores.choices import StoreStatus
from stores.exceptions import StoreNameTaken
from stores.lifecycle import store_create, store_request_teardown, store_retry
from stores.tests.real_cluster.support import (
    reason_of,
    release_states,
    status_of,
    unique_name,
    wait_namespace_gone,
)
from testkit.helm import HELM_BINARIES, helm_params
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def _ready(condition_owner: dict) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True"
        for c in condition_owner.get("status", {}).get("conditions", [])
    )


def _assert_store_is_really_there(cluster, store) -> set[str]:
    namespace = cluster.get("namespaces", store.namespace)
    labels = namespace["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "store-platform"
    assert labels["platform.example/store"] == store.name
    assert labels["pod-security.kubernetes.io/enforce"] in {"baseline", "restricted"}

    policies = {
        p["metadata"]["name"]
        for p in cluster.objects("networkpolicies", store.namespace, api="networking.k8s.io/v1")
    }
    assert "default-deny-all" in policies and "allow-dns" in policies
    [quota] = cluster.objects("resourcequotas", store.namespace)
    # The quota controller has counted what was admitted, and it fits.
    assert quota["status"]["used"]["pods"] != "0"
    assert cluster.objects("limitranges", store.namespace)
    assert cluster.get("secrets", "store-credentials", store.namespace)["type"] == "Opaque"
    assert release_states(cluster, store.namespace) == ["deployed"]

    claims = cluster.objects("persistentvolumeclaims", store.namespace)
    assert claims and all(claim["status"]["phase"] == "Bound" for claim in claims)
    for workload in ("deployments", "statefulsets"):
        for obj in cluster.objects(workload, store.namespace, api="apps/v1"):
            assert obj["status"].get("readyReplicas") == obj["spec"]["replicas"], obj["metadata"]["name"]

    node_names = {node["metadata"]["name"] for node in cluster.objects("nodes")}
    pods = cluster.objects("pods", store.namespace)
    assert pods
    for pod in pods:
        assert pod["spec"]["nodeName"] in node_names, pod["metadata"]["name"]
        job_pod = any(ref["kind"] == "Job" for ref in pod["metadata"].get("ownerReferences", []))
        if job_pod:
            assert pod["status"]["phase"] == "Succeeded", pod["metadata"]["name"]
        else:
            assert pod["status"]["phase"] == "Running" and _ready(pod), pod["metadata"]["name"]
    return {claim["spec"]["volumeName"] for claim in claims}


@pytest.mark.parametrize("helm_binary", helm_params())
def test_both_engines_provision_and_tear_down_for_real(helm_binary, cluster, tenant, start_worker):
    start_worker(cluster, helm_binary)
    shop, _ = store_create(tenant=tenant, name=unique_name("woo"), engine="woocommerce")
    api_store, _ = store_create(tenant=tenant, name=unique_name("medusa"), engine="medusa")

    for store in (shop, api_store):
        wait_for(lambda s=store: status_of(s) == StoreStatus.READY, timeout=90, what=f"{store.name} ready")
    volumes = set()
    for store in (shop, api_store):
        volumes |= _assert_store_is_really_there(cluster, store)

    for store in (shop, api_store):
        store_request_teardown(store=store)
    for store in (shop, api_store):
        wait_for(
            lambda s=store: status_of(s) == StoreStatus.DELETED, timeout=120, what=f"{store.name} deleted"
        )
        assert cluster.get("namespaces", store.namespace) is None
    # The PersistentVolumes behind the claims went with them (reclaim policy Delete).
    wait_for(
        lambda: not volumes & {pv["metadata"]["name"] for pv in cluster.objects("persistentvolumes")},
        timeout=60,
        what="the stores' volumes deleted",
    )


def test_teardown_names_the_finalizer_that_holds_a_namespace_and_frees_the_name_only_after(
    cluster, tenant, start_worker
):
    start_worker(cluster, HELM_BINARIES["helm4"], TEARDOWN_NAMESPACE_TIMEOUT="8")
    store, _ = store_create(tenant=tenant, name=unique_name("held"), engine="woocommerce")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=90, what="store ready")
    # Something else in the cluster (a backup operator, say) holds an object in the namespace.
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{store.namespace}/configmaps",
        {"metadata": {"name": "held", "finalizers": ["backup.example.com/keep"]}},
    )

    store_request_teardown(store=store)
    wait_for(lambda: status_of(store) == StoreStatus.FAILED, timeout=120, what="teardown to report the hold")
    reason = reason_of(store)
    assert "backup.example.com/keep" in reason and store.namespace in reason
    # While the namespace lingers the name is still taken, for its owner and for anyone else.
    with pytest.raises(StoreNameTaken):
        store_create(tenant=tenant, name=store.name, engine="medusa")

    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{store.namespace}/configmaps/held",
        {"metadata": {"finalizers": None}},
        content_type="application/merge-patch+json",
    )
    store_retry(store=store)
    wait_for(lambda: status_of(store) == StoreStatus.DELETED, timeout=120, what="store deleted after release")
    wait_namespace_gone(cluster, store.namespace)
    again, created = store_create(tenant=tenant, name=store.name, engine="woocommerce")
    assert created
    wait_for(lambda: status_of(again) == StoreStatus.READY, timeout=90, what="the name reused")
