"""What the fleet watcher's findings mean for stores (the `WatchSink` of one cluster).

- A running store whose namespace or helm release is gone is provisioned again (store_drifted).
- A ready store one of whose workloads stays not-ready for degrade_after() is degraded, with the
  controller's words; it is ready again as soon as every workload is (store_degraded / _recovered).
- helm's newest record of each release is kept on the store's observation, so the reconciler finds a
  release left pending without running helm to look.
- The cluster's health and capacity go to its one writer.

Stores that are not running (requested, provisioning, deleting, ...) are left to their run: the
watcher sees their namespace and release come and go as helm works, and must not react to that.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone

from provisioning.choices import ClusterHealth
from provisioning.clusters import cluster_health_transition
from provisioning.models import Cluster
from provisioning.watch import ReleaseState, WorkloadState
from stores.choices import STORE_RUNNING_STATUSES, STORE_TERMINAL_STATUSES, StoreStatus
from stores.lifecycle import store_degraded, store_drifted, store_recovered
from stores.models import Store, StoreObservation

logger = logging.getLogger(__name__)


def degrade_after() -> timedelta:
    """A rollout or a restart makes a workload briefly not ready; only a longer spell degrades."""
    return timedelta(seconds=settings.STORE_DEGRADE_AFTER_SECONDS)


@contextmanager
def _database() -> Iterator[None]:
    # Sink calls run in worker threads of a long-lived process: drop connections the database closed.
    close_old_connections()
    try:
        yield
    finally:
        close_old_connections()


class StoreFleetSink:
    """Applies one cluster's watch findings to the stores placed on it."""

    def __init__(self, cluster_id: int) -> None:
        self.cluster_id = cluster_id

    def _store(self, namespace: str) -> Store | None:
        return (
            Store.objects.filter(cluster_id=self.cluster_id, namespace=namespace)
            .exclude(status__in=STORE_TERMINAL_STATUSES)
            .first()
        )

    @staticmethod
    def _observe(store: Store, **fields: object) -> StoreObservation:
        observation, _ = StoreObservation.objects.update_or_create(store=store, defaults=fields)
        return observation

    # ---- WatchSink ---------------------------------------------------------------------------------

    def namespaces(self, present: set[str]) -> None:
        """A full list of the store namespaces that exist: any running store without one drifted."""
        with _database():
            running = Store.objects.filter(cluster_id=self.cluster_id, status__in=STORE_RUNNING_STATUSES)
            for store in running.exclude(namespace__in=present):
                self._observe(store, namespace_present=False)
                if store_drifted(
                    store_id=store.pk, missing=f"namespace {store.namespace}", actor_label="watcher"
                ):
                    logger.info("store %s: namespace %s gone", store.name, store.namespace)
            self.heartbeat()

    def namespace_gone(self, namespace: str) -> None:
        with _database():
            store = self._store(namespace)
            if store is None:
                return
            self._observe(store, namespace_present=False)
            if store.status in STORE_RUNNING_STATUSES:
                store_drifted(store_id=store.pk, missing=f"namespace {namespace}", actor_label="watcher")

    def releases(self, namespace: str, releases: dict[str, ReleaseState]) -> None:
        with _database():
            store = self._store(namespace)
            if store is None:
                return
            state = releases.get(store.release_name)
            self._observe(
                store,
                namespace_present=True,
                release_revision=state.revision if state else None,
                release_status=state.status if state else "",
            )
            if state is None and store.status in STORE_RUNNING_STATUSES:
                store_drifted(
                    store_id=store.pk, missing=f"helm release {store.release_name}", actor_label="watcher"
                )

    def workloads(self, namespace: str, not_ready: list[WorkloadState]) -> None:
        with _database():
            store = self._store(namespace)
            if store is None:
                return
            if not not_ready:
                self._observe(store, workloads_ready=True, not_ready_reason="", not_ready_since=None)
                if store.status == StoreStatus.DEGRADED:
                    store_recovered(store_id=store.pk)
                return
            reason = "; ".join(f"{w.kind.lower()} {w.name}: {w.reason}" for w in not_ready)[:2000]
            previous = (
                StoreObservation.objects.filter(store=store).values_list("not_ready_since", flat=True).first()
            )
            since = previous or timezone.now()
            self._observe(store, workloads_ready=False, not_ready_reason=reason, not_ready_since=since)
            if store.status == StoreStatus.READY and timezone.now() - since >= degrade_after():
                store_degraded(store_id=store.pk, reason=reason)

    def reachable(self, reachable: bool, reason: str) -> None:
        with _database():
            to = ClusterHealth.HEALTHY if reachable else ClusterHealth.UNREACHABLE
            cluster_health_transition(cluster_id=self.cluster_id, to=to, reason=reason)

    def capacity(self, cpu_millicores: int, memory_mib: int) -> None:
        with _database():
            Cluster.objects.filter(pk=self.cluster_id).update(
                allocatable_cpu_millicores=cpu_millicores, allocatable_memory_mib=memory_mib
            )

    def heartbeat(self) -> None:
        """The watcher is following this cluster (the reconciler leaves drift to it while this is fresh)."""
        Cluster.objects.filter(pk=self.cluster_id).update(watched_at=timezone.now())


def stores_degrade_overdue(*, now: datetime | None = None) -> list[int]:
    """Ready stores whose workloads have been not-ready for degrade_after() (the watcher reports a change,
    not the passing of time, so the periodic pass promotes them). Returns the store ids degraded."""
    now = now or timezone.now()
    overdue = StoreObservation.objects.filter(
        workloads_ready=False, not_ready_since__lte=now - degrade_after(), store__status=StoreStatus.READY
    ).values_list("store_id", "not_ready_reason")
    return [store_id for store_id, reason in overdue if store_degraded(store_id=store_id, reason=reason)]
