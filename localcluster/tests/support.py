"""Helpers shared by the real node's tests: the node fixture's requirement check, installing parts of
the charts (rendered by helm) into a Pod Security `restricted` namespace, and one-shot client pods."""

from __future__ import annotations

import base64
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from localcluster.binaries import ROOT
from localcluster.ingress import TRAEFIK_IMAGE
from localcluster.node import missing_requirements, real_node_cluster

HELM = ROOT / ".tools" / "bin" / "helm3"
CREDENTIALS = {
    "admin-username": "admin",
    "admin-password": "admin-password-1",
    "admin-email": "owner@example.com",
    "database-password": "db-pass-'quoted'",
    "database-root-password": "root-pass-2",
    "jwt-secret": "jwt-secret-for-tests",
    "cookie-secret": "cookie-secret-for-tests",
}
# Nothing on this node enforces NetworkPolicies (see deploy/node/README.md), so they are not applied.
APPLIED_KINDS = {
    "ConfigMap",
    "Service",
    "StatefulSet",
    "Deployment",
    "Job",
    "PersistentVolumeClaim",
    "ResourceQuota",
    "LimitRange",
}


@contextlib.contextmanager
def node_cluster_or_skip(
    work_dir: Path, images: tuple[str, ...], *, helm: bool = True, ingress: bool = False
) -> Iterator[tuple]:
    """A control plane and a real node running `images` (and Traefik with `ingress`); skipped (failed
    with CI=true) without them (or without helm, when the test renders charts)."""
    problems = missing_requirements((*images, TRAEFIK_IMAGE) if ingress else images)
    if helm and not HELM.is_file():
        problems.append(f"{HELM} (make tools)")
    if problems:
        message = "real node unavailable: missing " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    with real_node_cluster(work_dir, images=images, ingress=ingress) as pair:
        yield pair


def chart_objects(chart: str, namespace: str, names: set[str]) -> list[dict]:
    """The chart's objects called `names`, as `helm template` renders them with default values."""
    rendered = subprocess.run(
        [str(HELM), "template", "demo", str(ROOT / "charts" / chart), "--namespace", namespace],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    return [
        obj
        for obj in yaml.safe_load_all(rendered)
        if obj and obj["kind"] in APPLIED_KINDS and obj["metadata"]["name"] in names
    ]


def install_chart_objects(cluster, chart: str, names: set[str]) -> str:
    """Create store-<chart> (Pod Security `restricted`), its credentials Secret, and the objects."""
    namespace = f"store-{chart}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }
    )
    cluster.wait(
        lambda: cluster.get("serviceaccounts", "default", namespace), 30, f"{namespace}'s ServiceAccount"
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store-credentials", "namespace": namespace},
            "type": "Opaque",
            "data": {key: base64.b64encode(value.encode()).decode() for key, value in CREDENTIALS.items()},
        }
    )
    for obj in chart_objects(chart, namespace, names):
        obj["metadata"]["namespace"] = namespace
        # Hooks are plain objects here: nothing runs helm's hook ordering.
        obj["metadata"].get("annotations", {}).pop("helm.sh/hook", None)
        cluster.apply(obj)
    return namespace


def wait_workloads_ready(cluster, namespace: str, timeout: float) -> float:
    """Seconds until every Deployment and StatefulSet in `namespace` has all replicas Ready."""
    started = time.monotonic()

    def ready() -> bool:
        workloads = [
            *cluster.objects("deployments", namespace, api="apps/v1"),
            *cluster.objects("statefulsets", namespace, api="apps/v1"),
        ]
        return bool(workloads) and all(
            w.get("status", {}).get("readyReplicas") == w["spec"]["replicas"] for w in workloads
        )

    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            pods = {p["metadata"]["name"]: p.get("status", {}) for p in cluster.objects("pods", namespace)}
            raise AssertionError(f"workloads in {namespace} not Ready after {timeout:.0f} s: {pods}")
        _fail_on_crash_loop(cluster, namespace)
        time.sleep(1)
    return time.monotonic() - started


def _fail_on_crash_loop(cluster, namespace: str, restarts: int = 3) -> None:
    # A container that keeps failing will not get better by waiting: report it with its log.
    for pod in cluster.objects("pods", namespace):
        status = pod.get("status", {})
        for container in [*status.get("initContainerStatuses", []), *status.get("containerStatuses", [])]:
            if container.get("restartCount", 0) >= restarts:
                log = pod_log(cluster, namespace, pod["metadata"]["name"], container["name"])
                tail = "\n".join(log.splitlines()[-15:])
                raise AssertionError(
                    f"{pod['metadata']['name']}/{container['name']} restarted {container['restartCount']} times:\n{tail}"
                )


def pod_log(cluster, namespace: str, name: str, container: str | None = None) -> str:
    """A pod's log, read through the apiserver -> kubelet path as `kubectl logs` does."""
    api = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    )
    if container:
        return api.read_namespaced_pod_log(name, namespace, container=container)
    return api.read_namespaced_pod_log(name, namespace)


def run_client(cluster, namespace: str, image: str, script: str, env: list[dict], uid: int) -> str:
    """Run `script` with bash in a one-shot restricted pod from `image`; its log (it must succeed)."""
    name = f"client-{int(time.monotonic() * 1000) % 100000}"
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{namespace}/pods",
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "restartPolicy": "Never",
                "automountServiceAccountToken": False,
                "securityContext": {
                    "runAsNonRoot": True,
                    "runAsUser": uid,
                    "runAsGroup": uid,
                    "seccompProfile": {"type": "RuntimeDefault"},
                },
                "containers": [
                    {
                        "name": "client",
                        "image": image,
                        "imagePullPolicy": "Never",
                        "command": ["bash", "-c", script],
                        "env": env,
                        "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}},
                        "securityContext": {
                            "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]},
                        },
                    }
                ],
            },
        },
    )
    deadline = time.monotonic() + 90
    phase = None
    while time.monotonic() < deadline:
        phase = cluster.get("pods", name, namespace).get("status", {}).get("phase")
        if phase in {"Succeeded", "Failed"}:
            break
        time.sleep(0.5)
    output = pod_log(cluster, namespace, name)
    assert phase == "Succeeded", output
    return output


def secret_env(name: str, key: str) -> dict:
    """An environment variable read from the store's credentials Secret."""
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "store-credentials", "key": key}}}
