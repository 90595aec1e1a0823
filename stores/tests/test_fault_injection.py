"""Worker death at every point of a provision and a teardown: SIGKILL the whole worker, run the
reaper/reconciler, start a new worker, and require a settled store with nothing left behind.

The kill points are made deterministic with a helm wrapper script that pauses before or after the
real helm binary; the platform code under test is unchanged.
"""

import stat
import subprocess
import textwrap

import pytest

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.lifecycle import store_create, store_request_teardown
from stores.models import Store
from stores.reconcile import fleet_reconcile as reconcile
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SETTLED = {StoreStatus.READY, StoreStatus.FAILED, StoreStatus.DELETED}


def _helm_wrapper(tmp_path, *, pause_before: str = "", pause_after: str = ""):
    """A helm that signals (by creating a file) and sleeps before or after the real helm for the
    subcommand named, so the test can kill the worker exactly there."""
    marker = tmp_path / "paused"
    script = tmp_path / "helm-wrapper"
    real = HELM_BINARIES["helm4"]
    script.write_text(
        textwrap.dedent(
            f"""\
            #!/bin/bash
            if [ "$1" = "{pause_before}" ] && [ ! -e {tmp_path}/released ]; then touch {marker}; sleep 60; fi
            "{real}" "$@"
            code=$?
            if [ "$1" = "{pause_after}" ] && [ ! -e {tmp_path}/released ]; then touch {marker}; sleep 60; fi
            exit $code
            """
        )
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script, marker


def _status(store):
    return Store.objects.filter(pk=store.pk).values_list("status", flat=True).first()


def _release_states(kube_api, namespace):
    return sorted(
        s["metadata"]["labels"]["status"]
        for s in kube_api.objects("secrets", namespace, label_selector="owner=helm")
    )


def _kill_and_recover(worker, kube_api, tmp_path, start_worker, store, expected):
    worker.kill()
    # helm runs in its own session; a dead node would take it along, so the test does the same.
    subprocess.run(["pkill", "-KILL", "-f", str(tmp_path / "helm-wrapper")], check=False)
    (tmp_path / "released").touch()  # later helm calls run straight through
    report = reconcile(access=access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm-home"))
    assert report.reaped, "the dead worker's run was not reaped"
    start_worker(kube_api, HELM_BINARIES["helm4"])
    wait_for(lambda: _status(store) in SETTLED, timeout=90, what="store to settle")
    assert _status(store) == expected, Store.objects.get(pk=store.pk).status_reason
    assert not ProvisioningRun.objects.filter(store=store, status=RunStatus.RUNNING).exists()
    assert not any(state.startswith("pending") for state in _release_states(kube_api, store.namespace))
    namespaces = [ns for ns in kube_api.objects("namespaces") if ns["metadata"]["name"] == store.namespace]
    assert len(namespaces) == (0 if expected == StoreStatus.DELETED else 1)
    reaped = ProvisioningRun.objects.filter(store=store, status=RunStatus.FAILED).first()
    assert reaped is not None and "interrupted" in reaped.error


@pytest.mark.parametrize(
    ("point", "wrapper"),
    [
        ("before helm", {"pause_before": "upgrade"}),
        ("after helm, before the final transition", {"pause_after": "upgrade"}),
    ],
)
def test_provision_killed_then_recovered(point, wrapper, kube_api, tenant, start_worker, tmp_path):
    helm, marker = _helm_wrapper(tmp_path, **wrapper)
    store, _ = store_create(tenant=tenant, name="killed-provision", engine="woocommerce")
    worker = start_worker(kube_api, helm)
    wait_for(marker.exists, timeout=60, what=f"the worker to reach {point}")
    assert _status(store) == StoreStatus.PROVISIONING

    _kill_and_recover(worker, kube_api, tmp_path, start_worker, store, StoreStatus.READY)


def test_teardown_killed_then_recovered(kube_api, tenant, start_worker, tmp_path):
    helm, marker = _helm_wrapper(tmp_path, pause_before="uninstall")
    store, _ = store_create(tenant=tenant, name="killed-teardown", engine="woocommerce")
    worker = start_worker(kube_api, helm)
    wait_for(lambda: _status(store) == StoreStatus.READY, timeout=60, what="store ready")
    store_request_teardown(store=store)
    wait_for(marker.exists, timeout=60, what="the worker to start the teardown")
    assert _status(store) == StoreStatus.DELETING

    _kill_and_recover(worker, kube_api, tmp_path, start_worker, store, StoreStatus.DELETED)
