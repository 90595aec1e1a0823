"""`manage.py watch_clusters`: the fleet watcher, one ClusterWatcher per cluster in one process.

Runs until SIGTERM/SIGINT. Clusters added or removed in the admin are picked up within a minute; a
cluster that cannot be reached is retried with backoff and marked unreachable, and never holds up
the others (each is its own task). Started by `make run` and by the platform chart's watcher
Deployment; it holds no Celery connection, so a broker outage does not blind it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from typing import Any

from django.core.management.base import BaseCommand

from platform_site.errors import ApplicationError
from provisioning.cluster_access import ClusterAccess
from provisioning.clusters import cluster_default
from provisioning.models import Cluster
from provisioning.watch import ClusterWatcher
from stores.fleet import StoreFleetSink

logger = logging.getLogger(__name__)
RESCAN_SECONDS = 60.0


def watched_clusters() -> list[Cluster]:
    """Every registered cluster; with none registered, the ambient one (made on first use), so that a
    single-cluster set-up is watched without any row made by hand. Never the ambient one beside
    registered clusters: it would become a placement target nobody registered, and where it is one
    of them (the same kubeconfig), that cluster would count twice for capacity and helm slots."""
    if not Cluster.objects.exists():
        cluster_default()
    return list(Cluster.objects.all())


class Command(BaseCommand):
    help = "Watch every cluster's store namespaces and keep the stores' state current (runs until stopped)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--once-seconds", type=float, default=0, help="stop after this long (tests, benchmarks)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        asyncio.run(self._run(options["once_seconds"]))

    async def _run(self, once_seconds: float) -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        if once_seconds:
            loop.call_later(once_seconds, stop.set)
        running: dict[int, tuple[ClusterWatcher, asyncio.Task[None], str]] = {}
        self.stdout.write("watching clusters", ending="\n")
        self.stdout.flush()
        while not stop.is_set():
            clusters = await asyncio.to_thread(watched_clusters)
            wanted = {cluster.pk: cluster for cluster in clusters}
            for cluster_id in list(running):
                watcher, task, fingerprint = running[cluster_id]
                cluster = wanted.get(cluster_id)
                if task.done():
                    # run() never returns on its own; a watcher that ended died of a bug: say so and
                    # start it again below rather than leave the cluster unwatched.
                    self._log_if_it_died(watcher, task)
                    del running[cluster_id]
                    continue
                if cluster is None or self._fingerprint(cluster) != fingerprint:
                    watcher.stop()
                    await asyncio.gather(task, return_exceptions=True)
                    del running[cluster_id]
            for cluster_id, cluster in wanted.items():
                if cluster_id in running:
                    continue
                sink = StoreFleetSink(cluster_id)
                try:
                    access = ClusterAccess.for_cluster(cluster)
                except ApplicationError as exc:
                    await asyncio.to_thread(sink.reachable, False, exc.message)
                    continue
                watcher = ClusterWatcher(access, sink, name=cluster.name)
                running[cluster_id] = (
                    watcher,
                    asyncio.create_task(watcher.run()),
                    self._fingerprint(cluster),
                )
                logger.info("watching cluster %s", cluster.name)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), RESCAN_SECONDS)
        for watcher, _task, _ in running.values():
            watcher.stop()
        await asyncio.gather(*(task for _, task, _ in running.values()), return_exceptions=True)

    @staticmethod
    def _log_if_it_died(watcher: ClusterWatcher, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            logger.error("the watcher of %s was cancelled; starting it again", watcher.name)
        elif task.exception() is not None:
            logger.error("the watcher of %s died; starting it again", watcher.name, exc_info=task.exception())

    @staticmethod
    def _fingerprint(cluster: Cluster) -> str:
        # New credentials or context: the watcher starts again with them.
        return f"{cluster.connection}:{cluster.context}:{cluster.kubeconfig_sealed[-32:]}"
