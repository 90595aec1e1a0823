"""Tooling for the reliability suites: a real web process with chosen environment, and a helm watcher."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from testkit.plugins.worker import test_database_url
from testkit.waiting import wait_for

ROOT = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Reply:
    status: int
    body: str
    headers: dict[str, str]
    seconds: float

    def json(self) -> dict:
        return json.loads(self.body)


def http(method: str, url: str, *, body: dict | None = None, headers: dict[str, str] | None = None) -> Reply:
    """One HTTP request with a 30 s cap; HTTP errors are replies, not exceptions."""
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    started = time.monotonic()
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Reply(
                response.status, response.read().decode(), dict(response.headers), time.monotonic() - started
            )
    except urllib.error.HTTPError as error:
        return Reply(error.code, error.read().decode(), dict(error.headers), time.monotonic() - started)


@contextmanager
def web_process(tmp_path: Path, **env_overrides: str) -> Iterator[str]:
    """gunicorn serving the platform on the test database, with `env_overrides` (e.g. a dead broker).

    Yields the base URL; on exit the process is stopped and its output must hold no traceback.
    """
    port = free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "DATABASE_URL": test_database_url(),
            "PLATFORM_ENV": "local",
            "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
            "PYTHONUNBUFFERED": "1",
            **env_overrides,
        }
    )
    log_path = tmp_path / f"gunicorn-{port}.log"
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "platform_site.wsgi", "--bind", f"127.0.0.1:{port}",
             "--workers", "1", "--timeout", "60"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"gunicorn exited early:\n{log_path.read_text()}")
        try:
            return http("GET", f"{base}/healthz").status == 200
        except OSError:  # refused, reset or timed out while gunicorn boots
            return False

    try:
        wait_for(up, timeout=60, what="gunicorn to answer /healthz")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
    output = log_path.read_text()
    assert "Traceback" not in output, output


def helm_processes(namespace: str) -> list[str]:
    """argv of helm processes acting on `namespace` (the `upgrade`/`uninstall`, not wrappers' sleeps)."""
    out = subprocess.run(["ps", "-ww", "-eo", "args="], capture_output=True, text=True, check=False).stdout
    return [
        line
        for line in out.splitlines()
        if namespace in line
        and ("upgrade --install" in line or " uninstall " in line)
        and "helm" in line.split()[0]
    ]


@dataclass
class HelmWatcher:
    """Samples `ps` in a background thread and keeps the most helm processes seen at once on a namespace."""

    namespace: str
    most_at_once: int = 0
    samples: int = 0
    seen: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def __enter__(self) -> HelmWatcher:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.is_set():
            running = helm_processes(self.namespace)
            self.samples += 1
            self.most_at_once = max(self.most_at_once, len(running))
            for line in running:
                if line not in self.seen:
                    self.seen.append(line)
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
