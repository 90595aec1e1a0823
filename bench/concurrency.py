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


class HelmPeak:
    """While open, samples the helm installs below `root_pid` every `interval` s; `peak` is the most
    seen at once."""

    def __init__(self, root_pid: int, interval: float = 0.05) -> None:
        self.root_pid, self.interval, self.peak = root_pid, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, helm_processes(self.root_pid))
            self._stop.wait(self.interval)

    def __enter__(self) -> HelmPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join(5)


def create_through_api(token: str, names: list[str], threads: int) -> list[int]:
    """POST /api/v1/stores/ for each name (WooCommerce) from `threads` threads in this process;
    the status codes, in order."""

    def create(name: str) -> int:
        try:
            client = Client(HTTP_AUTHORIZATION=f"Token {token}")
            response = client.post(
                "/api/v1/stores/", {"name": name, "engine": "woocommerce"}, content_type="application/json"
            )
            return response.status_code
        finally:
            connections.close_all()

    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(create, names))


def run(stores: int = 50, workers: int = 4, helm_limit: int = 4, target: str = "double") -> dict[str, object]:
    kube = start_kube_target(target, stores=stores)
    worker = start_worker(concurrency=workers, PROVISIONING_CONCURRENCY=str(helm_limit))
    try:
        with HelmPeak(worker.process.pid) as helm:
            _, tenant, token = merchant(f"concurrency-{target}")
            started = time.monotonic()
            codes = create_through_api(token, [f"burst-{target}-{index:03d}" for index in range(stores)], 10)
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
                CommandRecord.objects.filter(
                    run__store=store, tool="helm", argv__contains=["upgrade"]
                ).count()
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
                "peak concurrent helm processes": helm.peak,
                "celery worker peak RSS MiB": round(worker_rss, 1),
            }
    finally:
        worker.stop()
        kube.stop()
