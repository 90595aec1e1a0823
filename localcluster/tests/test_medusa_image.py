"""The Medusa image built from deploy/medusa/Dockerfile runs the Medusa chart on the real node: its
migrate init container and server (Ready on /health), the bootstrap Job (migrations again, the admin
user, the seed) and the admin bundle `medusa build` produced, on the PostgreSQL and Redis stand-ins,
under Pod Security `restricted` with a read-only root filesystem, inside the chart's quota.

Needs what test_stand_in_images.py needs, plus the medusa-store image (deploy/images/build.sh medusa).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.tests.support import (
    install_chart_objects,
    node_cluster_or_skip,
    pod_log,
    run_client,
    wait_workloads_ready,
)

IMAGES = ("postgres:16.9-bookworm", "redis:7.4.2-bookworm", "medusa-store:2.21.2-2")

pytestmark = [pytest.mark.real_node, pytest.mark.real_cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with node_cluster_or_skip(Path(tmp_path_factory.mktemp("medusa")), IMAGES) as pair:
        yield pair


def test_the_medusa_chart_migrates_bootstraps_and_serves_on_the_real_node(node_cluster):
    cluster, _ = node_cluster
    started = time.monotonic()
    namespace = install_chart_objects(
        cluster,
        "medusa",
        {
            "postgres-init",
            "postgres",
            "redis",
            "medusa",
            "medusa-bootstrap",
            "store-quota",
            "container-defaults",
        },
    )
    ready_seconds = wait_workloads_ready(cluster, namespace, 900)

    def bootstrap_finished() -> str | None:
        job = cluster.get("jobs", "medusa-bootstrap", namespace, api="batch/v1")
        for condition in (job or {}).get("status", {}).get("conditions", []):
            if condition["status"] == "True" and condition["type"] in {"Complete", "Failed"}:
                return condition["type"]
        return None

    cluster.wait(bootstrap_finished, 600, "the medusa-bootstrap Job")
    bootstrap_seconds = time.monotonic() - started
    pods = cluster.objects("pods", namespace, label_selector="app.kubernetes.io/name=medusa-bootstrap")
    last_pod = pods[-1]["metadata"]["name"]
    assert bootstrap_finished() == "Complete", pod_log(cluster, namespace, last_pod)

    def get(path: str) -> str:
        return (
            f"exec 3<>/dev/tcp/medusa/9000; printf 'GET {path} HTTP/1.0\\r\\nHost: demo\\r\\n\\r\\n' >&3; "
            "head -1 <&3; cat <&3 >/dev/null"
        )

    output = run_client(
        cluster, namespace, "postgres:16.9-bookworm", f"{get('/health')}; {get('/app')}", [], 999
    )
    statuses = [line.split()[1] for line in output.strip().splitlines()]
    assert statuses[0] == "200"  # the server
    assert statuses[1] in {"200", "301", "302"}  # the admin bundle is served
    print(
        f"\nmedusa chart: server Ready {ready_seconds:.0f} s after install, bootstrap Job done after "
        f"{bootstrap_seconds:.0f} s"
    )
