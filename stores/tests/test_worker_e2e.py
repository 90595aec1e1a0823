"""End to end through a real Celery worker process: service → on_commit → broker → worker → helm → double."""

import itertools
import os
import signal
import subprocess
import time

import pytest

from provisioning.choices import RunKind, RunStatus
from provisioning.cluster_access import ClusterAccess
from provisioning.helm import SIGTERM_GRACE_SECONDS
from provisioning.models import CommandRecord, ProvisioningRun
from provisioning.services import EXECUTE_RUN_TASK, provisioning_run_dispatch
from stores.choices import StoreStatus
from stores.lifecycle import store_create, store_request_teardown
from stores.models import Store
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.factories import TenantFactory
from testkit.helm import HELM_BINARIES, access_for, helm_params, helm_pids
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _status(store):
    return Store.objects.filter(pk=store.pk).values_list("status", flat=True).first()


def _pending_releases(kube_api, namespace):
    return [
        s["metadata"]["labels"]["status"]
        for s in kube_api.objects("secrets", namespace, label_selector="owner=helm")
        if s["metadata"]["labels"]["status"].startswith("pending")
    ]


@pytest.mark.parametrize("helm_binary", helm_params())
def test_store_goes_ready_and_is_deleted_through_a_real_worker(helm_binary, kube_api, tenant, start_worker):
    start_worker(kube_api, helm_binary)
    store, _ = store_create(tenant=tenant, name="via-worker", engine="woocommerce")

    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    run = ProvisioningRun.objects.get(store=store)
    assert run.status == RunStatus.SUCCEEDED and run.worker and run.started_at and run.finished_at
    assert kube_api.get("namespaces", store.namespace) is not None

    store_request_teardown(store=store)
    wait_for(lambda: _status(store) == StoreStatus.DELETED, timeout=60, what="store deleted")
    assert kube_api.get("namespaces", store.namespace) is None


