"""End to end through a real Celery worker process: service → on_commit → broker → worker → helm → double."""

import os
import signal
import subprocess
import time

import pytest

from provisioning.choices import RunKind, RunStatus
from provisioning.cluster_access import ClusterAccess
from provisioning.helm import SIGTERM_GRACE_SECONDS
from provisioning.models import CommandRecord, ProvisioningRun
from provisioning.services import provisioning_run_dispatch
from stores.choices import StoreStatus
from stores.lifecycle import store_create, store_request_teardown
from stores.models import Store
from stores.reconcile import fleet_reconcile as reconcile
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
    store, _ = store_create(tenant=tenant, name="twice-sent", engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    provisioning_run_dispatch(run_id=run.pk)  # a duplicate delivery of the same run
    start_worker(kube_api, HELM_BINARIES["helm4"], concurrency=2)

    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    time.sleep(2)  # give the duplicate time to be consumed
    installs = CommandRecord.objects.filter(run__store=store, tool="helm")
    assert installs.count() == 1
    run.refresh_from_db()
    assert run.dispatch_count == 2 and run.status == RunStatus.SUCCEEDED


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
