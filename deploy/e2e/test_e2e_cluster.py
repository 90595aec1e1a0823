"""deploy/e2e-cluster.sh against a fake platform: its arguments, the API calls in order, the store client
call, the teardown checks, and that it stops loudly at the first failure. The real run needs a cluster."""

from __future__ import annotations

import io
import json
import os
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import redirect_stdout
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SCRIPT = REPO_ROOT / "deploy" / "e2e-cluster.sh"
TOKEN = "tok-123"
PASSWORD = "pw-never-printed-9f8e"


@dataclass
class FakePlatform:
    """The platform API as the script expects it: 202 on create and delete, status on read."""

    fail_engine: str = ""
    stores: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[tuple[str, str]] = field(default_factory=list)
    bad_auth: list[str] = field(default_factory=list)
    base_url: str = ""

    def handle(self, method: str, path: str, auth: str, body: dict[str, Any]) -> tuple[int, Any]:
        self.calls.append((method, path))
        if path == "/healthz":
            return 200, {"status": "ok"}
        if path.startswith("/storefront/"):
            # As the real servers answer: Medusa is headless (its root is "Cannot GET /", 404) and
            # serves its admin dashboard at /app; WooCommerce's root is the shop.
            if "-md-" in path and not path.endswith("/app"):
                return 404, "<pre>Cannot GET /</pre>"
            return 200, "<html>Test Product</html>"
        if auth != f"Token {TOKEN}":
            self.bad_auth.append(path)
            return 401, {"detail": "no token"}
        if method == "POST" and path == "/api/v1/stores/":
            self.stores[body["name"]] = {"engine": body["engine"], "status": "requested", "reads": 0}
            return 202, {"name": body["name"], "status": "requested"}
        match = re.fullmatch(r"/api/v1/stores/([a-z0-9-]+)/(credentials/)?", path)
        if not match or match.group(1) not in self.stores:
            return 404, {"detail": "not found"}
        name, store = match.group(1), self.stores[match.group(1)]
        if match.group(2):
            return 200, {
                "admin_url": "x",
                "username": "admin",
                "email": "owner@shop.test",
                "password": PASSWORD,
            }
        if method == "DELETE":
            store["status"], store["reads"] = "deleting", 0
            return 202, {"name": name, "status": "deleting"}
        store["reads"] += 1
        if store["status"] == "deleting" and store["reads"] > 1:
            del self.stores[name]
            return 404, {"detail": "not found"}
        if store["status"] in {"requested", "provisioning"} and store["reads"] > 1:
            store["status"] = "failed" if store["engine"] == self.fail_engine else "ready"
        return 200, {
            "name": name,
            "status": store["status"],
            "status_reason": "helm timed out" if store["status"] == "failed" else "",
            "url": f"{self.base_url}/api/v1/stores/{name}/",
            "public_url": f"{self.base_url}/storefront/{name}/",
        }


@pytest.fixture
def platform() -> Iterator[FakePlatform]:
    fake = FakePlatform()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else {}
            status, payload = fake.handle(
                self.command, self.path, self.headers.get("Authorization", ""), body
            )
            raw = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        do_GET = do_POST = do_DELETE = _serve

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    fake.base_url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield fake
    server.shutdown()
    server.server_close()


