"""The real Medusa 2.21.2 from deploy/medusa, running natively (not in Kubernetes) on this machine.

Installs the app with `npm ci` (cached in var/medusa-native keyed by the lock file's sha256), points
it at a fresh PostgreSQL database and Redis DB 7, runs `node bootstrap.js` twice (the second run
must change nothing), starts `medusa start` on a free loopback port, places and captures an order
with the store client, places a second one through the CLI, and stops the server. Timings of every
phase and the server's RSS are printed (and recorded in charts/medusa/README.md).

Only `npm ci` uses the network (the npm registry); Medusa's telemetry is off.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from testkit.reporting import report_lines
from testkit.storefront import MedusaStoreClient
from testkit.storefront.http import HttpSession

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
APP_SOURCE = ROOT / "deploy" / "medusa"
CACHE = ROOT / "var" / "medusa-native"
APP = CACHE / "app"
INSTALLED_MARKER = APP / ".installed-lock-sha256"
PG = {"host": "127.0.0.1", "port": 5432, "user": "postgres"}
REDIS_URL = "redis://127.0.0.1:6379/7"
# Counted before and after the second bootstrap: everything the seed and the admin step create.
SEEDED_TABLES = [
    "user",
    "provider_identity",
    "region",
    "tax_region",
    "sales_channel",
    "api_key",
    "stock_location",
    "shipping_profile",
    "fulfillment_set",
    "service_zone",
    "geo_zone",
    "shipping_option",
    "product",
    "product_variant",
    "price",
    "inventory_item",
    "inventory_level",
    "store",
    "store_currency",
]


@dataclass
class Run:
    """What the module's tests share: where the app runs and what was measured."""

    env: dict[str, str]
    database: str
    admin_email: str
    admin_password: str
    timings: dict[str, float] = field(default_factory=dict)
    notes: dict[str, str] = field(default_factory=dict)
    first_bootstrap_log: str = ""
    second_bootstrap_log: str = ""
    counts_before: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    counts_after: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    base_url: str = ""
    server_log: Path | None = None


def _postgres_connect(dbname: str = "postgres"):
    psycopg = pytest.importorskip("psycopg")
    try:
        return psycopg.connect(dbname=dbname, autocommit=True, connect_timeout=3, **PG)
    except psycopg.OperationalError as exc:
        pytest.skip(f"PostgreSQL is not reachable on {PG['host']}:{PG['port']} as {PG['user']}: {exc}")


def _redis_reachable() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 6379), timeout=2) as conn:
            conn.sendall(b"PING\r\n")
            return conn.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _lock_digest() -> str:
    digest = hashlib.sha256()
    for name in ("package.json", "package-lock.json"):
        digest.update((APP_SOURCE / name).read_bytes())
    return digest.hexdigest()


def _install_app(timings: dict[str, float], notes: dict[str, str]) -> None:
    """`npm ci` into var/medusa-native/app unless the cached node_modules came from the same lock."""
    npm = shutil.which("npm")
    if shutil.which("node") is None or npm is None:
        pytest.skip("node and npm are needed to run Medusa natively")
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / ".install.lock", "w") as lock:
        # Two local pytest runs at once must not install into the same folder.
        fcntl.flock(lock, fcntl.LOCK_EX)
        wanted = _lock_digest()
        cached = INSTALLED_MARKER.is_file() and INSTALLED_MARKER.read_text().strip() == wanted
        if cached and (APP / "node_modules" / ".bin" / "medusa").exists():
            notes["npm ci cache"] = "reused the cached node_modules (same package-lock.json)"
            timings["npm ci"] = 0.0
        else:
            shutil.rmtree(APP, ignore_errors=True)
            APP.mkdir(parents=True)
            for name in ("package.json", "package-lock.json"):
                shutil.copy2(APP_SOURCE / name, APP / name)
            started = time.monotonic()
            result = subprocess.run(
                [npm, "ci", "--no-audit", "--no-fund", "--prefer-offline", "--loglevel=error"],
                cwd=APP,
                env={**_base_env(), "npm_config_update_notifier": "false"},
                capture_output=True,
                text=True,
                timeout=900,
            )
            timings["npm ci"] = time.monotonic() - started
            assert result.returncode == 0, f"npm ci failed:\n{result.stderr[-3000:]}"
            INSTALLED_MARKER.write_text(wanted)
            notes["npm ci cache"] = "installed from package-lock.json"
    # The scripts are copied on every run, so edits in deploy/medusa are always what gets tested.
    for script in APP_SOURCE.glob("*.js"):
        shutil.copy2(script, APP / script.name)


def _base_env() -> dict[str, str]:
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", str(CACHE)),
        "LANG": "C.UTF-8",
    }


