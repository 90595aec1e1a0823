"""A staged rollout on a real control plane, through a real Celery worker and helm 4: twenty WooCommerce
stores on version A move to version B in batches of five; each store's helm history shows the upgrade
revision and its WordPress Deployment runs B's image. A broken version C stops after its canary batch
of five, which is rolled back to A; the other fifteen are never touched."""

from __future__ import annotations

import pytest

from stores.choices import EngineVersionState, RolloutItemStatus, RolloutStatus, StoreStatus
from stores.lifecycle import store_create
from stores.models import EngineVersion, Rollout, Store
from stores.tests.real_cluster.support import release_states, status_of, unique_name
from stores.upgrades import rollout_advance, rollout_create, rollout_start
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]

STORES = 20
BATCH = 5


def _version(name: str, tag: str, state: str) -> EngineVersion:
    return EngineVersion.objects.create(
        engine="woocommerce",
        name=name,
        chart_version="0.1.0",
        values={"images": {"wordpress": {"tag": tag}}},
        state=state,
    )


def _wordpress_images(cluster, namespace: str) -> set[str]:
    return {
        container["image"]
        for deployment in cluster.objects("deployments", namespace, api="apps/v1")
        for container in deployment["spec"]["template"]["spec"]["containers"]
        if container["name"] == "wordpress"  # not the wp-cron sidecar, whose cli image stays
    }


def _room_for_the_fleet(tenant) -> None:
    tenant.plan.max_stores = STORES
    tenant.plan.save()


def test_a_rollout_moves_every_store_to_the_target_batch_by_batch(cluster, tenant, start_worker):
    a = _version("a", "6.8.2-php8.3-apache", EngineVersionState.DEFAULT)
    b = _version("b", "6.8.3-php8.3-apache", EngineVersionState.AVAILABLE)
    start_worker(cluster, HELM_BINARIES["helm4"], concurrency=2)
    _room_for_the_fleet(tenant)
    stores = [
        store_create(tenant=tenant, name=unique_name("roll"), engine="woocommerce")[0] for _ in range(STORES)
    ]
    wait_for(
        lambda: all(status_of(store) == StoreStatus.READY for store in stores),
        timeout=600,
        what=f"{STORES} stores ready",
    )
    assert {Store.objects.get(pk=s.pk).engine_version for s in stores} == {a}
    assert all(_wordpress_images(cluster, s.namespace) == {"wordpress:6.8.2-php8.3-apache"} for s in stores)

    rollout = rollout_start(rollout=rollout_create(target=b, batch_size=BATCH, pause_seconds=0))
    batches_seen: list[int] = []

    def step() -> bool:
        result = rollout_advance(rollout_id=rollout.pk)
        if result.started:
            # A batch starts only when the one before it has finished.
            batches_seen.append(result.batch)
            in_flight = Rollout.objects.get(pk=rollout.pk).items.filter(status=RolloutItemStatus.UPGRADING)
            assert set(in_flight.values_list("batch", flat=True)) == {result.batch}
        return result.status == RolloutStatus.SUCCEEDED

    wait_for(step, timeout=600, what="the rollout to finish")
    assert batches_seen == list(range(1, STORES // BATCH + 1))
    for store in stores:
        assert Store.objects.get(pk=store.pk).engine_version == b
        assert release_states(cluster, store.namespace) == ["deployed", "superseded"]
        assert _wordpress_images(cluster, store.namespace) == {"wordpress:6.8.3-php8.3-apache"}


def test_a_broken_version_stops_after_the_canary_and_is_rolled_back(cluster, tenant, start_worker):
    a = _version("a", "6.8.2-php8.3-apache", EngineVersionState.DEFAULT)
    c = _version("c", "6.8.9-php8.3-apache", EngineVersionState.AVAILABLE)
    # A short budget: a never-ready upgrade fails in seconds, not helm's full timeout.
    short_budget = start_worker(cluster, HELM_BINARIES["helm4"], concurrency=2, PROVISIONING_TIMEOUT="20")
    _room_for_the_fleet(tenant)
    stores = [
        store_create(tenant=tenant, name=unique_name("brk"), engine="woocommerce")[0] for _ in range(STORES)
    ]
    wait_for(
        lambda: all(status_of(store) == StoreStatus.READY for store in stores),
        timeout=600,
        what=f"{STORES} stores ready",
    )
    # Version C is broken: every WordPress pod of its image stays unready (a kwok never-ready stage).
    for store in stores:
        cluster.make_never_ready(store.namespace, image="wordpress:6.8.9-php8.3-apache")
    rollout = rollout_start(rollout=rollout_create(target=c, batch_size=BATCH, pause_seconds=0))
    assert rollout_advance(rollout_id=rollout.pk).started == BATCH
    canary, rest = stores[:BATCH], stores[BATCH:]
    wait_for(
        lambda: all(status_of(s) == StoreStatus.FAILED for s in canary),
        timeout=180,
        what="the canary to fail",
    )
    # The rollback gets a production-sized budget; the 20 s one was only to make C fail fast.
    short_budget.stop()
    start_worker(cluster, HELM_BINARIES["helm4"], concurrency=2, PROVISIONING_TIMEOUT="120")

    assert rollout_advance(rollout_id=rollout.pk).status == RolloutStatus.STOPPED
    stopped = Rollout.objects.get(pk=rollout.pk)
    assert all(s.name in stopped.status_reason for s in canary)

    # No reconciler runs here: a rollback needs nothing but its own run (one that finds its release
    # left pending settles it first; test_faults shows that case).
    def rolled_back() -> bool:
        rollout_advance(rollout_id=rollout.pk)
        items = Rollout.objects.get(pk=rollout.pk).items.filter(store__in=canary)
        return set(items.values_list("status", flat=True)) == {RolloutItemStatus.ROLLED_BACK}

    wait_for(rolled_back, timeout=240, what="the canary rolled back to A")
    for store in canary:
        assert Store.objects.get(pk=store.pk).engine_version == a and status_of(store) == StoreStatus.READY
        assert _wordpress_images(cluster, store.namespace) == {"wordpress:6.8.2-php8.3-apache"}
        assert "deployed" in release_states(cluster, store.namespace)
    for store in rest:  # never touched
        assert Store.objects.get(pk=store.pk).engine_version == a
        assert release_states(cluster, store.namespace) == ["deployed"]
    assert set(
        Rollout.objects.get(pk=rollout.pk).items.filter(store__in=rest).values_list("status", flat=True)
    ) == {RolloutItemStatus.PENDING}
