"""A real server process whose database is unreachable answers 503, never a stack trace."""

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read().decode(), dict(response.headers)
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode(), dict(error.headers)


@pytest.fixture
def server_without_database(tmp_path):
    port, dead_port = _free_port(), _free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("PYTEST")},
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:{dead_port}/platform",
        "PLATFORM_ENV": "prod",
        "SECRET_KEY": "x" * 64,
        "ALLOWED_HOSTS": "127.0.0.1",
        "SECURE_SSL_REDIRECT": "false",
        "CELERY_BROKER_URL": f"redis://127.0.0.1:{dead_port}/0",
        "KUBECONFIG": str(tmp_path / "missing-kubeconfig"),
    }
    subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gunicorn",
            "platform_site.wsgi",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
            # As the chart runs it: the post_fork warm-up meets the dead database and broker first.
            "--config",
            "python:platform_site.gunicorn_config",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{base}/healthz", timeout=1)
            break
        except OSError:  # refused, reset or timed out while gunicorn boots
            time.sleep(0.2)
    yield base
    process.terminate()
    output, _ = process.communicate(timeout=20)
    assert "Traceback" not in output, output
    # The warm-up said what it could not open and the worker booted anyway.
    assert "warm-up: the database connection was not opened" in output, output
    assert "warm-up: the broker connection was not opened" in output, output


@pytest.mark.slow
def test_pages_and_api_answer_503_while_the_database_is_down(server_without_database):
    base = server_without_database
    assert _get(f"{base}/healthz")[0] == 200  # the process itself is up
    status, body, _ = _get(f"{base}/readyz")
    assert status == 503 and '"database": "fail"' in body and '"broker": "fail"' in body
    # A signed-in visitor's session lives in the database: the page must say it is unavailable.
    # (__Host-sessionid: the production session cookie's name.)
    status, body, headers = _get(
        f"{base}/admin/", {"Cookie": "__Host-sessionid=abcdefghijklmnopqrstuvwxyz123456"}
    )
    assert status == 503
    assert "database is unavailable" in body and "Traceback" not in body
    assert headers["Retry-After"] == "30"
    # A token-authenticated API call needs the database to check the token.
    status, body, headers = _get(f"{base}/api/v1/stores/", {"Authorization": "Token " + "a" * 64})
    assert status == 503
    assert '"code": "service_unavailable"' in body and headers["Retry-After"] == "30"