def _bootstrap(run: Run, label: str) -> str:
    """`node bootstrap.js`, timed; the peak RSS of its largest `medusa` step comes from wait4()."""
    log_path = CACHE / f"{label.replace(' ', '-').replace('#', '')}-{run.database}.log"
    started = time.monotonic()
    with open(log_path, "w+") as log:
        process = subprocess.Popen(
            ["node", "bootstrap.js"], cwd=APP, env=run.env, stdout=log, stderr=subprocess.STDOUT
        )
        # wait4() instead of Popen.wait(): it also returns the rusage (peak RSS) of the reaped tree.
        watchdog = threading.Timer(600, process.kill)
        watchdog.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            watchdog.cancel()
        process.returncode = os.waitstatus_to_exitcode(status)
        log.seek(0)
        output = log.read()
    log_path.unlink()
    run.timings[label] = time.monotonic() - started
    run.notes[f"{label}: peak RSS of one step"] = f"{usage.ru_maxrss / 1024:.0f} MiB"
    assert process.returncode == 0, f"{label} failed:\n{output[-4000:]}"
    for step, name in (
        ("db:migrate", "migrations"),
        ("exec ./admin-user.js", "admin user"),
        ("exec ./seed.js", "seed"),
    ):
        match = re.search(rf"medusa {re.escape(step)}\s*exited 0 after ([\d.]+)s", output)
        if match:
            run.timings[f"{label}: {name}"] = float(match.group(1))
    return output


def _snapshot(database: str) -> dict[str, list[tuple[str, str]]]:
    """Every seeded row's id and updated_at: a second bootstrap must leave both unchanged."""
    with _postgres_connect(database) as conn:
        rows = {}
        for table in SEEDED_TABLES:
            result = conn.execute(
                f'SELECT id, updated_at::text FROM "{table}" WHERE deleted_at IS NULL ORDER BY id'  # noqa: S608
            )
            rows[table] = [tuple(row) for row in result.fetchall()]
        return rows


def _process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo.extend(children.get(pid, []))
    return tree


def _rss_mib(root: int) -> float:
    """VmRSS summed over the server's process tree, in MiB."""
    total_kib = 0
    for pid in _process_tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
        if match:
            total_kib += int(match.group(1))
    return total_kib / 1024


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=2) as response:  # noqa: S310
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def _stop(process: subprocess.Popen) -> str:
    """SIGTERM to the server's process group, SIGKILL if it is still there after 20 s."""
    if process.poll() is not None:
        return f"had already exited with {process.returncode}"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
        return "stopped by SIGTERM"
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        return "killed (SIGTERM was not enough within 20 s)"


def _print_report(run: Run, config: pytest.Config) -> None:
    """Print through the terminal reporter (shown even when output is captured) and keep a copy."""
    lines = ["", "Medusa 2.21.2 natively (not in Kubernetes): phase timings and RSS"]
    lines += [f"  {name:<38} {seconds:7.1f} s" for name, seconds in run.timings.items()]
    lines += [f"  {name:<38} {note}" for name, note in run.notes.items()]
    (CACHE / "last-run.txt").write_text("\n".join(lines) + "\n")
    report_lines(config, lines)


@pytest.fixture(scope="module")
def medusa(request: pytest.FixtureRequest) -> Iterator[Run]:
    """Install, create a database, bootstrap twice, start the server; tear all of it down after."""
    admin = _postgres_connect()
    total_started = time.monotonic()
    run = Run(
        env={},
        database=f"medusa_native_{secrets.token_hex(4)}",
        admin_email="owner@example.com",
        admin_password=secrets.token_urlsafe(18),
    )
    _install_app(run.timings, run.notes)
    admin.execute(f'CREATE DATABASE "{run.database}"')
    process: subprocess.Popen | None = None
    try:
        redis = {"REDIS_URL": REDIS_URL} if _redis_reachable() else {}
        run.notes["redis"] = REDIS_URL if redis else "not reachable: in-memory event bus and workflow engine"
        port = _free_port()
        run.base_url = f"http://127.0.0.1:{port}"
        run.env = {
            **_base_env(),
            **redis,
            "NODE_ENV": "production",
            "MEDUSA_DISABLE_TELEMETRY": "true",
            # No `medusa build` here: the API is what is under test, the admin UI is proven by the image.
            "MEDUSA_ADMIN_DISABLE": "true",
            "DATABASE_URL": f"postgres://{PG['user']}@{PG['host']}:{PG['port']}/{run.database}",
            "JWT_SECRET": secrets.token_hex(32),
            "COOKIE_SECRET": secrets.token_hex(32),
            "STORE_CORS": run.base_url,
            "ADMIN_CORS": run.base_url,
            "AUTH_CORS": run.base_url,
            "ADMIN_EMAIL": run.admin_email,
            "ADMIN_PASSWORD": run.admin_password,
            "STORE_NAME": "Native Proof",
        }
        run.first_bootstrap_log = _bootstrap(run, "bootstrap #1")
        run.counts_before = _snapshot(run.database)
        run.second_bootstrap_log = _bootstrap(run, "bootstrap #2")
        run.counts_after = _snapshot(run.database)

        run.server_log = CACHE / f"server-{run.database}.log"
        started = time.monotonic()
        with open(run.server_log, "w") as log:
            process = subprocess.Popen(
                ["node_modules/.bin/medusa", "start", "--host", "127.0.0.1", "--port", str(port)],
                cwd=APP,
                env=run.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while not _healthy(run.base_url):
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"medusa start never became healthy:\n{run.server_log.read_text()[-4000:]}")
            time.sleep(0.25)
        run.timings["start to /health 200"] = time.monotonic() - started
        run.notes["RSS after /health"] = f"{_rss_mib(process.pid):.0f} MiB"
        run.notes["server pid"] = str(process.pid)
        yield run
        run.notes["RSS after the orders"] = f"{_rss_mib(process.pid):.0f} MiB"
    finally:
        if process is not None:
            run.notes["server stop"] = _stop(process)
        admin.execute(f'DROP DATABASE IF EXISTS "{run.database}" WITH (FORCE)')
        admin.close()
        if run.server_log is not None:
            run.server_log.unlink(missing_ok=True)
        run.timings["total (fixture)"] = time.monotonic() - total_started
        _print_report(run, request.config)


