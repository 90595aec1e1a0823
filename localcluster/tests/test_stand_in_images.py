"""The stand-in images of deploy/images honour what the charts rely on, checked on the real node with
the charts' own manifests (rendered by helm): the Medusa chart's PostgreSQL (POSTGRES_* variables,
PGDATA in a subdirectory of the claim, the init script that creates the medusa role, pg_isready) and
Redis, and the WooCommerce chart's MariaDB (MARIADB_* variables, healthcheck.sh) and WordPress
(copied onto its claim as uid 33, wp-config.php from WORDPRESS_*, Apache on 8080 with the chart's
configuration, reaching MariaDB through its Service), all under Pod Security `restricted` with
read-only root filesystems.

Needs what test_real_node.py needs, plus the postgres, mariadb and wordpress images.
"""

from __future__ import annotations

import base64
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import yaml

from localcluster.binaries import ROOT
from localcluster.node import missing_requirements, real_node_cluster

IMAGES = ("postgres:16.9-bookworm", "redis:7.4.2-bookworm", "mariadb:11.4.7", "wordpress:6.8.2-php8.3-apache")
HELM = ROOT / ".tools" / "bin" / "helm3"
CREDENTIALS = {
    "admin-username": "admin",
    "admin-password": "admin-password-1",
    "admin-email": "owner@example.com",
    "database-password": "db-pass-'quoted'",
    "database-root-password": "root-pass-2",
    "jwt-secret": "jwt",
    "cookie-secret": "cookie",
}
# What the stand-ins are checked against; jobs need images that are not part of this check (Medusa)
# or cannot exist here (wp-cli), and nothing on this node enforces NetworkPolicies.
CHART_OBJECTS = {
    "medusa": {"postgres-init", "postgres", "redis", "store-quota", "container-defaults"},
    "woocommerce": {"apache", "mariadb", "wordpress", "store-quota", "container-defaults"},
}
WORKLOAD_KINDS = {
    "ConfigMap",
    "Service",
    "StatefulSet",
    "Deployment",
    "PersistentVolumeClaim",
    "ResourceQuota",
    "LimitRange",
}

pytestmark = [pytest.mark.real_node, pytest.mark.real_cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    problems = missing_requirements(IMAGES)
    if not HELM.is_file():
        problems.append(f"{HELM} (make tools)")
    if problems:
        message = "real node unavailable: missing " + "; ".join(problems)
        if os.environ.get("CI", "").lower() in {"1", "true", "yes"}:
            pytest.fail(message)
        pytest.skip(message)
    with real_node_cluster(Path(tmp_path_factory.mktemp("stand-ins")), images=IMAGES) as pair:
        yield pair


def _chart_objects(chart: str, namespace: str) -> list[dict]:
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
        if obj and obj["kind"] in WORKLOAD_KINDS and obj["metadata"]["name"] in CHART_OBJECTS[chart]
    ]


def _install(cluster, chart: str) -> str:
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
    for obj in _chart_objects(chart, namespace):
        obj["metadata"]["namespace"] = namespace
        cluster.apply(obj)
    return namespace


def _wait_workloads_ready(cluster, namespace: str, timeout: float) -> float:
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
        time.sleep(1)
    return time.monotonic() - started


def _run_client(cluster, namespace: str, image: str, script: str, env: list[dict], uid: int) -> str:
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
    while time.monotonic() < deadline:
        phase = cluster.get("pods", name, namespace).get("status", {}).get("phase")
        if phase in {"Succeeded", "Failed"}:
            break
        time.sleep(0.5)
    api = kubernetes.client.CoreV1Api(
        kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    )
    output = api.read_namespaced_pod_log(name, namespace)
    assert phase == "Succeeded", output
    return output


def _secret_env(name: str, key: str) -> dict:
    return {"name": name, "valueFrom": {"secretKeyRef": {"name": "store-credentials", "key": key}}}


def test_medusa_charts_postgres_and_redis_run_on_the_stand_ins(node_cluster):
    cluster, _ = node_cluster
    namespace = _install(cluster, "medusa")
    seconds = _wait_workloads_ready(cluster, namespace, 240)
    # The chart's init script ran on the empty PGDATA: the medusa role owns the medusa database and
    # logs in with its password over TCP (scram-sha-256, as the official image configures).
    output = _run_client(
        cluster,
        namespace,
        "postgres:16.9-bookworm",
        'PGPASSWORD="$MEDUSA_DATABASE_PASSWORD" psql -h postgres -U medusa -d medusa -Atc '
        "'SELECT current_user, pg_catalog.pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()'; "
        "exec 3<>/dev/tcp/redis/6379; printf 'PING\\r\\n' >&3; head -c 7 <&3",
        [_secret_env("MEDUSA_DATABASE_PASSWORD", "database-password")],
        999,
    )
    assert "medusa|medusa" in output
    assert "PONG" in output
    print(f"\nmedusa chart's postgres + redis Ready in {seconds:.1f} s")


def test_woocommerce_charts_mariadb_and_wordpress_run_on_the_stand_ins(node_cluster):
    cluster, _ = node_cluster
    namespace = _install(cluster, "woocommerce")
    seconds = _wait_workloads_ready(cluster, namespace, 300)
    # WordPress answered its probes on /wp-login.php, which needs its database: MariaDB made the
    # wordpress user from MARIADB_USER/MARIADB_PASSWORD and WordPress found it through WORDPRESS_DB_*.
    output = _run_client(
        cluster,
        namespace,
        "mariadb:11.4.7",
        "mariadb -h mariadb -u wordpress wordpress -N -e 'SELECT CURRENT_USER()'; "
        "exec 3<>/dev/tcp/wordpress/80; printf 'GET /wp-login.php HTTP/1.0\\r\\nHost: demo\\r\\n\\r\\n' >&3; head -1 <&3",
        # The client reads its password from MYSQL_PWD, so it never appears in the process list.
        [_secret_env("MYSQL_PWD", "database-password")],
        999,
    )
    assert "wordpress@%" in output
    assert output.strip().splitlines()[-1].split()[1] in {"200", "302"}
    print(f"\nwoocommerce chart's mariadb + wordpress Ready in {seconds:.1f} s")
