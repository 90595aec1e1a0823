"""API create latency from a real gunicorn, side by side: the old web settings (Django's bare WSGI
app, 2 sync workers, no preload) against the platform's (platform_site.wsgi warmed at boot,
`--preload`) with sync and gthread workers, and with the chart's post_fork hook that opens each
worker's connections before its first request. For each: the first request on every worker, then bursts
of 20 and 100 concurrent creates; p50/p95/p99 in ms. Creates only enqueue (no worker consumes here):
this is the request path alone, which must not touch the Kubernetes client."""

from __future__ import annotations

import json
import threading
import time
import urllib.request
from concurrent.futures import ThreadPoolExecutor

from django.db import connections

from bench.environment import Process, free_port, percentile
from bench.fixtures import merchant

VARIANTS = (
    # label, WSGI app, extra gunicorn arguments
    ("before: bare Django app, 2 sync workers", "django.core.wsgi:get_wsgi_application()", ["--workers=2"]),
    ("platform wsgi + preload, 2 sync workers", "platform_site.wsgi", ["--workers=2", "--preload"]),
    (
        "platform wsgi + preload + post_fork connections, 2 sync workers (the chart's)",
        "platform_site.wsgi",
        ["--workers=2", "--preload", "--config=python:platform_site.gunicorn_config"],
    ),
    (
        "platform wsgi + preload, 2 gthread workers x 4",
        "platform_site.wsgi",
        ["--workers=2", "--preload", "--worker-class=gthread", "--threads=4"],
    ),
)
WORKERS = 2


def _create(port: int, token: str, name: str) -> float:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/api/v1/stores/",
        data=json.dumps({"name": name, "engine": "woocommerce"}).encode(),
        headers={"Authorization": f"Token {token}", "Content-Type": "application/json"},
        method="POST",
    )
    started = time.perf_counter()
    with urllib.request.urlopen(request, timeout=60) as response:
        response.read()
        assert response.status == 202, response.status
    return (time.perf_counter() - started) * 1000


def _burst(port: int, token: str, names: list[str]) -> list[float]:
    # Every request is in flight at once: a barrier releases them together.
    barrier = threading.Barrier(len(names))

    def one(name: str) -> float:
        barrier.wait()
        return _create(port, token, name)

    with ThreadPoolExecutor(max_workers=len(names)) as pool:
        return list(pool.map(one, names))


def _figures(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 0.5):.0f} ms, p95 {percentile(values, 0.95):.0f} ms, "
        f"p99 {percentile(values, 0.99):.0f} ms"
    )


def run() -> dict[str, object]:
    _, _, token = merchant("api-burst")
    connections.close_all()
    results: dict[str, object] = {}
    for index, (label, app, arguments) in enumerate(VARIANTS):
        port = free_port()
        web = Process(
            f"gunicorn-burst-{index}",
            [".venv/bin/gunicorn", app, f"--bind=127.0.0.1:{port}", "--timeout=60", *arguments],
            env={"PLATFORM_MAX_LIVE_STORES": "0"},
        )
        try:
            booted = time.monotonic()
            for _ in range(WORKERS):
                web.wait_for_output("Booting worker")
            deadline = time.monotonic() + 60
            while web.log_path.read_text().count("Booting worker") < WORKERS and time.monotonic() < deadline:
                time.sleep(0.05)
            boot_seconds = time.monotonic() - booted
            # One request per worker, all at once, before any other: each sync worker takes one.
            first = _burst(port, token, [f"first-{index}-{n}" for n in range(WORKERS)])
            burst_20 = _burst(port, token, [f"b20-{index}-{n:02d}" for n in range(20)])
            burst_100 = _burst(port, token, [f"b100-{index}-{n:03d}" for n in range(100)])
        finally:
            web.stop()
        results[label] = (
            f"boot {boot_seconds:.1f} s; first request per worker max {max(first):.0f} ms; "
            f"burst 20: {_figures(burst_20)}; burst 100: {_figures(burst_100)}"
        )
    return results
