"""Placement of new stores across clusters, the per-cluster helm cap, and an unreachable cluster."""

import pytest

from provisioning.choices import ClusterHealth, RunStatus
from provisioning.clusters import cluster_default, cluster_health_transition
from provisioning.models import Cluster, ProvisioningRun
from stores.lifecycle import RunOutcome, store_create, store_run_claim, store_run_execute
from stores.placement import NoClusterHasRoom, cluster_loads, store_place
from stores.tests.factories import StoreFactory, TenantFactory

pytestmark = pytest.mark.django_db

# The default plan gives a WooCommerce store 1000m CPU and 1024 MiB.
WOO_CPU, WOO_MEMORY = 1000, 1024


def _cluster(name, *, cpu=None, memory=None, **fields):
    return Cluster.objects.create(
        name=name,
        connection="kubeconfig",
        kubeconfig_sealed="sealed",
        allocatable_cpu_millicores=cpu,
        allocatable_memory_mib=memory,
        **fields,
    )


def test_with_no_cluster_rows_the_ambient_default_is_used(tenant):
    Cluster.objects.all().delete()
    store, _ = store_create(tenant=tenant, name="first-shop", engine="woocommerce")
    assert store.cluster.is_default and store.cluster.connection == "ambient"
    assert store.runs.get().cluster_id == store.cluster_id


def test_the_watcher_adds_the_ambient_cluster_only_when_none_is_registered():
    from stores.management.commands.watch_clusters import watched_clusters

    Cluster.objects.all().delete()
    registered = _cluster("registered", cpu=8000, memory=16384)
    # Beside a registered cluster the ambient one is not made: placement would count it as another
    # cluster (twice the capacity and helm slots when both are the same kubeconfig).
    assert watched_clusters() == [registered]
    assert not Cluster.objects.filter(is_default=True).exists()
    Cluster.objects.all().delete()
    [ambient] = watched_clusters()
    assert ambient.is_default and ambient.connection == "ambient"


def test_stores_go_to_the_least_loaded_cluster_that_fits(tenant):
    Cluster.objects.all().delete()
    big = _cluster("big", cpu=8000, memory=16384)
    small = _cluster("small", cpu=2000, memory=4096)
    placed = [store_place(tenant=tenant, engine="woocommerce")]  # both empty: the bigger one
    StoreFactory(tenant=TenantFactory(), cluster=big, name="on-big-1")  # big 7/8 free, small all free
    placed.append(store_place(tenant=tenant, engine="woocommerce"))
    StoreFactory(tenant=TenantFactory(), cluster=small, name="on-small-1")  # big 7/8 free, small 1/2 free
    placed.append(store_place(tenant=tenant, engine="woocommerce"))
    assert [c.name for c in placed] == ["big", "small", "big"]
    loads = {
        load.cluster.name: (load.cpu_millicores, load.memory_mib, load.stores) for load in cluster_loads()
    }
    assert loads == {"big": (WOO_CPU, WOO_MEMORY, 1), "small": (WOO_CPU, WOO_MEMORY, 1)}


def test_a_clusters_load_sums_each_stores_own_engine_and_counts_it_once():
    """The plan prices both engines (two joined rows per store): each store adds its own engine's
    quota once; a store whose plan prices nothing for its engine still counts, with no quota."""
    from stores.models import Plan, PlanResources

    Cluster.objects.all().delete()
    here = _cluster("here", cpu=100_000, memory=100_000)
    woo = StoreFactory(cluster=here, engine="woocommerce")
    medusa = StoreFactory(cluster=here, engine="medusa", name="a-medusa")
    StoreFactory(
        cluster=here,
        tenant=TenantFactory(plan=Plan.objects.create(name="Bare", max_stores=3)),
        name="unpriced",
    )
    StoreFactory(cluster=here, name="gone-already", status="deleted")
    need = [PlanResources.objects.get(plan=store.tenant.plan, engine=store.engine) for store in (woo, medusa)]

    [load] = cluster_loads()

    assert load.stores == 3
    assert load.cpu_millicores == sum(row.cpu_millicores for row in need) == 3000
    assert load.memory_mib == sum(row.memory_mib for row in need) == 3072


