"""50 concurrent creates, 4 worker processes: time to all ready, helm runs per store, peak helm
processes (which must respect PROVISIONING_CONCURRENCY), and the workers' peak memory."""

from __future__ import annotations

import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from django.db import connections
from django.test import Client

from bench.environment import peak_rss_mib, start_kube_target, start_worker
from bench.fixtures import merchant
from provisioning.models import CommandRecord
from stores.choices import StoreStatus
from stores.models import Store


def helm_processes(root_pid: int) -> int:
    """helm installs running below the benchmark's worker (other helm processes do not count)."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=False
    )
    children: dict[int, list[int]] = {}
    args_of: dict[int, str] = {}
    for line in out.stdout.splitlines():
        pid, ppid, args = line.split(None, 2) if len(line.split(None, 2)) == 3 else (*line.split(None, 1), "")
        children.setdefault(int(ppid), []).append(int(pid))
        args_of[int(pid)] = args
    count, queue = 0, [root_pid]
    while queue:
        pid = queue.pop()
        count += " upgrade --install " in args_of.get(pid, "")
        queue.extend(children.get(pid, []))
    return count


def run(stores: int = 50, workers: int = 4, helm_limit: int = 4, target: str = "double") -> dict[str, object]:
    kube = start_kube_target(target, stores=stores)
    worker = start_worker(concurrency=workers, PROVISIONING_CONCURRENCY=str(helm_limit))
    peak, sampling = 0, True

    def sample() -> None:
        nonlocal peak
        while sampling:
            peak = max(peak, helm_processes(worker.process.pid))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        _, tenant, token = merchant(f"concurrency-{target}")

        def create(index: int) -> int:
            try:
                client = Client(HTTP_AUTHORIZATION=f"Token {token}")
                response = client.post(
                    "/api/v1/stores/",
                    {"name": f"burst-{target}-{index:03d}", "engine": "woocommerce"},
                    content_type="application/json",
                )
                return response.status_code
            finally:
                connections.close_all()

        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=10) as pool:
            codes = list(pool.map(create, range(stores)))
        assert codes.count(202) == stores, codes
        deadline = time.monotonic() + 600
        while Store.objects.filter(tenant=tenant, status=StoreStatus.READY).count() < stores:
            failed = Store.objects.filter(tenant=tenant, status=StoreStatus.FAILED).first()
            if failed:
                raise RuntimeError(f"{failed.name} failed: {failed.status_reason}")
            if time.monotonic() > deadline:
                raise RuntimeError("stores not ready within 600 s")
            time.sleep(0.1)
        elapsed = time.monotonic() - started
        installs = [
            CommandRecord.objects.filter(run__store=store, tool="helm", argv__contains=["upgrade"]).count()
            for store in Store.objects.filter(tenant=tenant)
        ]
        worker_rss = max(peak_rss_mib(pid) for pid in worker.tree_pids())
        return {
            "target": target,
            "stores": stores,
            "worker processes": workers,
            "PROVISIONING_CONCURRENCY": helm_limit,
            "seconds until all ready": round(elapsed, 1),
            "helm installs per store (min/max)": f"{min(installs)}/{max(installs)}",
            "peak concurrent helm processes": peak,
            "celery worker peak RSS MiB": round(worker_rss, 1),
        }
    finally:
        sampling = False
        worker.stop()
        kube.stop()
