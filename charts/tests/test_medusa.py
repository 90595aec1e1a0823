"""Medusa specifics: the chart and the image in deploy/medusa agree (command, port, user, every
environment variable the config requires), and bootstrap.js runs its steps in order, retrying
migrations and never putting the admin password on a command line (executed with a fake CLI)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from charts.tests.rendering import REPO_ROOT, find
from charts.tests.support import rendered

IMAGE_DIR = REPO_ROOT / "deploy" / "medusa"
MEDUSA_PACKAGES = ("@medusajs/medusa", "@medusajs/framework", "@medusajs/cli", "@medusajs/admin-sdk")
FAKE_MEDUSA = r"""#!/bin/sh
# Stand-in for the medusa CLI: records calls; db:migrate fails until FAKE_MIGRATE_FAILURES are used up.
printf '%s\n' "$*" >> "$FAKE_STATE/calls.log"
if [ "$1" = "db:migrate" ]; then
  failures=$(cat "$FAKE_STATE/failures" 2>/dev/null || echo "$FAKE_MIGRATE_FAILURES")
  if [ "$failures" -gt 0 ]; then
    echo $((failures - 1)) > "$FAKE_STATE/failures"
    exit 1
  fi
fi
env > "$FAKE_STATE/env-$1"
"""


def _env_names(container: dict[str, Any]) -> set[str]:
    return {e["name"] for e in container["env"]}


def _deployment_spec() -> dict[str, Any]:
    return find(rendered("medusa"), "Deployment", "medusa")["spec"]


def test_server_migrates_first_then_starts_on_9000() -> None:
    spec = _deployment_spec()
    pod = spec["template"]["spec"]
    (migrate,) = pod["initContainers"]
    (server,) = pod["containers"]

    assert spec["strategy"] == {"type": "Recreate"}
    assert migrate["command"] == ["node_modules/.bin/medusa", "db:migrate"]
    assert server["command"] == ["node_modules/.bin/medusa", "start", "--host", "0.0.0.0", "--port", "9000"]
    assert server["image"] == migrate["image"] == "medusa-store:2.21.2-2"
    assert server["ports"] == [{"name": "http", "containerPort": 9000, "protocol": "TCP"}]
    assert server["startupProbe"]["httpGet"] == {"path": "/health", "port": "http"}
    assert server["startupProbe"]["failureThreshold"] * server["startupProbe"]["periodSeconds"] >= 120
    assert server["resources"]["limits"]["memory"] in {"768Mi", "896Mi", "1Gi"}
    assert pod["securityContext"]["runAsUser"] == 1000


def test_bootstrap_job_is_a_repeatable_hook() -> None:
    job = find(rendered("medusa"), "Job", "medusa-bootstrap")
    (container,) = job["spec"]["template"]["spec"]["containers"]

    assert job["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"
    assert job["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation"
    assert container["command"] == ["node", "bootstrap.js"]
    seed_vars = set(re.findall(r"process\.env\.([A-Z_]+)", (IMAGE_DIR / "seed.js").read_text()))
    assert seed_vars | {"ADMIN_EMAIL", "ADMIN_PASSWORD"} <= _env_names(container)


def test_chart_provides_every_variable_medusa_config_requires() -> None:
    config = (IMAGE_DIR / "medusa-config.js").read_text()
    required = set(re.findall(r'required\("([A-Z_]+)"\)', config))
    (server,) = _deployment_spec()["template"]["spec"]["containers"]

    assert {
        "JWT_SECRET",
        "COOKIE_SECRET",
        "STORE_CORS",
        "ADMIN_CORS",
        "AUTH_CORS",
        "DATABASE_PASSWORD",
    } <= required
    assert required | {"REDIS_URL"} <= _env_names(server)
    cors = {e["name"]: e.get("value") for e in server["env"]}
    assert cors["STORE_CORS"] == cors["ADMIN_CORS"] == cors["AUTH_CORS"] == "http://demo.127.0.0.1.nip.io"


def test_packages_are_pinned_to_one_exact_version_and_locked() -> None:
    package = json.loads((IMAGE_DIR / "package.json").read_text())
    lock = json.loads((IMAGE_DIR / "package-lock.json").read_text())
    versions = {package["dependencies"][name] for name in MEDUSA_PACKAGES}

    assert len(versions) == 1
    (version,) = versions
    assert re.fullmatch(r"2\.\d+\.\d+", version)
    assert lock["packages"][""]["dependencies"] == package["dependencies"]
    for name in MEDUSA_PACKAGES:
        assert lock["packages"][f"node_modules/{name}"]["version"] == version


def test_dockerfile_matches_the_chart() -> None:
    dockerfile = (IMAGE_DIR / "Dockerfile").read_text()
    (server,) = _deployment_spec()["template"]["spec"]["containers"]

    assert re.search(r"^ARG NODE_IMAGE=node:20\.\d+\.\d+-bookworm-slim$", dockerfile, re.MULTILINE)
    assert dockerfile.count("FROM ${NODE_IMAGE}") == 2
    assert "npm ci" in dockerfile
    assert "medusa build" in dockerfile
    assert "USER 1000:1000" in dockerfile
    assert "EXPOSE 9000" in dockerfile
    assert f"CMD {json.dumps(server['command'])}" in dockerfile
    assert "COPY bootstrap.js admin-user.js seed.js ./" in dockerfile


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
@pytest.mark.parametrize("script", ["medusa-config.js", "bootstrap.js", "admin-user.js", "seed.js"])
def test_scripts_are_valid_javascript(script: str) -> None:
    result = subprocess.run(["node", "--check", str(IMAGE_DIR / script)], capture_output=True, text=True)

    assert result.returncode == 0, result.stderr


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_bootstrap_retries_migrations_then_creates_admin_then_seeds(tmp_path: Path) -> None:
    shutil.copy(IMAGE_DIR / "bootstrap.js", tmp_path / "bootstrap.js")
    fake = tmp_path / "node_modules" / ".bin" / "medusa"
    fake.parent.mkdir(parents=True)
    fake.write_text(FAKE_MEDUSA)
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "FAKE_STATE": str(tmp_path),
        "FAKE_MIGRATE_FAILURES": "2",
        "BOOTSTRAP_RETRY_SECONDS": "0",
        "ADMIN_EMAIL": "admin@example.com",
        "ADMIN_PASSWORD": "Zq8-not-a-real-password-3xT",
    }

    result = subprocess.run(["node", "bootstrap.js"], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert result.returncode == 0, result.stdout + result.stderr
    calls = (tmp_path / "calls.log").read_text().splitlines()
    assert calls == ["db:migrate", "db:migrate", "db:migrate", "exec ./admin-user.js", "exec ./seed.js"]
    assert "ADMIN_PASSWORD=Zq8-not-a-real-password-3xT" in (tmp_path / "env-exec").read_text()


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_bootstrap_refuses_to_run_without_admin_credentials(tmp_path: Path) -> None:
    shutil.copy(IMAGE_DIR / "bootstrap.js", tmp_path / "bootstrap.js")
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}

    result = subprocess.run(["node", "bootstrap.js"], cwd=tmp_path, env=env, capture_output=True, text=True)

    assert result.returncode == 1
    assert "ADMIN_EMAIL is required" in result.stdout
