"""Faults on the real control plane: a worker killed mid-helm, and the apiserver stopped mid-provision."""

import os
import signal
import stat
import textwrap

import pytest

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus
from stores.lifecycle import store_create
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.real_cluster.support import release_states, status_of, unique_name
from testkit.helm import HELM_BINARIES, access_for, helm_pids
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def test_a_worker_killed_mid_helm_is_recovered_with_no_pending_release(
    cluster, tenant, start_worker, tmp_path
):
    helm = HELM_BINARIES["helm4"]
    name = unique_name("killed")
    cluster.make_never_ready(f"store-{name}")  # helm waits, so the kill lands mid-install
    store, _ = store_create(tenant=tenant, name=name, engine="woocommerce")
    worker = start_worker(cluster, helm)
    wait_for(
        lambda: release_states(cluster, store.namespace) == ["pending-install"],
        timeout=60,
        what="pending-install",
    )

    worker.kill()
    for pid in helm_pids(store.namespace):  # a dead node takes its helm with it
        os.kill(pid, signal.SIGKILL)
    run = ProvisioningRun.objects.get(store=store)
    assert run.status == RunStatus.RUNNING

    cluster.clear_never_ready(store.namespace)
    report = reconcile(access=access_for(cluster, helm, tmp_path / "helm"))
    assert report.reaped == [run.pk]
    assert report.recovered_releases == [f"{store.namespace}/{store.release_name}"]
    assert release_states(cluster, store.namespace) == []

    start_worker(cluster, helm)
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready after the retry")
    assert release_states(cluster, store.namespace) == ["deployed"]


def _pausing_helm(tmp_path):
    """A helm that, on its first `upgrade`, announces itself (a marker file) and waits 5 s before
    running the real helm: the window in which the test stops the apiserver."""
    marker = tmp_path / "helm-paused"
    script = tmp_path / "helm-pausing"
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/bash
            if [ "$1" = "upgrade" ] && [ ! -e {marker} ]; then touch {marker}; sleep 5; fi
            exec "{HELM_BINARIES["helm4"]}" "$@"
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def test_the_apiserver_stopped_mid_provision_ends_ready_after_it_returns(
    fresh_cluster, tenant, start_worker, tmp_path
):
    helm, paused = _pausing_helm(tmp_path)
    start_worker(fresh_cluster, helm)
    store, _ = store_create(tenant=tenant, name=unique_name("outage"), engine="woocommerce")
    wait_for(paused.exists, timeout=60, what="helm about to install")

    fresh_cluster.stop_component("kube-apiserver")

    def failed_attempt():
        return store.events.filter(kind=StoreEventKind.TRANSITION, new_status=StoreStatus.FAILED).first()

    failure = wait_for(failed_attempt, timeout=90, what="the attempt during the outage to fail")
    # A reason a person can act on, and the platform retries on its own.
    assert "unreachable" in failure.reason.lower() and "Retrying automatically" in failure.reason
    fresh_cluster.start_component("kube-apiserver")

    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready after the outage")
    assert release_states(fresh_cluster, store.namespace) == ["deployed"]
    assert not ProvisioningRun.objects.filter(store=store, status=RunStatus.RUNNING).exists()
