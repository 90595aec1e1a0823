"""Suite 3, races: create against delete, delete against an in-flight provision through a real worker,
and a merchant's retry against the reaper. Each race is released with a barrier and repeated.

(20 concurrent creates of one name are in stores/tests/api/test_concurrency.py.)
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections.abc import Callable

import pytest
from django.db import connections

from platform_site.tests.reliability.support import HelmWatcher
from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.exceptions import InvalidStoreState
from stores.lifecycle import (
    store_create,
    store_request_teardown,
    store_retry,
    store_run_claim,
    store_run_execute,
)
from stores.models import Plan, Store
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.factories import StoreFactory
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

LIVE = {StoreStatus.REQUESTED, StoreStatus.PROVISIONING, StoreStatus.READY}
OPEN_RUN = [RunStatus.QUEUED, RunStatus.RUNNING]


def _race(*actions: Callable[[], object]) -> list[object]:
    """Run `actions` in threads released together; returns each one's result or exception."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            results[index] = actions[index]()
        except Exception as exc:  # the race's loser may be refused; the caller judges
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(actions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _assert_consistent(store: Store) -> None:
    """A live store always has an open provision run; never two open runs of one kind."""
    store.refresh_from_db()
    for kind in RunKind:
        open_runs = ProvisioningRun.objects.filter(store=store, kind=kind, status__in=OPEN_RUN).count()
        assert open_runs <= 1, f"{store.name}: {open_runs} open {kind} runs"
    if store.status in {StoreStatus.REQUESTED, StoreStatus.PROVISIONING}:
        assert ProvisioningRun.objects.filter(
            store=store, kind=RunKind.PROVISION, status__in=OPEN_RUN
        ).exists()
    if store.status == StoreStatus.DELETING:
        assert ProvisioningRun.objects.filter(
            store=store, kind=RunKind.TEARDOWN, status__in=OPEN_RUN
        ).exists()


def _drain(access) -> None:
    """Execute queued runs in this process, as a worker would, until none is left."""
    for _ in range(20):
        queued = list(ProvisioningRun.objects.filter(status=RunStatus.QUEUED).values_list("pk", flat=True))
        if not queued:
            return
        for run_id in queued:
            store_run_execute(run_id=run_id, access=access)
    pytest.fail("runs kept being queued")


ROUNDS = 5


@pytest.fixture(autouse=True)
def roomy_plan(tenant):
    """Deleting stores still count against the plan; every round needs room for a new one."""
    Plan.objects.filter(pk=tenant.plan_id).update(max_stores=100)


def test_create_racing_delete_never_leaves_a_live_store_without_a_run(tenant, owner, kube_api, tmp_path):
    def delete_as_soon_as_it_exists(name: str) -> Callable[[], object]:
        def delete() -> object:
            store = wait_for(
                lambda: Store.objects.filter(name=name).first(), timeout=20, interval=0.001, what=name
            )
            return store_request_teardown(store=store, actor=owner)

        return delete

    names = [f"race-{i}" for i in range(ROUNDS)]
    for name in names:
        results = _race(
            lambda n=name: store_create(tenant=tenant, name=n, engine="woocommerce", actor=owner),
            delete_as_soon_as_it_exists(name),
            # A second create of the same name while the delete is in flight: the same store or a refusal.
            lambda n=name: store_create(tenant=tenant, name=n, engine="woocommerce", actor=owner),
        )
        assert not [r for r in results if isinstance(r, Exception) and not isinstance(r, InvalidStoreState)]
        stores = list(Store.objects.filter(name=name))
        assert len(stores) == 1, f"{name}: {len(stores)} stores"
        assert stores[0].status == StoreStatus.DELETING
        _assert_consistent(stores[0])

    _drain(access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm"))
    for store in Store.objects.filter(name__in=names):
        assert store.status == StoreStatus.DELETED, store.status_reason
        assert kube_api.get("namespaces", store.namespace) is None
        assert not ProvisioningRun.objects.filter(store=store, status__in=OPEN_RUN).exists()


def test_delete_during_an_inflight_provision_waits_and_never_runs_helm_twice_at_once(
    tenant, owner, kube_api, start_worker
):
    store, _ = store_create(tenant=tenant, name="delete-midway", engine="woocommerce", actor=owner)
    kube_api.set_never_ready(store.namespace)  # helm --wait keeps running until this is lifted
    with HelmWatcher(store.namespace) as watcher:
        worker = start_worker(kube_api, HELM_BINARIES["helm4"], concurrency=2)
        wait_for(lambda: watcher.most_at_once >= 1, timeout=60, what="helm install running")
        provision = ProvisioningRun.objects.get(store=store, kind=RunKind.PROVISION)
        assert provision.status == RunStatus.RUNNING

        store_request_teardown(store=store, actor=owner)
        teardown = ProvisioningRun.objects.get(store=store, kind=RunKind.TEARDOWN)
        # The teardown task is delivered and told "busy" while the install runs; it asks again later.
        wait_for(lambda: "retry: Retry in" in worker.log, timeout=30, what="the teardown to be told busy")
        teardown.refresh_from_db()
        assert teardown.status == RunStatus.QUEUED and teardown.started_at is None

        kube_api.set_never_ready(store.namespace, enabled=False)
        wait_for(
            lambda: Store.objects.get(pk=store.pk).status == StoreStatus.DELETED, timeout=120, what="deleted"
        )

    assert watcher.most_at_once == 1, watcher.seen
    assert watcher.samples > 10 and any("upgrade --install" in line for line in watcher.seen)
    assert any("uninstall" in record.argv for record in teardown.commands.filter(tool="helm"))
    provision.refresh_from_db()
    teardown.refresh_from_db()
    assert provision.status == RunStatus.SUCCEEDED and teardown.status == RunStatus.SUCCEEDED
    # The teardown started only after the provision had finished.
    assert teardown.started_at >= provision.finished_at
    assert kube_api.get("namespaces", store.namespace) is None


def _dead_worker_identity() -> str:
    finished = subprocess.run(["true"], check=True)
    assert finished.returncode == 0
    process = subprocess.Popen(["true"])
    process.wait()
    return f"{socket.gethostname()}:{process.pid}"


def _failed_store(tenant, name: str) -> Store:
    return StoreFactory(tenant=tenant, name=name, failed=True, reason="helm timed out")


def _interrupted_store(tenant, name: str) -> Store:
    """A store whose provision run was claimed by a worker process that has since died."""
    store, _ = store_create(tenant=tenant, name=name, engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    assert store_run_claim(run_id=run.pk, worker=_dead_worker_identity()).run is not None
    return store


def _retry_until_settled(store: Store, owner) -> Callable[[], object]:
    """The merchant presses Retry; while the reaper holds the store it is refused, and they stop
    once it is no longer failed or provisioning."""

    def retry() -> object:
        for _ in range(200):
            try:
                return store_retry(store=store, actor=owner)
            except InvalidStoreState:
                status = Store.objects.get(pk=store.pk).status
                if status not in {StoreStatus.FAILED, StoreStatus.PROVISIONING}:
                    return status
        return None

    return retry


@pytest.mark.parametrize("make_store", [_failed_store, _interrupted_store], ids=["failed", "interrupted"])
def test_retry_racing_the_reaper_makes_exactly_one_new_run(make_store, tenant, owner, kube_api, tmp_path):
    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    stores = []
    for i in range(ROUNDS):
        store = make_store(tenant, f"retry-race-{i}")
        stores.append(store)
        _race(_retry_until_settled(store, owner), lambda: reconcile(access=access))

        store.refresh_from_db()
        assert store.status == StoreStatus.REQUESTED, store.status_reason
        runs = ProvisioningRun.objects.filter(store=store, kind=RunKind.PROVISION)
        assert runs.count() == 2, list(runs.values_list("attempt", "status"))
        assert runs.filter(status=RunStatus.QUEUED).count() == 1
        assert not runs.filter(status=RunStatus.RUNNING).exists()
        _assert_consistent(store)

    # Not stuck: the one queued run of a raced store takes it to ready.
    for other in stores[1:]:
        store_request_teardown(store=other)
    _drain(access)
    assert Store.objects.get(pk=stores[0].pk).status == StoreStatus.READY
