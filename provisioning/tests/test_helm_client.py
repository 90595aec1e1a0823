import os
import signal
import stat
import textwrap
from pathlib import Path

import pytest
from django.conf import settings

from provisioning.helm import (
    ClusterUnreachable,
    HelmClient,
    HelmCommandFailed,
    HelmTimeout,
    InvalidChart,
    OperationInProgress,
    ReleaseNotFound,
    classify_helm_error,
)

HELM3 = Path(settings.TOOLS_BIN_DIR) / "helm3"
HELM4 = Path(settings.TOOLS_BIN_DIR) / "helm4"
needs_helm = pytest.mark.skipif(
    not (HELM3.exists() and HELM4.exists()), reason="run deploy/tools/install-helm.sh"
)


@needs_helm
def test_helm3_upgrade_install_argv_is_exact(tmp_path):
    helm = HelmClient(binary=str(HELM3), work_dir=tmp_path)
    assert helm.version().major == 3
    assert helm.upgrade_install_argv(
        release="coffee", chart="/charts/woocommerce", namespace="store-coffee", values_file="/tmp/v.json", timeout_seconds=660
    ) == [
        "upgrade", "--install", "coffee", "/charts/woocommerce",
        "--namespace", "store-coffee",
        "--values", "/tmp/v.json",
        "--atomic", "--wait",
        "--timeout", "660s",
        "--history-max", "5",
        "--output", "json",
    ]  # fmt: skip


@needs_helm
def test_helm4_upgrade_install_argv_is_exact(tmp_path):
    helm = HelmClient(binary=str(HELM4), work_dir=tmp_path)
    assert helm.version().major == 4
    assert helm.upgrade_install_argv(
        release="coffee", chart="/charts/woocommerce", namespace="store-coffee", values_file="/tmp/v.json", timeout_seconds=660
    ) == [
        "upgrade", "--install", "coffee", "/charts/woocommerce",
        "--namespace", "store-coffee",
        "--values", "/tmp/v.json",
        "--rollback-on-failure", "--wait=watcher",
        "--timeout", "660s",
        "--history-max", "5",
        "--output", "json",
    ]  # fmt: skip


@needs_helm
@pytest.mark.parametrize(("binary", "wait"), [(HELM3, "--wait"), (HELM4, "--wait=watcher")])
def test_rollback_and_uninstall_argv(tmp_path, binary, wait):
    helm = HelmClient(binary=str(binary), work_dir=tmp_path)
    assert helm.rollback_argv(release="r", namespace="store-r", revision=2, timeout_seconds=30) == [
        "rollback", "r", "2", "--namespace", "store-r", wait, "--timeout", "30s",
    ]  # fmt: skip
    assert helm.list_argv() == [
        "list", "--all-namespaces", "--deployed", "--failed", "--pending", "--uninstalling",
        "--max", "0", "--output", "json",
    ]  # fmt: skip
    assert helm.uninstall_argv(release="r", namespace="store-r", timeout_seconds=30) == [
        "uninstall", "r", "--namespace", "store-r", "--timeout", "30s",
    ]  # fmt: skip
    assert helm.history_argv(release="r", namespace="store-r") == [
        "history", "r", "--namespace", "store-r", "--max", "256", "--output", "json",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("stderr", "error_type"),
    [
        ("Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress", OperationInProgress),
        ("Error: Kubernetes cluster unreachable: Get \"http://127.0.0.1:1/version\": dial tcp: connection refused", ClusterUnreachable),
        ("Error: release coffee failed, and has been uninstalled due to atomic being set: context deadline exceeded", HelmTimeout),
        ("Error: UPGRADE FAILED: release coffee failed, and has been rolled back due to rollback-on-failure being set: resource not ready, name: wordpress, kind: Deployment, status: InProgress", HelmTimeout),
        ("Error: values don't meet the specifications of the schema(s) in the following chart(s):\nwoocommerce:\n- quota.cpu: Invalid type", InvalidChart),
        ("Error: Chart.yaml file is missing", InvalidChart),
        ("Error: uninstall: Release not loaded: coffee: release: not found", ReleaseNotFound),
        ("Error: something nobody expected", HelmCommandFailed),
    ],
)  # fmt: skip
def test_stderr_maps_to_typed_errors(stderr, error_type):
    assert classify_helm_error(stderr) is error_type


