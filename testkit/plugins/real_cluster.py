"""The real control plane for tests: `real_cluster` (one per session) and `fresh_cluster` (one per test).

Tests that use them carry `@pytest.mark.real_cluster`, so `pytest -m real_cluster` runs exactly that
layer. Without the binaries (no Go on the machine) those tests are skipped with one summary line;
with `CI=true` a missing binary is a failure instead, so CI can never pass by skipping them.
"""

from __future__ import annotations

import contextlib
import os
import urllib.error
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from localcluster import BinariesMissing, ClusterBinaries, LocalCluster
from localcluster.cluster import NEVER_READY_LABEL, FakeNode

REAL_LAYERS = ("real_cluster", "real_node", "netpol")
MANAGED_NAMESPACES = "app.kubernetes.io/managed-by=store-platform"


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def _binaries_problem() -> str | None:
    try:
        ClusterBinaries.find()
    except BinariesMissing as exc:
        return str(exc)
    return None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    problem = _binaries_problem()
    if problem is None:
        return
    if _in_ci():
        return  # collected and run: their cluster fixtures fail with the reason, and CI is red
    layered = [item for item in items if any(item.get_closest_marker(m) for m in REAL_LAYERS)]
    config.stash[_skipped_key] = (len(layered), problem)
    for item in layered:
        item.add_marker(pytest.mark.skip(reason=problem))


_skipped_key = pytest.StashKey[tuple[int, str]]()


def pytest_terminal_summary(terminalreporter, exitstatus, config: pytest.Config) -> None:  # noqa: ARG001
    if _skipped_key in config.stash:
        count, problem = config.stash[_skipped_key]
        if count and not _in_ci():
            terminalreporter.write_line(f"real-cluster layer: {count} tests skipped: {problem}", yellow=True)


def _new_cluster(work_dir: Path, name: str, **options: Any) -> LocalCluster:
    try:
        return LocalCluster(work_dir, name=name, **options)
    except BinariesMissing as exc:
        if _in_ci():
            pytest.fail(f"CI=true and {exc}")
        pytest.skip(str(exc))


def clean_store_namespaces(cluster: LocalCluster) -> None:
    """Delete every store namespace and test stage left by a test (without waiting for them to go)."""
    with contextlib.suppress(urllib.error.URLError, OSError):
        namespaces = cluster.request("GET", f"/api/v1/namespaces?labelSelector={MANAGED_NAMESPACES}")
        for namespace in namespaces["items"]:
            if "deletionTimestamp" not in namespace["metadata"]:
                cluster.request("DELETE", f"/api/v1/namespaces/{namespace['metadata']['name']}")
        stages = cluster.request("GET", "/apis/kwok.x-k8s.io/v1alpha1/stages")
        for stage in stages["items"]:
            if stage["metadata"]["name"].startswith("never-ready-"):
                cluster.request("DELETE", f"/apis/kwok.x-k8s.io/v1alpha1/stages/{stage['metadata']['name']}")


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalCluster]:
    """One real control plane for the whole session (started on first use, ~10 s)."""
    cluster = _new_cluster(tmp_path_factory.mktemp("real-cluster"), "session")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def cluster(real_cluster: LocalCluster) -> Iterator[LocalCluster]:
    """The session's control plane, with the store namespaces this test made deleted afterwards."""
    yield real_cluster
    clean_store_namespaces(real_cluster)


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A control plane of this test's own (for tests that stop components or change cluster-wide state)."""
    cluster = _new_cluster(tmp_path / "cluster", "fresh")
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def start_clusters(tmp_path: Path) -> Iterator[Callable[..., list[LocalCluster]]]:
    """More control planes of this test's own, `start_clusters(nodes_a, nodes_b, ...)`: one cluster per
    tuple of kwok nodes, all stopped afterwards (for tests of several clusters at once)."""
    started: list[LocalCluster] = []

    def start(*node_sets: tuple[FakeNode, ...]) -> list[LocalCluster]:
        made = []
        for nodes in node_sets:
            index = len(started)
            cluster = _new_cluster(tmp_path / f"cluster-{index}", f"fleet-{index}", nodes=nodes)
            started.append(cluster)
            cluster.start()
            made.append(cluster)
        return made

    yield start
    for cluster in started:
        cluster.stop()


__all__ = ["NEVER_READY_LABEL", "FakeNode", "clean_store_namespaces"]
