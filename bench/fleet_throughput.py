"""Provisioning throughput of a fleet, on one real control plane against three side by side: N stores
(1,000 by default) created through the API and provisioned by real helm, with the fleet watcher
running as in production. kwok nodes are sized so that every store fits: what is measured is the
platform and helm, not the scheduler refusing pods.

Every configuration has the same Celery worker (WORKERS processes) and the same platform-wide cap
(PROVISIONING_CONCURRENCY = HELM_PER_CLUSTER x the largest cluster count); what changes is the
number of clusters, each with its own helm cap (Cluster.helm_concurrency = HELM_PER_CLUSTER). So one
cluster runs at most HELM_PER_CLUSTER helm processes, three run up to three times as many, and the
figures show whether the caps or the machine's cores bound a fleet's provisioning.

Per configuration: wall time from the first create to the last store ready, stores per minute, the
time the API took to accept them, peak concurrent helm processes, stores installed more than once (must be 0),
failed stores (must be 0), what waiting for a helm slot cost (broker messages per store, the
worker's own CPU seconds outside helm), and the peak RSS of each apiserver, the worker and the
watcher."""

from __future__ import annotations

import math
import shutil
import sys
import time

from django.conf import settings
from django.db.models import Count, Q

from bench.concurrency import HelmPeak, create_through_api
from bench.environment import WORK_DIR, Process, broker_messages_sent, cpu_seconds, peak_rss_mib, start_worker
from bench.fixtures import merchant

HELM_PER_CLUSTER = 4
WORKERS = 12
# A bench-plan WooCommerce store claims 1 CPU / 1 GiB and runs three pods (database, web, setup Job).
STORES_PER_NODE = 40


def _nodes(prefix: str, stores: int) -> tuple:
    from localcluster import FakeNode

    count = max(1, math.ceil(stores * 1.25 / STORES_PER_NODE))
    return tuple(
        FakeNode(
            f"{prefix}-node-{index}",
            cpu=str(STORES_PER_NODE * 2),
            memory=f"{STORES_PER_NODE * 2}Gi",
            pods=250,
        )
        for index in range(count)
    )


