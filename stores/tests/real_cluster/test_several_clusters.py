"""Three real control planes at once, each registered with a sealed kubeconfig: stores spread by
capacity, a draining cluster gets none, a cluster whose apiserver stops is shown unreachable while
creates on the others succeed, and its stores come back to their real status when it returns."""

import pytest
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from provisioning.choices import ClusterHealth
from provisioning.clusters import cluster_create, cluster_default, cluster_set_draining
from provisioning.models import Cluster
from stores.api.serializers import StoreSerializer
from stores.choices import StoreStatus
from stores.lifecycle import store_create
from stores.models import Plan, PlanResources, Store
from stores.placement import NoClusterHasRoom
from stores.tests.real_cluster.support import status_of, unique_name
from testkit.helm import HELM_BINARIES
from testkit.plugins.real_cluster import FakeNode
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def _node(name: str) -> FakeNode:
    return FakeNode(name, cpu="4", memory="16Gi")


def _measured(cluster: Cluster) -> bool:
    cluster.refresh_from_db()
    return cluster.allocatable_cpu_millicores is not None


def _shown(store: Store) -> tuple[str, dict]:
    """The store's status and cluster as the API shows them."""
    request = Request(APIRequestFactory().get("/api/v1/stores/"))
    shown = StoreSerializer(Store.objects.get(pk=store.pk), context={"request": request}).data
    return shown["status"], shown["cluster"]


def _health(cluster: Cluster) -> str:
    cluster.refresh_from_db()
    return cluster.health


def test_stores_spread_by_capacity_and_an_unreachable_cluster_holds_up_no_other(
    cluster, tenant, start_clusters, start_worker, start_watcher
):
    # The session cluster is the ambient default; draining it leaves placement to the three below.
    cluster_set_draining(cluster=cluster_default(), draining=True)
    small, large, drained = start_clusters(
        (_node("a-1"),), (_node("b-1"), _node("b-2")), (_node("c-1"), _node("c-2"))
    )
    rows = {
        name: cluster_create(name=name, kubeconfig=local.kubeconfig.read_text(), region="local")
        for name, local in (("small", small), ("large", large), ("drained", drained))
    }
    cluster_set_draining(cluster=rows["drained"], draining=True)
    # WooCommerce stores of 2 CPU / 2 GiB, room for 20 per tenant. Made here: transactional tests on
    # PostgreSQL flush the seeded plans.
    plan = Plan.objects.create(name="Fleet test", max_stores=20)
    PlanResources.objects.create(
        plan=plan, engine="woocommerce", cpu_millicores=2000, memory_mib=2048, storage_gib=10
    )
    tenant.plan = plan
    tenant.save(update_fields=["plan"])

    start_worker(cluster, HELM_BINARIES["helm4"], concurrency=2)
    start_watcher(cluster)
    for row in rows.values():
        wait_for(lambda row=row: _measured(row), timeout=30, what=f"{row.name}'s capacity")
    assert (rows["small"].allocatable_cpu_millicores, rows["large"].allocatable_cpu_millicores) == (
        4000,
        8000,
    )

    stores = [
        store_create(tenant=tenant, name=unique_name("fleet"), engine="woocommerce")[0] for _ in range(4)
    ]
    # Least loaded first, ties to the one with more room: large, small, large, large.
    assert [store.cluster.name for store in stores] == ["large", "small", "large", "large"]
    for store in stores:
        wait_for(
            lambda store=store: status_of(store) == StoreStatus.READY, timeout=180, what=f"{store} ready"
        )
    for store in stores:
        local = small if store.cluster.name == "small" else large
        assert local.get("namespaces", store.namespace) is not None
        assert drained.get("namespaces", store.namespace) is None
        assert cluster.get("namespaces", store.namespace) is None

    large.stop_component("kube-apiserver")
    try:
        wait_for(
            lambda: _health(rows["large"]) == ClusterHealth.UNREACHABLE, timeout=60, what="large unreachable"
        )
        away = [store for store in stores if store.cluster.name == "large"]
        for store in away:
            # The store keeps its own status; the cluster's absence is shown beside it.
            assert _shown(store) == ("ready", {"name": "large", "reachable": False})

        # Work on the others goes on: a new store lands on the small cluster and becomes ready.
        during, _ = store_create(tenant=tenant, name=unique_name("during"), engine="woocommerce")
        assert during.cluster.name == "small"
        wait_for(
            lambda: status_of(during) == StoreStatus.READY, timeout=180, what="a store created meanwhile"
        )
        # Now small is full, large is away and the last one drains: refused, with the reason.
        with pytest.raises(NoClusterHasRoom, match="none has room for it"):
            store_create(tenant=tenant, name=unique_name("nowhere"), engine="woocommerce")
        assert not Store.objects.filter(name__startswith="nowhere").exists()
    finally:
        large.start_component("kube-apiserver")

    wait_for(lambda: _health(rows["large"]) == ClusterHealth.HEALTHY, timeout=90, what="large healthy again")
    for store in away:
        assert _shown(store) == ("ready", {"name": "large", "reachable": True})
    assert Store.objects.filter(cluster__name="drained").count() == 0
