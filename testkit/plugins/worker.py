"""A real Celery worker process for end-to-end tests, wired to the test database, the configured broker
(filesystem by default, Redis when CELERY_BROKER_URL says so) and a Kubernetes API double.

Load with `pytest_plugins`; tests using `platform_worker` must use the `transactional_db` (or
`django_db(transaction=True)`) so the worker process sees committed rows.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.db import connection

from testkit.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def test_database_url() -> str:
    """A DATABASE_URL for the database the running test uses (pytest-django's test database)."""
    params = connection.settings_dict
    if connection.vendor == "sqlite":
        return f"sqlite:///{params['NAME']}"
    if connection.vendor == "postgresql":
        user = params.get("USER") or "postgres"
        password = f":{params['PASSWORD']}" if params.get("PASSWORD") else ""
        host = params.get("HOST") or "127.0.0.1"
        port = params.get("PORT") or 5432
        return f"postgres://{user}{password}@{host}:{port}/{params['NAME']}"
    raise RuntimeError(f"unsupported database vendor {connection.vendor}")


test_database_url.__test__ = False  # type: ignore[attr-defined]  # not a test, despite its name


class WorkerProcess:
    """One `celery worker` process; `stop()` ends it, `kill()` SIGKILLs it like a crashed node."""

    def __init__(self, env: dict[str, str], log_path: Path, concurrency: int = 2, beat: bool = False) -> None:
        self.log_path = log_path
        argv = [
            sys.executable, "-m", "celery", "-A", "platform_site", "worker",
            "--pool", "prefork", "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--hostname", f"test-{os.getpid()}-{time.monotonic_ns()}@%h", "--loglevel", "INFO",
        ]  # fmt: skip
        if beat:
            argv += ["--beat", "--schedule", str(log_path.parent / "beat-schedule")]
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = 45) -> None:
        wait_for(
            lambda: " ready." in self.log or self.process.poll() is not None, timeout=timeout, what="worker"
        )
        if self.process.poll() is not None:
            pytest.fail(f"celery worker exited early:\n{self.log[-4000:]}")

    def child_pids(self) -> list[int]:
        """The prefork pool's child processes (where tasks and helm run)."""
        out = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)], capture_output=True, text=True, check=False
        ).stdout
        return [int(pid) for pid in out.split()]

    def kill(self) -> None:
        """SIGKILL the whole worker (main process and pool), like a node dying; returns once the pool's
        processes are gone (or zombies), so a reaper looking next sees them dead."""
        children = self.child_pids()
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait(10)
        wait_for(lambda: not any(_alive(pid) for pid in children), timeout=10, what="the pool to die")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        # The pool's children and their helm processes live in the worker's session.
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self._log.close()


def _alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a SIGKILLed process takes a moment to exit)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def worker_environment(kube_api: Any, helm_binary: Path | str, **overrides: str) -> dict[str, str]:
    """Environment for a worker that shares this test's database and broker and talks to `kube_api`."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "DJANGO_SETTINGS_MODULE": "platform_site.settings",
            "DATABASE_URL": test_database_url(),
            "CELERY_BROKER_URL": settings.CELERY_BROKER_URL,
            "KUBECONFIG": str(kube_api.kubeconfig_path),
            "HELM_BINARY": str(helm_binary),
            # The API double simulates a cluster; a LocalCluster is a real control plane.
            "CLUSTER_IS_SIMULATED": "1" if getattr(kube_api, "is_simulated", True) else "",
            "PROVISIONING_TIMEOUT": "30",
            "TEARDOWN_NAMESPACE_TIMEOUT": "20",
            "PYTHONUNBUFFERED": "1",
        }
    )
    if settings.CELERY_BROKER_URL.startswith("filesystem://"):
        env["BROKER_DATA_DIR"] = str(Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"]).parent)
    env.update(overrides)
    return env


class WatcherProcess:
    """`manage.py watch_clusters` as its own process, like the platform chart's watcher Deployment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", "watch_clusters"],
            cwd=ROOT,
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
        self._log.close()


@pytest.fixture
def start_watcher(tmp_path: Path) -> Iterator[Callable[..., WatcherProcess]]:
    """Start the fleet watcher: `start_watcher(cluster, **env)` (the cluster the default points at)."""
    started: list[WatcherProcess] = []

    def start(kube_api: Any, **env: str) -> WatcherProcess:
        watcher = WatcherProcess(
            worker_environment(kube_api, "helm", **env), tmp_path / f"watcher-{len(started)}.log"
        )
        started.append(watcher)
        wait_for(
            lambda: "watching clusters" in watcher.log or watcher.process.poll() is not None,
            timeout=30,
            what="the watcher to start",
        )
        if watcher.process.poll() is not None:
            pytest.fail(f"the watcher exited early:\n{watcher.log[-3000:]}")
        return watcher

    yield start
    for watcher in started:
        watcher.stop()


def purge_broker() -> None:
    """Drop messages left by earlier tests (their runs no longer exist)."""
    from platform_site.celery import app

    app.control.purge()


@pytest.fixture
def start_worker(tmp_path: Path) -> Iterator[Callable[..., WorkerProcess]]:
    """Start real Celery worker processes: `start_worker(kube_api, helm_binary, concurrency=2, **env)`."""
    started: list[WorkerProcess] = []
    purge_broker()

    def start(
        kube_api: Any, helm_binary: Path | str, *, concurrency: int = 2, beat: bool = False, **env: str
    ) -> WorkerProcess:
        worker = WorkerProcess(
            worker_environment(kube_api, helm_binary, **env),
            tmp_path / f"worker-{len(started)}.log",
            concurrency=concurrency,
            beat=beat,
        )
        started.append(worker)
        worker.wait_ready()
        return worker

    yield start
    for worker in started:
        worker.stop()
