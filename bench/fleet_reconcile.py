"""A reconcile pass at 100 and 1,000 ready stores on a real control plane with kwok, side by side:
the cluster followed by the fleet watcher (`manage.py watch_clusters`, its own process) against the
same cluster without one (the helm sampling every pass did before the watcher existed). For each:
the pass's CPU and wall time, Kubernetes API calls and helm processes it started; the watcher's sync
time, open streams and peak RSS; and how long one injected drift (a deleted release Secret) takes to
move its store.

The stores are seeded as helm would leave them (a labelled namespace, a release Secret with helm's
labels) straight through the API, so that seeding 1,000 costs seconds, not 1,000 helm installs."""

from __future__ import annotations

import base64
import gzip
import json
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import connections
from django.utils import timezone

from bench.environment import WORK_DIR, Process, peak_rss_mib
from bench.fixtures import merchant

MANAGED_BY = {"app.kubernetes.io/managed-by": "store-platform"}


def _helm_release(name: str, namespace: str) -> str:
    """The Secret value helm writes: base64 of gzipped release JSON (the apiserver encodes it again)."""
    release = {
        "name": name,
        "namespace": namespace,
        "version": 1,
        "info": {"status": "deployed", "description": "Install complete"},
        "chart": {"metadata": {"name": "woocommerce", "version": "0.1.0", "apiVersion": "v2"}},
        "config": {},
    }
    inner = base64.b64encode(gzip.compress(json.dumps(release).encode())).decode()
    return base64.b64encode(inner.encode()).decode()


def _seed_cluster(cluster, names: list[str]) -> None:  # noqa: ANN001
    def one(name: str) -> None:
        namespace = f"store-{name}"
        cluster.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": MANAGED_BY}}
        )
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "type": "helm.sh/release.v1",
                "metadata": {
                    "name": f"sh.helm.release.v1.{name}.v1",
                    "namespace": namespace,
                    "labels": {"owner": "helm", "name": name, "status": "deployed", "version": "1"},
                },
                "data": {"release": _helm_release(name, namespace)},
            }
        )

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(one, names))


def _seed_stores(tenant, cluster_row, names: list[str]) -> None:  # noqa: ANN001
    from stores.choices import StoreStatus
    from stores.models import Store

    settled = timezone.now() - timedelta(minutes=5)
    Store.objects.bulk_create(
        [
            Store(
                tenant=tenant,
                cluster=cluster_row,
                name=name,
                engine="woocommerce",
                status=StoreStatus.READY,
                status_changed_at=settled,
                namespace=f"store-{name}",
                release_name=name,
                host=f"{name}.bench.example",
            )
            for name in names
        ],
        batch_size=500,
    )
    # status_changed_at is auto_now_add, which bulk_create fills in: settle them past READY_SETTLE, as
    # a fleet ready for a while is (the reconciler leaves just-ready stores alone).
    Store.objects.filter(name__in=names).update(status_changed_at=settled)