@pytest.fixture
def fakes(tmp_path: Path) -> Path:
    """A kubectl that logs its argv and answers like a cluster where store namespaces are gone, and a
    store client module that logs how it was called."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    kubectl = bin_dir / "kubectl"
    kubectl.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/kubectl.log"\n'
        'case "$*" in\n'
        '  *" exec "*) cat > /dev/null; echo "Python 3.11"; echo "E2E_TOKEN ' + TOKEN + '" ;;\n'
        '  "get namespace "*) echo "Error from server (NotFound)" >&2; exit 1 ;;\n'
        "  *) ;;\n"
        "esac\n"
    )
    kubectl.chmod(kubectl.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "fake_storefront.py").write_text(
        "import json, os, sys\n"
        f"with open({str(tmp_path / 'storefront.log')!r}, 'a') as log:\n"
        "    log.write(json.dumps({'argv': sys.argv[1:], 'password': os.environ.get('STORE_ADMIN_PASSWORD')}) + '\\n')\n"
        "print('order 42 placed and confirmed')\n"
    )
    return tmp_path


def run_script(fakes: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        "PATH": f"{fakes / 'bin'}:{os.environ['PATH']}",
        "PYTHON": os.environ.get("PYTHON_FOR_E2E", "python3"),
        "PYTHONPATH": str(fakes),
        "E2E_STOREFRONT_MODULE": "fake_storefront",
        "E2E_POLL_SECONDS": "0.05",
        **env,
    }
    return subprocess.run(
        ["bash", str(SCRIPT), *args],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_full_run_creates_orders_and_tears_down_both_stores(platform: FakePlatform, fakes: Path) -> None:
    result = run_script(fakes, "--url", platform.base_url, "--timeout", "30")

    assert result.returncode == 0, result.stdout + result.stderr
    assert "e2e: PASSED (woocommerce medusa)" in result.stdout
    assert PASSWORD not in result.stdout + result.stderr
    assert TOKEN not in result.stdout + result.stderr
    assert platform.bad_auth == []
    assert platform.stores == {}
    api_calls = [c for c in platform.calls if c[1].startswith("/api/")]
    names = sorted({path.split("/")[4] for _, path in api_calls if path.count("/") >= 5})
    woo, medusa = (n for n in sorted(names, key=lambda n: "-md-" in n))
    for name in (woo, medusa):
        mine = [c for c in api_calls if f"/{name}/" in c[1]]
        assert mine[0] == ("GET", f"/api/v1/stores/{name}/")
        assert ("POST", f"/api/v1/stores/{name}/credentials/") in mine
        assert ("DELETE", f"/api/v1/stores/{name}/") in mine
        assert mine[-1] == ("GET", f"/api/v1/stores/{name}/")
    assert [c for c in api_calls if c[0] == "POST" and c[1] == "/api/v1/stores/"] == [
        ("POST", "/api/v1/stores/")
    ] * 2
    orders = [json.loads(line) for line in (fakes / "storefront.log").read_text().splitlines()]
    assert orders == [
        {
            "argv": [
                "place-order",
                "--engine",
                engine,
                "--store-url",
                f"{platform.base_url}/storefront/{name}/",
                "--admin-user",
                login,
                "--password-env",
                "STORE_ADMIN_PASSWORD",
            ],
            "password": PASSWORD,
        }
        for engine, name, login in (("woocommerce", woo, "admin"), ("medusa", medusa, "owner@shop.test"))
    ]
    pages = [path for method, path in platform.calls if path.startswith("/storefront/")]
    assert pages == [f"/storefront/{woo}/", f"/storefront/{medusa}/app"]
    kubectl = (fakes / "kubectl.log").read_text().splitlines()
    assert kubectl[0] == "-n platform get deployment platform-web platform-worker platform-beat"
    assert kubectl[1] == "-n platform exec -i deployment/platform-web -c web -- python manage.py shell"
    for name in (woo, medusa):
        assert f"get namespace store-{name}" in kubectl
        assert f"get pvc -n store-{name} -o name" in kubectl
    steps = re.findall(r"^==> \[(\d+)\] (.+)$", result.stdout, re.MULTILINE)
    assert [int(n) for n, _ in steps] == list(range(1, len(steps) + 1))
    assert any("place a Cash on Delivery order" in text for _, text in steps)


def test_a_failed_store_stops_the_run_loudly(platform: FakePlatform, fakes: Path) -> None:
    platform.fail_engine = "woocommerce"

    result = run_script(fakes, "--url", platform.base_url, "--timeout", "30")

    assert result.returncode == 1
    assert "helm timed out" in result.stderr
    assert re.search(
        r"e2e: FAILED at step \[\d+\] woocommerce: wait until e2e-wc-\d+ is ready", result.stderr
    )
    assert not (fakes / "storefront.log").exists()


def test_token_from_the_environment_skips_the_web_pod(platform: FakePlatform, fakes: Path) -> None:
    result = run_script(
        fakes,
        "--url",
        platform.base_url,
        "--engines",
        "medusa",
        "--token-env",
        "MY_TOKEN",
        "--keep",
        MY_TOKEN=TOKEN,
    )

    assert result.returncode == 0, result.stderr
    assert "exec" not in (fakes / "kubectl.log").read_text()
    assert "e2e: PASSED (teardown not checked)" in result.stdout
    assert [s["status"] for s in platform.stores.values()] == ["ready"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([], "--url is required"),
        (["--url", "http://x", "--engines", "magento"], "unknown engine 'magento'"),
        (["--url", "http://x", "--timeout", "soon"], "--timeout must be a number"),
        (["--url", "http://x", "--bogus"], "unknown argument: --bogus"),
    ],
)
def test_bad_arguments_exit_2_with_usage(fakes: Path, args: list[str], message: str) -> None:
    result = run_script(fakes, *args)

    assert result.returncode == 2
    assert message in result.stderr
    assert not (fakes / "kubectl.log").exists()


def test_help(fakes: Path) -> None:
    result = run_script(fakes, "--help")

    assert result.returncode == 0
    assert "usage: deploy/e2e-cluster.sh --url DASHBOARD_URL" in result.stdout


@pytest.mark.django_db
def test_issue_token_makes_a_tenant_and_a_working_api_token() -> None:
    from stores.api.authentication import ScopedTokenAuthentication
    from stores.selectors import tenant_for_user

    output = io.StringIO()
    with redirect_stdout(output):
        exec(
            compile((REPO_ROOT / "deploy" / "e2e" / "issue_token.py").read_text(), "issue_token.py", "exec"),
            {},
        )
    token = output.getvalue().strip().split()[-1]

    user, auth = ScopedTokenAuthentication().authenticate_credentials(token.encode())
    assert user.email.startswith("e2e-")
    assert auth.access.tenant == tenant_for_user(user=user)


def test_the_real_store_client_accepts_the_arguments_the_script_passes() -> None:
    """The contract with testkit.storefront: the same flags parse, and the password variable is
    what it reads (unset here, so it stops right after parsing, before any network call)."""
    environment = {"PATH": os.environ["PATH"], "PYTHONPATH": str(REPO_ROOT)}
    script = SCRIPT.read_text()
    assert (
        '"$PYTHON" -m "$storefront_module" place-order --engine "$engine" --store-url "$store_url" \\\n'
        '    --admin-user "$admin_user" --password-env STORE_ADMIN_PASSWORD'
    ) in script

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "testkit.storefront",
            "place-order",
            "--engine",
            "medusa",
            "--store-url",
            "http://127.0.0.1:9/",
            "--admin-user",
            "owner@shop.test",
            "--password-env",
            "STORE_ADMIN_PASSWORD",
        ],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode != 0
    assert "STORE_ADMIN_PASSWORD is empty or unset" in result.stderr