def _configuration(stores: int, cluster_count: int, platform_cap: int) -> dict[str, object]:
    from localcluster import LocalCluster
    from provisioning.clusters import cluster_create, cluster_set_draining
    from provisioning.models import Cluster, CommandRecord
    from stores.choices import StoreStatus
    from stores.models import Store

    label = f"{cluster_count} cluster{'s' if cluster_count > 1 else ''}"
    per_cluster = math.ceil(stores / cluster_count)
    clusters = []
    try:
        for index in range(cluster_count):
            work_dir = WORK_DIR / f"throughput-{cluster_count}-{index}"
            shutil.rmtree(work_dir, ignore_errors=True)
            prefix = f"tp{cluster_count}-{index}"
            clusters.append(LocalCluster(work_dir, nodes=_nodes(prefix, per_cluster), name=prefix).start())
        # Earlier configurations' clusters (and the ambient default) take no more stores.
        for row in Cluster.objects.filter(draining=False):
            cluster_set_draining(cluster=row, draining=True)
        rows = [
            cluster_create(
                name=f"throughput-{cluster_count}-{index}",
                kubeconfig=local.kubeconfig.read_text(),
                helm_concurrency=HELM_PER_CLUSTER,
            )
            for index, local in enumerate(clusters)
        ]
        environment = {"KUBECONFIG": str(clusters[0].kubeconfig), "CLUSTER_IS_SIMULATED": ""}
        worker = start_worker(
            concurrency=WORKERS,
            name=f"throughput-worker-{cluster_count}",
            PROVISIONING_CONCURRENCY=str(platform_cap),
            **environment,
        )
        watcher = Process(
            f"throughput-watcher-{cluster_count}",
            [sys.executable, "manage.py", "watch_clusters"],
            env=environment,
        )
        try:
            with HelmPeak(worker.process.pid, interval=0.2) as helm:
                _, tenant, token = merchant(f"throughput-{cluster_count}")
                sent_before, worker_cpu_before = broker_messages_sent(), cpu_seconds(worker.tree_pids())
                started = time.monotonic()
                names = [f"tp{cluster_count}-{index:05d}" for index in range(stores)]
                codes = create_through_api(token, names, threads=8)
                created_seconds = time.monotonic() - started
                assert codes.count(202) == stores, {code: codes.count(code) for code in set(codes)}
                mine = Store.objects.filter(tenant=tenant)
                deadline = started + 4 * 3600
                next_report = time.monotonic() + 60
                while True:
                    counts = mine.aggregate(
                        ready=Count("id", filter=Q(status=StoreStatus.READY)),
                        failed=Count("id", filter=Q(status=StoreStatus.FAILED)),
                    )
                    if counts["ready"] + counts["failed"] >= stores:
                        break
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{label}: {counts} of {stores} after {deadline - started:.0f} s")
                    if time.monotonic() >= next_report:
                        print(
                            f"  {label}: {counts['ready']} ready after {time.monotonic() - started:.0f} s",
                            flush=True,
                        )
                        next_report += 60
                    time.sleep(1)
                elapsed = time.monotonic() - started
                # What waiting for a helm slot costs: every message beyond one per store is a run
                # asking again (or handed a slot), and the worker's own CPU excludes helm's.
                messages_per_store = (broker_messages_sent() - sent_before) / stores
                worker_cpu = cpu_seconds(worker.tree_pids()) - worker_cpu_before
                installs = (
                    CommandRecord.objects.filter(
                        run__store__tenant=tenant, tool="helm", argv__contains=["upgrade"]
                    )
                    .values("run__store")
                    .annotate(n=Count("id"))
                )
                installed_more_than_once = sum(1 for row in installs if row["n"] > 1)
                spread = dict(
                    mine.values_list("cluster__name")
                    .annotate(n=Count("id"))
                    .values_list("cluster__name", "n")
                )
                apiserver_rss = [
                    peak_rss_mib(local.components["kube-apiserver"].process.pid) for local in clusters
                ]
                return {
                    "stores": stores,
                    "clusters (helm cap each)": f"{cluster_count} ({HELM_PER_CLUSTER})",
                    "worker processes / platform helm cap": f"{WORKERS} / {platform_cap}",
                    "stores per cluster": ", ".join(str(spread.get(row.name, 0)) for row in rows),
                    "seconds to create them all through the API": round(created_seconds, 1),
                    "seconds until all ready": round(elapsed, 1),
                    "stores per minute": round(stores / elapsed * 60, 1),
                    "peak concurrent helm processes": helm.peak,
                    "broker messages per store": round(messages_per_store, 1),
                    "worker CPU seconds outside helm": round(worker_cpu, 1),
                    "stores installed more than once": installed_more_than_once,
                    "failed stores": counts["failed"],
                    "apiserver peak RSS MiB (each)": ", ".join(f"{rss:.0f}" for rss in apiserver_rss),
                    "worker peak RSS MiB (largest process)": round(
                        max(peak_rss_mib(p) for p in worker.tree_pids()), 1
                    ),
                    "watcher peak RSS MiB": round(peak_rss_mib(watcher.process.pid), 1),
                }
        finally:
            watcher.stop()
            worker.stop()
    finally:
        for local in clusters:
            local.stop()


def run(stores: int = 1000, cluster_counts: tuple[int, ...] = (1, 3)) -> dict[str, object]:
    # The benchmark creates more live stores than the platform's default ceiling allows.
    settings.PLATFORM_MAX_LIVE_STORES = 0
    platform_cap = HELM_PER_CLUSTER * max(cluster_counts)
    results: dict[str, object] = {}
    for count in cluster_counts:
        figures = _configuration(stores, count, platform_cap)
        # A configuration takes up to an hour at 1,000 stores: its figures are printed as soon as it
        # ends, so a later configuration's failure does not lose them.
        print(f"  {count} cluster{'s' if count > 1 else ''} done: {figures}", flush=True)
        for key, value in figures.items():
            results[f"{count} cluster{'s' if count > 1 else ''}: {key}"] = value
    return results