def _fake_helm(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-helm"
    script.write_text("#!/bin/bash\n" + textwrap.dedent(body))
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return script


def test_environment_is_minimal_and_values_file_is_private_and_removed(tmp_path, monkeypatch):
    monkeypatch.setenv("SECRET_KEY", "must-not-leak-into-helm")
    record = tmp_path / "record"
    fake = _fake_helm(
        tmp_path,
        f"""
        if [ "$1" = version ]; then echo v3.18.0; exit 0; fi
        values="$(echo "$@" | sed -E 's/.*--values ([^ ]+).*/\\1/')"
        {{ env; echo "ARGS $*"; stat -c 'MODE %a' "$values"; echo "VALUES $(cat "$values")"; echo "PGID $(ps -o pgid= $$) PID $$"; }} > {record}
        echo '{{"name":"coffee","namespace":"store-coffee","version":1,"info":{{"status":"deployed"}},"chart":{{"metadata":{{"name":"woocommerce","version":"0.1.0"}}}}}}'
        """,
    )
    seen = []
    helm = HelmClient(
        binary=str(fake), work_dir=tmp_path / "helm", kubeconfig="/k/config", on_invocation=seen.append
    )
    release = helm.upgrade_install(
        release="coffee",
        chart="/c",
        namespace="store-coffee",
        values={"store": {"name": "coffee"}},
        timeout_seconds=5,
    )
    assert (release.name, release.revision, release.status, release.chart) == (
        "coffee",
        1,
        "deployed",
        "woocommerce-0.1.0",
    )
    text = record.read_text()
    assert "SECRET_KEY" not in text and "must-not-leak" not in text
    assert "KUBECONFIG=/k/config" in text
    assert "MODE 600" in text
    assert 'VALUES {"store": {"name": "coffee"}}' in text
    pgid, pid = text.split("PGID ")[1].split(" PID ")
    assert pgid.strip() == pid.strip(), "helm must lead its own process group"
    assert list((tmp_path / "helm" / "tmp").iterdir()) == []
    assert seen[-1].argv[:3] == ["helm", "upgrade", "--install"] and seen[-1].exit_code == 0


def test_failure_raises_typed_error_and_still_removes_values(tmp_path):
    fake = _fake_helm(
        tmp_path,
        """
        if [ "$1" = version ]; then echo v4.1.4; exit 0; fi
        echo "Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress" >&2
        exit 1
        """,
    )
    helm = HelmClient(binary=str(fake), work_dir=tmp_path / "helm")
    with pytest.raises(OperationInProgress) as raised:
        helm.upgrade_install(release="r", chart="/c", namespace="store-r", values={}, timeout_seconds=5)
    assert raised.value.invocation.exit_code == 1
    assert list((tmp_path / "helm" / "tmp").iterdir()) == []


def test_cancellation_sends_sigterm_to_helm_first(tmp_path):
    marker = tmp_path / "terminated"
    fake = _fake_helm(
        tmp_path,
        f"""
        if [ "$1" = version ]; then echo v3.18.0; exit 0; fi
        trap 'echo TERM > {marker}; exit 143' TERM
        while true; do sleep 0.1; done
        """,
    )
    helm = HelmClient(binary=str(fake), work_dir=tmp_path / "helm")
    helm.version()

    class Cancelled(Exception):
        pass

    def cancel(signum, frame):
        raise Cancelled

    previous = signal.signal(signal.SIGALRM, cancel)
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(Cancelled):
            helm.upgrade_install(release="r", chart="/c", namespace="store-r", values={}, timeout_seconds=60)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert marker.read_text().strip() == "TERM"


def test_process_timeout_stops_helm_and_reports_timeout(tmp_path, monkeypatch):
    monkeypatch.setattr("provisioning.helm.SIGTERM_GRACE_SECONDS", 1)
    fake = _fake_helm(
        tmp_path,
        """
        if [ "$1" = version ]; then echo v3.18.0; exit 0; fi
        sleep 30
        """,
    )
    helm = HelmClient(binary=str(fake), work_dir=tmp_path / "helm")
    with pytest.raises(HelmTimeout):
        helm._run_checked(["status", "x"], timeout=0.5)


def test_binary_resolution_prefers_setting_then_path(tmp_path, monkeypatch, settings):
    from provisioning.helm import resolve_helm_binary

    settings.HELM_BINARY = "/opt/helm"
    assert resolve_helm_binary() == "/opt/helm"
    settings.HELM_BINARY = ""
    fake = _fake_helm(tmp_path, "echo v3")
    os.rename(fake, tmp_path / "helm")
    monkeypatch.setenv("PATH", str(tmp_path))
    assert resolve_helm_binary() == str(tmp_path / "helm")


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated


@needs_helm
def test_sigterm_during_a_helm_run_reaches_helm_then_the_process_own_handler(tmp_path):
    marker = tmp_path / "terminated"
    fake = _fake_helm(
        tmp_path,
        f"""
        if [ "$1" = version ]; then echo v3.18.0; exit 0; fi
        trap 'echo TERM > {marker}; exit 143' TERM
        while true; do sleep 0.1; done
        """,
    )
    helm = HelmClient(binary=str(fake), work_dir=tmp_path / "helm")
    helm.version()
    previous = signal.signal(signal.SIGTERM, _raise_terminated)  # stands in for Celery's handler
    signal.signal(signal.SIGALRM, lambda signum, frame: os.kill(os.getpid(), signal.SIGTERM))
    signal.setitimer(signal.ITIMER_REAL, 0.5)
    try:
        with pytest.raises(_Terminated):
            helm.upgrade_install(release="r", chart="/c", namespace="store-r", values={}, timeout_seconds=60)
        assert signal.getsignal(signal.SIGTERM) is _raise_terminated  # restored after the run
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)
        signal.signal(signal.SIGTERM, previous)
    assert marker.read_text().strip() == "TERM"


def test_a_sigterm_before_helm_is_attached_is_held_and_stops_it_at_attach(tmp_path):
    import subprocess

    from provisioning.helm import _SigtermForwarding

    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        with pytest.raises(_Terminated), _SigtermForwarding() as forwarding:
            os.kill(os.getpid(), signal.SIGTERM)  # lands between the fork and the attach
            process = subprocess.Popen(["sleep", "30"], start_new_session=True, text=True)
            forwarding.attach(process)
            pytest.fail("the held SIGTERM was not passed on at attach")
        assert process.wait(timeout=5) == -signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, previous)