def test_draining_and_unreachable_clusters_get_no_new_store(tenant):
    Cluster.objects.all().delete()
    _cluster("draining", cpu=100_000, memory=100_000, draining=True)
    gone = _cluster("gone", cpu=100_000, memory=100_000)
    cluster_health_transition(cluster_id=gone.pk, to=ClusterHealth.UNREACHABLE, reason="refused")
    open_one = _cluster("open", cpu=2000, memory=4096)
    assert store_place(tenant=tenant, engine="woocommerce") == open_one


def test_a_full_platform_refuses_with_the_reason_and_stores_nothing(tenant):
    Cluster.objects.all().delete()
    full = _cluster("full", cpu=1500, memory=4096)
    StoreFactory(tenant=TenantFactory(), cluster=full, name="taking-it")
    with pytest.raises(NoClusterHasRoom, match=r"\(1000m CPU, 1024 MiB\) now: none has room for it"):
        store_create(tenant=tenant, name="no-room", engine="woocommerce")
    assert not tenant.stores.exists()


def test_the_tenants_region_is_respected(tenant):
    Cluster.objects.all().delete()
    _cluster("us", cpu=100_000, memory=100_000, region="us-east")
    eu = _cluster("eu", cpu=2000, memory=4096, region="eu-west")
    tenant.region = "eu-west"
    tenant.save()
    assert store_place(tenant=tenant, engine="woocommerce") == eu
    tenant.region = "ap-south"
    tenant.save()
    with pytest.raises(NoClusterHasRoom, match="in region ap-south"):
        store_place(tenant=tenant, engine="woocommerce")


def test_each_cluster_has_its_own_helm_cap(tenant, settings):
    settings.PROVISIONING_CONCURRENCY = 10
    Cluster.objects.all().delete()
    one = _cluster("one-at-a-time", helm_concurrency=1)
    other = _cluster("other")
    busy = StoreFactory(tenant=TenantFactory(), cluster=one, name="busy-here", provisioning=True)
    assert ProvisioningRun.objects.filter(store=busy, status=RunStatus.RUNNING).exists()
    waiting = StoreFactory(tenant=TenantFactory(), cluster=one, name="waits-here")
    elsewhere = StoreFactory(tenant=TenantFactory(), cluster=other, name="runs-there")

    assert store_run_claim(run_id=waiting.runs.get().pk, worker="w:1").status == "busy"
    assert store_run_claim(run_id=elsewhere.runs.get().pk, worker="w:1").status == "claimed"


def test_a_run_on_an_unreachable_cluster_waits_without_spending_an_attempt(tenant):
    cluster = cluster_default()
    store, _ = store_create(tenant=tenant, name="far-off", engine="woocommerce")
    cluster_health_transition(cluster_id=cluster.pk, to=ClusterHealth.UNREACHABLE, reason="refused")
    run = store.runs.get()

    result = store_run_execute(run_id=run.pk)

    assert result.outcome is RunOutcome.WAITING_FOR_CLUSTER and "unreachable" in result.detail
    run.refresh_from_db()
    assert run.status == RunStatus.QUEUED and store.events.count() == 1


def test_a_cluster_whose_credentials_cannot_be_opened_fails_the_attempt_for_good(tenant, settings):
    Cluster.objects.all().delete()
    broken = _cluster("broken-key")
    store, _ = store_create(tenant=tenant, name="locked-out", engine="woocommerce")
    assert store.cluster == broken
    result = store_run_execute(run_id=store.runs.get().pk)
    store.refresh_from_db()
    assert result.outcome is RunOutcome.FAILED and store.status == "failed"
    assert "paste its kubeconfig again" in store.status_reason and "Retrying" not in store.status_reason
    run = store.runs.get()
    assert run.status == RunStatus.FAILED
