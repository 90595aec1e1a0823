"""Faults on the real control plane: a worker killed mid-helm, the apiserver stopped mid-provision, and
an upgrade its budget stopped in the middle of helm's own rollback."""

import contextlib
import os
import signal
import stat
import textwrap
import urllib.error

import pytest
from django.db import transaction

from provisioning.choices import RunKind, RunStatus
from provisioning.models import CommandRecord, ProvisioningRun
from provisioning.services import provisioning_run_create
from stores.choices import EngineVersionState, StoreEventKind, StoreStatus
from stores.lifecycle import store_create, store_retry
from stores.models import EngineVersion, Store
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.real_cluster.support import release_states, status_of, unique_name
from stores.transitions import store_transition
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


def _delete_pods(cluster, namespace):
    """Replace the namespace's pods (their controllers start new ones), as a kubelet's restarts would
    once a fault has passed: a kwok pod stays crash-looping forever otherwise."""
    for pod in cluster.objects("pods", namespace):
        with contextlib.suppress(urllib.error.HTTPError):
            cluster.request("DELETE", f"/api/v1/namespaces/{namespace}/pods/{pod['metadata']['name']}")


def test_an_upgrade_its_budget_stopped_mid_rollback_is_settled_by_the_next_run(cluster, tenant, start_worker):
    """The budget stops helm in the middle of its own --rollback-on-failure: 2 failed, 3 pending-rollback.
    No reconciler runs: the retry's run settles the release onto 1 (the last good revision, not the
    broken 2) and then installs."""
    start_worker(cluster, HELM_BINARIES["helm4"], PROVISIONING_TIMEOUT="20")
    store, _ = store_create(tenant=tenant, name=unique_name("budget"), engine="woocommerce")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready")
    target = EngineVersion.objects.create(
        engine="woocommerce",
        name="next",
        chart_version="0.1.0",
        values={"images": {"wordpress": {"tag": "6.8.3-php8.3-apache"}}},
        state=EngineVersionState.AVAILABLE,
    )
    # Every pod started from now on stays unready, the rollback's too.
    cluster.make_never_ready(store.namespace)
    with transaction.atomic():
        assert store_transition(store_id=store.pk, to=StoreStatus.REQUESTED, reason="Upgrading.")
        Store.objects.filter(pk=store.pk).update(engine_version=target)
        provisioning_run_create(store_id=store.pk, kind=RunKind.PROVISION, cluster_id=store.cluster_id)
    wait_for(
        lambda: status_of(store) == StoreStatus.FAILED, timeout=180, what="the upgrade to run out of budget"
    )
    assert release_states(cluster, store.namespace) == ["deployed", "failed", "pending-rollback"]

    cluster.clear_never_ready(store.namespace)
    _delete_pods(cluster, store.namespace)
    store_retry(store=Store.objects.get(pk=store.pk))

    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=180, what="store ready after the retry")
    settled = store.events.get(kind=StoreEventKind.STEP, step="helm-settle")
    assert "revision 3 was left pending-rollback" in settled.reason
    history = {
        int(secret["metadata"]["labels"]["version"]): secret["metadata"]["labels"]["status"]
        for secret in cluster.objects("secrets", store.namespace, label_selector="owner=helm")
    }
    assert history[max(history)] == "deployed"
    retry = ProvisioningRun.objects.filter(store=store).order_by("-pk").first()
    helm_calls = [c.argv for c in CommandRecord.objects.filter(run=retry, tool="helm").order_by("pk")]
    assert [argv[1] for argv in helm_calls] == ["upgrade", "rollback", "upgrade"]
    assert helm_calls[1][3] == "1"  # `helm rollback <release> 1`