@contextmanager
def _counted() -> Iterator[dict[str, int]]:
    """Counts Kubernetes API calls and helm processes made in this process while the block runs."""
    from kubernetes.client import ApiClient

    from provisioning.helm import HelmClient

    counts = {"api": 0, "helm": 0}
    call_api, run_checked = ApiClient.call_api, HelmClient._run_checked

    def counting_call_api(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        counts["api"] += 1
        return call_api(self, *args, **kwargs)

    def counting_run_checked(self, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        counts["helm"] += 1
        return run_checked(self, *args, **kwargs)

    ApiClient.call_api, HelmClient._run_checked = counting_call_api, counting_run_checked
    try:
        yield counts
    finally:
        ApiClient.call_api, HelmClient._run_checked = call_api, run_checked


def _pass() -> str:
    from stores.reconcile import fleet_reconcile

    with _counted() as counts:
        cpu, wall = time.process_time(), time.perf_counter()
        report = fleet_reconcile()
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    assert not report.errors and not report.reprovisioned, report
    return f"{cpu * 1000:.0f} ms CPU, {wall * 1000:.0f} ms wall, {counts['api']} API calls, {counts['helm']} helm"


def _wait(what: str, condition: Callable[[], bool], timeout: float) -> float:
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"{what}: not within {timeout:.0f} s")
        time.sleep(0.05)
    return time.monotonic() - started


def run(sizes: tuple[int, ...] = (100, 1000)) -> dict[str, object]:
    import shutil

    from localcluster import LocalCluster
    from provisioning.clusters import cluster_default
    from provisioning.models import Cluster
    from stores.choices import StoreEventKind, StoreStatus
    from stores.models import Store, StoreObservation

    work_dir = WORK_DIR / "fleet-cluster"
    shutil.rmtree(work_dir, ignore_errors=True)
    cluster = LocalCluster(work_dir, name="fleet-bench").start()
    settings.KUBECONFIG = str(cluster.kubeconfig)
    results: dict[str, object] = {}
    try:
        _, tenant, _ = merchant("fleet-reconcile")
        default = cluster_default()
        seeded: list[str] = []
        for size in sizes:
            names = [f"fleet-{index:05d}" for index in range(len(seeded), size)]
            started = time.monotonic()
            _seed_cluster(cluster, names)
            _seed_stores(tenant, default, names)
            seeded += names
            seed_seconds = time.monotonic() - started

            # Unwatched: what every pass cost before the watcher (and still costs on a cluster without one).
            Cluster.objects.filter(pk=default.pk).update(watched_at=None)
            unwatched = _pass()

            watcher = Process(
                f"watcher-{size}",
                [sys.executable, "manage.py", "watch_clusters"],
                env={"KUBECONFIG": str(cluster.kubeconfig), "CLUSTER_IS_SIMULATED": ""},
            )
            try:
                synced = _wait(
                    "the watcher to observe every store",
                    lambda size=size: (
                        StoreObservation.objects.filter(release_status="deployed").count() >= size
                    ),
                    timeout=600,
                )
                _wait(
                    "the watcher's heartbeat",
                    lambda: Cluster.objects.filter(pk=default.pk, watched_at__isnull=False).exists(),
                    timeout=60,
                )
                watched = [_pass() for _ in range(3)]
                victim = Store.objects.get(name=seeded[len(seeded) // 2])
                cluster.request(
                    "DELETE",
                    f"/api/v1/namespaces/{victim.namespace}/secrets/sh.helm.release.v1.{victim.name}.v1",
                )
                noticed = _wait(
                    "the watcher to notice the deleted release",
                    lambda victim=victim: victim.events.filter(
                        kind=StoreEventKind.TRANSITION, actor_label="watcher"
                    ).exists(),
                    timeout=120,
                )
                rss = max(peak_rss_mib(pid) for pid in watcher.tree_pids())
            finally:
                watcher.stop()
            # Put the victim back as it was, so the next size starts from a quiet fleet.
            _seed_cluster(cluster, [victim.name])
            Store.objects.filter(pk=victim.pk).update(
                status=StoreStatus.READY, status_changed_at=timezone.now() - timedelta(minutes=5)
            )
            victim.runs.all().delete()
            results[f"{size} ready stores: seed"] = f"{seed_seconds:.1f} s (namespace + release Secret each)"
            results[f"{size}: pass without a watcher"] = unwatched
            results[f"{size}: pass on a watched cluster (3 passes)"] = "; ".join(watched)
            results[f"{size}: watcher"] = (
                f"synced {size} stores in {synced:.1f} s ({3 * size + 1} watch streams), peak RSS {rss:.0f} MiB"
            )
            results[f"{size}: deleted release Secret -> store re-provisioning"] = f"{noticed * 1000:.0f} ms"
    finally:
        connections.close_all()
        cluster.stop()
    return results