def test_bootstrap_creates_the_admin_and_everything_a_checkout_needs(medusa: Run) -> None:
    log = medusa.first_bootstrap_log
    assert f"admin user {medusa.admin_email} created" in log
    for part in ("region", "tax region", "stock location", "fulfillment set", "shipping option", "product"):
        assert f"seed: {part} created" in log, part
    # The password is passed through the environment only, never printed by the bootstrap.
    assert medusa.admin_password not in log
    counts = medusa.counts_before
    assert len(counts["region"]) == len(counts["product"]) == len(counts["shipping_option"]) == 1
    assert len(counts["api_key"]) == 1  # Medusa's own default publishable key, reused by the seed


def test_second_bootstrap_changes_nothing(medusa: Run) -> None:
    assert medusa.counts_after == medusa.counts_before
    log = medusa.second_bootstrap_log
    assert f"admin user {medusa.admin_email} already exists" in log
    assert "seed: store settings already applied" in log
    assert not re.search(r"seed: .* created", log)


def test_an_order_is_placed_authorized_and_captured(medusa: Run) -> None:
    steps: list[str] = []
    client = MedusaStoreClient(
        store_url=medusa.base_url,
        admin_user=medusa.admin_email,
        admin_password=medusa.admin_password,
        capture=True,
        reporter=lambda step, message: steps.append(step),
    )
    started = time.monotonic()
    order = client.place_order()
    medusa.timings["order (login → captured)"] = time.monotonic() - started

    assert order.order_id.startswith("order_")
    assert order.payment_status == "captured"
    assert order.currency == "eur"
    assert float(order.total) == pytest.approx(19.99 + 5)  # product price + flat shipping
    # The key the client found through the Admin API is the one the seed linked and logged.
    assert f"seed: publishable API key {client.publishable_key}" in medusa.first_bootstrap_log
    assert steps[:2] == ["admin login", "publishable key"]
    assert steps[-2:] == ["confirm order (admin)", "capture payment (admin)"]


def test_the_cli_places_an_order_with_the_password_from_the_environment(medusa: Run) -> None:
    env = {**_base_env(), "STORE_ADMIN_PASSWORD": medusa.admin_password}
    argv = [sys.executable, "-m", "testkit.storefront", "place-order", "--engine", "medusa"]
    argv += ["--store-url", medusa.base_url, "--admin-user", medusa.admin_email]
    started = time.monotonic()
    result = subprocess.run(
        [*argv, "--password-env", "STORE_ADMIN_PASSWORD"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    medusa.timings["order via the CLI"] = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert "[medusa] complete cart: order order_" in result.stdout
    assert re.search(
        r"order placed: id order_\w+ number \d+ status pending payment authorized", result.stdout
    )

    wrong = subprocess.run(
        [*argv, "--password-env", "NOT_THE_PASSWORD"],
        cwd=ROOT,
        env={**env, "NOT_THE_PASSWORD": "wrong"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert wrong.returncode == 1
    assert "step 'admin login' failed" in wrong.stderr
    assert f"POST {medusa.base_url}/auth/user/emailpass → HTTP 401" in wrong.stderr


def test_the_order_is_visible_in_the_admin_api(medusa: Run) -> None:
    session = HttpSession(medusa.base_url)
    login = session.request(
        "login",
        "POST",
        "/auth/user/emailpass",
        json_body={"email": medusa.admin_email, "password": medusa.admin_password},
    )
    response = session.request(
        "orders",
        "GET",
        "/admin/orders",
        query={"fields": "id,display_id,payment_status,email"},
        headers={"Authorization": f"Bearer {login.json()['token']}"},
    )
    orders = response.json()["orders"]
    assert len(orders) >= 1
    assert {order["payment_status"] for order in orders} <= {"authorized", "captured"}
    assert {order["email"] for order in orders} == {"acceptance@example.com"}