def test_the_same_task_delivered_twice_installs_once(kube_api, tenant, start_worker):
    from platform_site.celery import app

    store, _ = store_create(tenant=tenant, name="twice-sent", engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    # The very same message a second time, as a broker redelivers it: same task id, same dispatch.
    app.send_task(
        EXECUTE_RUN_TASK, args=[run.pk], kwargs={"dispatch": run.dispatch_count}, task_id=run.celery_task_id
    )
    start_worker(kube_api, HELM_BINARIES["helm4"], concurrency=2)

    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    time.sleep(2)  # give the duplicate time to be consumed
    installs = CommandRecord.objects.filter(run__store=store, tool="helm")
    assert installs.count() == 1
    run.refresh_from_db()
    assert run.dispatch_count == 1 and run.status == RunStatus.SUCCEEDED


def test_the_run_sent_again_runs_once_and_its_earlier_message_drops(kube_api, tenant, start_worker):
    store, _ = store_create(tenant=tenant, name="sent-again", engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    assert provisioning_run_dispatch(run_id=run.pk)  # as the reconciler or a hand-off sends it again
    worker = start_worker(kube_api, HELM_BINARIES["helm4"], concurrency=2)

    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    wait_for(lambda: worker.log.count("succeeded in") >= 2, timeout=30, what="both messages consumed")
    assert CommandRecord.objects.filter(run__store=store, tool="helm").count() == 1
    assert "'skipped'" in worker.log  # the earlier message found itself superseded
    run.refresh_from_db()
    assert run.dispatch_count == 2 and run.status == RunStatus.SUCCEEDED


def test_runs_waiting_for_the_one_helm_slot_are_handed_it_in_turn(kube_api, start_worker):
    # One helm at a time, and a safety poll far longer than the test: only hand-offs start the rest.
    stores = [
        store_create(tenant=TenantFactory(), name=f"in-turn-{index}", engine="woocommerce")[0]
        for index in range(3)
    ]
    start_worker(
        kube_api,
        HELM_BINARIES["helm4"],
        concurrency=3,
        PROVISIONING_CONCURRENCY="1",
        PROVISIONING_WAITING_POLL_SECONDS="900",
    )

    wait_for(
        lambda: all(_status(store) == StoreStatus.READY for store in stores), timeout=120, what="all ready"
    )
    runs = sorted(ProvisioningRun.objects.filter(store__in=stores), key=lambda run: run.started_at)
    assert [CommandRecord.objects.filter(run=run, tool="helm").count() for run in runs] == [1, 1, 1]
    assert sum(run.told_busy_at is not None for run in runs) >= 2  # they did wait
    # Never two at once: each started after the one before it had finished.
    assert all(later.started_at >= earlier.finished_at for earlier, later in itertools.pairwise(runs))


def test_sigkill_mid_helm_is_recovered_by_the_reaper(kube_api, tenant, start_worker, tmp_path):
    helm = HELM_BINARIES["helm4"]
    store, _ = store_create(tenant=tenant, name="killed-mid-helm", engine="woocommerce")
    kube_api.set_never_ready(store.namespace)
    worker = start_worker(kube_api, helm)
    wait_for(lambda: _pending_releases(kube_api, store.namespace), timeout=60, what="release pending-install")

    worker.kill()
    for pid in helm_pids(store.namespace):  # a dead node takes its helm with it
        os.kill(pid, signal.SIGKILL)
    run = ProvisioningRun.objects.get(store=store)
    assert run.status == RunStatus.RUNNING
    assert _pending_releases(kube_api, store.namespace) == ["pending-install"]

    kube_api.set_never_ready(store.namespace, enabled=False)
    report = reconcile(access=access_for(kube_api, helm, tmp_path / "helm"))

    assert report.reaped == [run.pk]
    assert report.recovered_releases == [f"{store.namespace}/{store.release_name}"]
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "interrupted" in run.error
    assert _pending_releases(kube_api, store.namespace) == []
    start_worker(kube_api, helm)
    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready after retry")
    assert ProvisioningRun.objects.filter(store=store, kind=RunKind.PROVISION).count() == 2


def _alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _parent_of(pid):
    return int(subprocess.run(["ps", "-o", "ppid=", "-p", str(pid)], capture_output=True, text=True).stdout)


def test_sigterm_to_the_task_process_reaches_helm_first(kube_api, tenant, start_worker):
    store, _ = store_create(tenant=tenant, name="terminated", engine="woocommerce")
    kube_api.set_never_ready(store.namespace)
    # A long budget (helm's own timeout 360 s, the task's soft limit 300 s): neither can be what stops
    # helm within the grace period below.
    start_worker(kube_api, HELM_BINARIES["helm4"], PROVISIONING_TIMEOUT="300")
    running = wait_for(lambda: helm_pids(store.namespace), timeout=60, what="helm running")
    task_process = _parent_of(running[0])

    os.kill(task_process, signal.SIGTERM)

    # helm lives in its own session: only the HelmClient's forwarding can stop it before its own
    # 90 s timeout. Forwarded, it rolls back or is killed at the end of its grace period. The pid is
    # watched, not "any helm in the namespace": the automatic retry may start a new helm meanwhile.
    wait_for(
        lambda: not _alive(running[0]),
        timeout=SIGTERM_GRACE_SECONDS + 15,
        what="helm to exit after SIGTERM",
    )


def test_reconciler_redispatches_a_run_the_broker_never_got(kube_api, tenant, start_worker, tmp_path):
    store, _ = store_create(tenant=tenant, name="never-sent", engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    ProvisioningRun.objects.filter(pk=run.pk).update(dispatch_count=0)
    from testkit.plugins.worker import purge_broker

    purge_broker()  # the message is lost, as if the broker had been down at commit time
    ProvisioningRun.objects.filter(pk=run.pk).update(created_at=run.created_at.replace(year=2000))
    start_worker(kube_api, HELM_BINARIES["helm4"])
    report = reconcile(access=access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm"))
    assert report.redispatched == [run.pk]
    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")


def test_ready_store_whose_namespace_vanished_is_reprovisioned(kube_api, tenant, start_worker, tmp_path):
    helm = HELM_BINARIES["helm4"]
    start_worker(kube_api, helm)
    store, _ = store_create(tenant=tenant, name="vanishing", engine="woocommerce")
    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    Store.objects.filter(pk=store.pk).update(status_changed_at=store.created_at.replace(year=2000))
    kube_api.delete("namespaces", store.namespace)
    wait_for(lambda: kube_api.get("namespaces", store.namespace) is None, timeout=20, what="namespace gone")

    report = reconcile(access=access_for(kube_api, helm, tmp_path / "helm"))

    assert report.reprovisioned == [store.name]
    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready again")
    assert kube_api.get("namespaces", store.namespace) is not None
    assert ClusterAccess  # the reconciler took the same access type as the engine
