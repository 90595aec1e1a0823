"""Real Helm 3 and Helm 4 binaries driving the double end to end."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from kubeapi_double import KubeApiDouble
from kubeapi_double.tests.conftest import Tool

# Real helm 3 and helm 4 processes against the double: seconds each, so not in `make test-fast`.
pytestmark = pytest.mark.slow


def _condition(obj: dict, kind: str) -> str | None:
    return next((c["status"] for c in obj.get("status", {}).get("conditions", []) if c["type"] == kind), None)


def _install_web(helm, chart, message):
    """Install or upgrade the `web` release in `shop`, waiting and rolling back like the platform does."""
    helm.run(
        "upgrade", "--install", "web", str(chart), "-n", "shop",
        *helm.wait, *helm.rollback_on_failure, "--timeout", "30s", "--set", f"message={message}",
    )  # fmt: skip


def test_install_upgrade_status_and_uninstall(kube_api: KubeApiDouble, helm: Tool, tiny_chart: Path) -> None:
    kube_api.create("namespaces", {"metadata": {"name": "shop"}})

    _install_web(helm, tiny_chart, "hello-install")
    # A second release creates its namespace (helm 3 POSTs it, helm 4 server-side applies it).
    helm.run("upgrade", "--install", "side", str(tiny_chart), "-n", "fresh", "--create-namespace")

    deployment = kube_api.get("deployments", "web-web", "shop")
    assert deployment["status"]["readyReplicas"] == 1
    assert _condition(kube_api.get("jobs", "web-hook", "shop"), "Complete") == "True"
    assert kube_api.get("persistentvolumeclaims", "web-data", "shop")["status"]["phase"] == "Bound"
    assert kube_api.get("services", "web-svc", "shop")["spec"]["clusterIP"]
    assert kube_api.get("namespaces", "fresh") is not None
    assert kube_api.helm_release_values("shop", "web") == {"message": "hello-install"}
    # Release storage arrived as protobuf Secrets and was decoded into ordinary objects.
    assert any(
        r.content_type == "application/vnd.kubernetes.protobuf" and r.path.endswith("/secrets")
        for r in kube_api.requests()
    )

    _install_web(helm, tiny_chart, "hello-upgrade")

    status = helm.json("status", "web", "-n", "shop")
    assert status["info"]["status"] == "deployed"
    assert status["version"] == 2
    assert kube_api.get("configmaps", "web-cfg", "shop")["data"]["message"] == "hello-upgrade"
    assert helm.json("get", "values", "web", "-n", "shop") == {"message": "hello-upgrade"}
    assert kube_api.helm_release_values("shop", "web", revision=1) == {"message": "hello-install"}
    releases = {(r["name"], r["namespace"]): r["status"] for r in helm.json("list", "-A", *helm.list_all)}
    assert releases == {("web", "shop"): "deployed", ("side", "fresh"): "deployed"}
    # The upgrade rolled the Deployment to a new ReplicaSet and scaled the old one down.
    replica_sets = kube_api.objects("replicasets", "shop")
    assert sorted(
        rs["spec"]["replicas"] for rs in replica_sets if rs["metadata"]["name"].startswith("web-web")
    ) == [0, 1]

    helm.run("uninstall", "web", "-n", "shop")
    helm.run("uninstall", "side", "-n", "fresh")

    assert helm.json("list", "-A", *helm.list_all) == []
    assert kube_api.objects("deployments", "shop") == []
    assert kube_api.objects("secrets", "shop", label_selector="owner=helm") == []
    # Garbage collection removed what the Deployment and StatefulSet owned.
    assert [
        p for p in kube_api.objects("pods", "shop") if not p["metadata"]["name"].startswith("web-hook")
    ] == []


def test_never_ready_rolls_back_upgrade_and_removes_failed_install(
    kube_api: KubeApiDouble, helm: Tool, tiny_chart: Path
) -> None:
    helm.run(
        "upgrade",
        "--install",
        "good",
        str(tiny_chart),
        "-n",
        "shop",
        "--create-namespace",
        *helm.wait,
        "--timeout",
        "30s",
    )
    common = [
        *helm.wait,
        *helm.rollback_on_failure,
        "--timeout",
        "5s",
        "--set",
        "image=registry.test/never-ready:1",
    ]
    # The failing upgrade and the failing first install run side by side to keep the test short.
    procs = [
        subprocess.Popen(
            [str(helm.binary), "upgrade", "--install", "good", str(tiny_chart), "-n", "shop", *common],
            env=helm.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
        subprocess.Popen(
            [
                str(helm.binary),
                "upgrade",
                "--install",
                "bad",
                str(tiny_chart),
                "-n",
                "other",
                "--create-namespace",
                *common,
            ],
            env=helm.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        ),
    ]
    outputs = [proc.communicate(timeout=90)[0] for proc in procs]

    assert [proc.returncode for proc in procs] == [1, 1], outputs
    releases = {(r["name"], r["namespace"]): r for r in helm.json("list", "-A", *helm.list_all)}
    assert set(releases) == {("good", "shop")}
    assert releases[("good", "shop")]["status"] == "deployed"
    assert int(releases[("good", "shop")]["revision"]) == 3  # 1 install, 2 failed upgrade, 3 rollback
    history = helm.json("history", "good", "-n", "shop")
    assert [entry["status"] for entry in history] == ["superseded", "failed", "deployed"]
    assert not any(entry["status"].startswith("pending") for entry in history)
    image = kube_api.get("deployments", "good-web", "shop")["spec"]["template"]["spec"]["containers"][0][
        "image"
    ]
    assert image == "nginx:1.27"
    # While it lasted, the never-ready pod carried the pull failure and a Warning event named the image.
    failures = [e for e in kube_api.objects("events", "shop") if e["reason"] == "Failed"]
    assert failures and 'Failed to pull image "registry.test/never-ready:1"' in failures[0]["message"]
    assert failures[0]["type"] == "Warning" and failures[0]["involvedObject"]["kind"] == "Pod"
    # The rolled-back Deployment is ready again.
    deadline = time.monotonic() + 5
    while kube_api.get("deployments", "good-web", "shop")["status"].get("readyReplicas") != 1:
        assert time.monotonic() < deadline
        time.sleep(0.1)


def test_release_values_are_searchable_in_request_bodies(
    kube_api: KubeApiDouble, helm: Tool, tiny_chart: Path
) -> None:
    helm.run(
        "upgrade",
        "--install",
        "leak",
        str(tiny_chart),
        "-n",
        "shop",
        "--create-namespace",
        "--set",
        "message=hunter2-not-a-secret",
    )

    hits = kube_api.search_requests("hunter2-not-a-secret")

    # Found in the ConfigMap body and, gzip-compressed, inside the protobuf release Secret.
    assert any(hit.path.endswith("/configmaps") or "/configmaps/" in hit.path for hit in hits)
    assert any(hit.content_type == "application/vnd.kubernetes.protobuf" for hit in hits)
    assert not any(
        b"hunter2-not-a-secret" in hit.body
        for hit in hits
        if hit.content_type == "application/vnd.kubernetes.protobuf"
    )
