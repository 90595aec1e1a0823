"""Orchestrator overhead and queue latency: stores created one at a time through the API → Redis →
Celery worker → helm → Kubernetes API double.

overhead = (store-ready wall time − helm wall time) / helm wall time, per store; the median is
reported, with the breakdown (queue wait, claim + namespace, secret, pre-helm, helm, finish).
"""

from __future__ import annotations

import time
from datetime import datetime

from django.test import Client

from bench.environment import median, percentile, start_kube_target, start_worker
from bench.fixtures import merchant
from provisioning.models import CommandRecord, ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus
from stores.models import Store, StoreEvent


def _seconds(later: datetime, earlier: datetime) -> float:
    return (later - earlier).total_seconds()


def _wait_ready(name: str, timeout: float = 120) -> Store:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        store = Store.objects.filter(name=name).first()
        if store and store.status in (StoreStatus.READY, StoreStatus.FAILED):
            if store.status == StoreStatus.FAILED:
                raise RuntimeError(f"{name} failed: {store.status_reason}")
            return store
        time.sleep(0.01)
    raise RuntimeError(f"{name} not ready after {timeout} s")


def run(stores: int = 20, target: str = "double") -> dict[str, object]:
    kube = start_kube_target(target, stores=stores)
    worker = start_worker(concurrency=1)
    try:
        _, _, token = merchant(f"overhead-{target}")
        client = Client(HTTP_AUTHORIZATION=f"Token {token}")
        rows = []
        for index in range(stores):
            name = f"overhead-{target}-{index:03d}"
            requested = time.time()
            response = client.post(
                "/api/v1/stores/", {"name": name, "engine": "woocommerce"}, content_type="application/json"
            )
            assert response.status_code == 202, response.content
            store = _wait_ready(name)
            run_row = ProvisioningRun.objects.get(store=store)
            helm = CommandRecord.objects.get(run=run_row, tool="helm", argv__contains=["upgrade"])
            steps = {
                e.step: e.created_at for e in StoreEvent.objects.filter(store=store, kind=StoreEventKind.STEP)
            }
            ready_wall = store.ready_at.timestamp() - requested
            helm_end = helm.started_at.timestamp() + helm.duration_seconds
            rows.append(
                {
                    "overhead": (ready_wall - helm.duration_seconds) / helm.duration_seconds,
                    "queue": _seconds(run_row.started_at, run_row.created_at),
                    "api": run_row.created_at.timestamp() - requested,
                    "claim+namespace": _seconds(steps["namespace"], run_row.started_at),
                    "secret": _seconds(steps["secrets"], steps["namespace"]),
                    "pre-helm": helm.started_at.timestamp() - steps["secrets"].timestamp(),
                    "helm": helm.duration_seconds,
                    "finish": store.ready_at.timestamp() - helm_end,
                    "ready": ready_wall,
                }
            )
        queue = [row["queue"] * 1000 for row in rows]
        return {
            "target": target,
            "stores": stores,
            "median helm seconds per store": round(median([row["helm"] for row in rows]), 2),
            "median overhead %": round(median([row["overhead"] for row in rows]) * 100, 2),
            "breakdown median ms": {
                key: round(median([row[key] for row in rows]) * 1000, 1)
                for key in (
                    "api",
                    "queue",
                    "claim+namespace",
                    "secret",
                    "pre-helm",
                    "helm",
                    "finish",
                    "ready",
                )
            },
            "queue latency p50 ms": round(percentile(queue, 0.50), 1),
            "queue latency p99 ms": round(percentile(queue, 0.99), 1),
        }
    finally:
        worker.stop()
        kube.stop()
