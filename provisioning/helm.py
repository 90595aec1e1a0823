"""HelmClient: the only code in the platform that runs helm (ruff bans `subprocess` elsewhere).

Argument lists only, never a shell; an explicit timeout; a minimal environment; helm in its own process
group so a cancelled run sends it SIGTERM (helm then rolls its release back) before anything harsher.
Values go in through a 0600 temp file that is always removed. Output is read as JSON into frozen
dataclasses, and known stderr patterns become typed exceptions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from django.conf import settings
from django.utils import timezone

from provisioning.redaction import redact

# How long helm gets to finish (and roll back) after SIGTERM before it is killed.
SIGTERM_GRACE_SECONDS = 30


@dataclass(frozen=True)
class HelmVersion:
    major: int
    minor: int
    patch: int
    raw: str


@dataclass(frozen=True)
class HelmInvocation:
    """One finished helm process: redacted argv, exit code, timings and output."""

    argv: list[str]
    exit_code: int
    stdout: str
    stderr: str
    started_at: datetime
    duration_seconds: float


@dataclass(frozen=True)
class HelmRelease:
    """A release as `helm ... --output json` describes it."""

    name: str
    namespace: str
    revision: int
    status: str
    chart: str = ""
    app_version: str = ""
    description: str = ""
    updated: str = ""

    @property
    def is_pending(self) -> bool:
        return self.status.startswith("pending-")


@dataclass(frozen=True)
class HelmRevision:
    """One line of `helm history`: a revision and its state (deployed, superseded, failed, pending-*)."""

    revision: int
    status: str

    @property
    def was_good(self) -> bool:
        """It was installed and ready once: the current release, or one a later revision replaced."""
        return self.status in {"deployed", "superseded"}


class HelmError(Exception):
    """helm exited non-zero; `invocation` holds the redacted details."""

    reason = "helm failed"

    def __init__(self, message: str, invocation: HelmInvocation | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.invocation = invocation


class ReleaseNotFound(HelmError):
    reason = "release not found"


class OperationInProgress(HelmError):
    """Another install/upgrade/rollback holds the release (a crashed run may have left it pending)."""

    reason = "another helm operation is in progress on this release"


class ClusterUnreachable(HelmError):
    reason = "the Kubernetes API could not be reached"


class HelmTimeout(HelmError):
    """Resources did not become ready in time; with rollback on failure helm undid the change."""

    reason = "resources did not become ready in time"


class InvalidChart(HelmError):
    reason = "the chart or its values are invalid"


class HelmCommandFailed(HelmError):
    reason = "helm failed"


class HelmNotInstalled(HelmError):
    reason = "no helm binary found"


_ERROR_PATTERNS: list[tuple[re.Pattern[str], type[HelmError]]] = [
    (re.compile(r"another operation \(install/upgrade/rollback\) is in progress", re.I), OperationInProgress),
    (re.compile(r"kubernetes cluster unreachable|connection refused|no such host|i/o timeout", re.I), ClusterUnreachable),
    (re.compile(r"timed out waiting|context deadline exceeded|resource not ready|timeout waiting", re.I), HelmTimeout),
    (
        re.compile(
            r"values don't meet the specifications of the schema|chart\.yaml file is missing|"
            r"parse error|unable to build kubernetes objects|path .* not found|template: |"
            r"error converting yaml|chart metadata .* is required|validation failed|is invalid:",
            re.I,
        ),
        InvalidChart,
    ),
    (re.compile(r"release: not found|not found$|release not loaded", re.I), ReleaseNotFound),
]  # fmt: skip


def classify_helm_error(stderr: str) -> type[HelmError]:
    """Map helm's stderr to the most specific error type."""
    text = stderr.strip()
    for pattern, error_type in _ERROR_PATTERNS:
        if pattern.search(text):
            return error_type
    return HelmCommandFailed


def resolve_helm_binary() -> str:
    """HELM_BINARY, else `helm` on PATH, else the pinned binary installed into .tools/bin."""
    if settings.HELM_BINARY:
        return settings.HELM_BINARY
    on_path = shutil.which("helm")
    if on_path:
        return on_path
    pinned = Path(settings.TOOLS_BIN_DIR) / "helm"
    if pinned.exists():
        return str(pinned)
    raise HelmNotInstalled("helm is not installed: set HELM_BINARY or run deploy/tools/install-helm.sh")


_version_cache: dict[str, HelmVersion] = {}
_version_lock = threading.Lock()


class HelmClient:
    """Runs helm for one kubeconfig/context. `on_invocation` receives every finished command."""

    def __init__(
        self,
        *,
        binary: str | None = None,
        kubeconfig: str | None = None,
        kube_context: str | None = None,
        work_dir: Path | None = None,
        on_invocation: Callable[[HelmInvocation], None] | None = None,
    ) -> None:
        self.binary = binary or resolve_helm_binary()
        self.kubeconfig = kubeconfig
        self.kube_context = kube_context
        self.work_dir = Path(work_dir or Path(settings.VAR_DIR) / "helm")
        self.on_invocation = on_invocation

    # ----------------------------------------------------------------------------------------------
    # Version and flags
    # ----------------------------------------------------------------------------------------------
    def version(self) -> HelmVersion:
        """helm's version, detected once per binary."""
        with _version_lock:
            cached = _version_cache.get(self.binary)
        if cached is not None:
            return cached
        invocation = self._run(["version", "--template", "{{.Version}}"], timeout=30, record=False)
        raw = invocation.stdout.strip()
        match = re.match(r"v?(\d+)\.(\d+)\.(\d+)", raw)
        if not match:
            raise HelmCommandFailed(f"cannot read helm version from {raw!r}", invocation)
        version = HelmVersion(int(match[1]), int(match[2]), int(match[3]), raw)
        with _version_lock:
            _version_cache[self.binary] = version
        return version

    def rollback_on_failure_flags(self) -> list[str]:
        """Helm 4 renamed --atomic to --rollback-on-failure and made --wait take a strategy."""
        if self.version().major >= 4:
            return ["--rollback-on-failure", "--wait=watcher"]
        return ["--atomic", "--wait"]

    # ----------------------------------------------------------------------------------------------
    # Argument lists (public so tests can assert them exactly)
    # ----------------------------------------------------------------------------------------------
    def upgrade_install_argv(
        self, *, release: str, chart: str, namespace: str, values_file: str, timeout_seconds: int
    ) -> list[str]:
        """argv for an idempotent install-or-upgrade that rolls back when resources do not get ready."""
        return [
            "upgrade",
            "--install",
            release,
            chart,
            "--namespace",
            namespace,
            "--values",
            values_file,
            *self.rollback_on_failure_flags(),
            "--timeout",
            f"{timeout_seconds}s",
            "--history-max",
            "5",
            "--output",
            "json",
        ]

    def list_argv(self, *, namespace: str | None = None) -> list[str]:
        """argv listing releases in every state. Helm 4 dropped `--all`; the explicit state filters
        mean the same on both majors."""
        scope = ["--namespace", namespace] if namespace else ["--all-namespaces"]
        states = ["--deployed", "--failed", "--pending", "--uninstalling"]
        return ["list", *scope, *states, "--max", "0", "--output", "json"]

    def uninstall_argv(self, *, release: str, namespace: str, timeout_seconds: int) -> list[str]:
        """argv for uninstalling a release (the namespace deletion that follows removes the rest)."""
        return ["uninstall", release, "--namespace", namespace, "--timeout", f"{timeout_seconds}s"]

    def rollback_argv(
        self, *, release: str, namespace: str, revision: int, timeout_seconds: int
    ) -> list[str]:
        """argv for rolling back to `revision` (used to recover a release stuck pending-*)."""
        wait = ["--wait=watcher"] if self.version().major >= 4 else ["--wait"]
        return [
            "rollback", release, str(revision), "--namespace", namespace, *wait, "--timeout", f"{timeout_seconds}s",
        ]  # fmt: skip

    def history_argv(self, *, release: str, namespace: str) -> list[str]:
        """argv for a release's revisions and their states (helm keeps at most --history-max)."""
        return ["history", release, "--namespace", namespace, "--max", "256", "--output", "json"]

    # ----------------------------------------------------------------------------------------------
    # Operations
    # ----------------------------------------------------------------------------------------------
    def upgrade_install(
        self, *, release: str, chart: str, namespace: str, values: dict[str, Any], timeout_seconds: int
    ) -> HelmRelease:
        """Install or upgrade `release`; on failure helm rolls back and a typed HelmError is raised."""
        with self._values_file(values) as values_file:
            argv = self.upgrade_install_argv(
                release=release,
                chart=chart,
                namespace=namespace,
                values_file=values_file,
                timeout_seconds=timeout_seconds,
            )
            invocation = self._run_checked(argv, timeout=timeout_seconds + SIGTERM_GRACE_SECONDS + 30)
        return _parse_release(json.loads(invocation.stdout))

    def uninstall(self, *, release: str, namespace: str, timeout_seconds: int) -> bool:
        """Uninstall `release`; returns False when there was nothing to uninstall."""
        try:
            self._run_checked(
                self.uninstall_argv(release=release, namespace=namespace, timeout_seconds=timeout_seconds),
                timeout=timeout_seconds + 30,
            )
        except ReleaseNotFound:
            return False
        return True

    def rollback(self, *, release: str, namespace: str, revision: int, timeout_seconds: int) -> None:
        """Roll `release` back to `revision`."""
        self._run_checked(
            self.rollback_argv(
                release=release, namespace=namespace, revision=revision, timeout_seconds=timeout_seconds
            ),
            timeout=timeout_seconds + 30,
        )

    def history(self, *, release: str, namespace: str) -> list[HelmRevision]:
        """The release's revisions, oldest first; ReleaseNotFound when helm has no record of it."""
        invocation = self._run_checked(
            self.history_argv(release=release, namespace=namespace), timeout=60, record=False
        )
        return sorted(
            (
                HelmRevision(revision=int(entry.get("revision", 0)), status=entry.get("status", ""))
                for entry in json.loads(invocation.stdout or "[]")
            ),
            key=lambda found: found.revision,
        )

    def list_releases(self, *, namespace: str | None = None) -> list[HelmRelease]:
        """Every release (all states) in `namespace`, or in all namespaces."""
        invocation = self._run_checked(self.list_argv(namespace=namespace), timeout=60, record=False)
        return [_parse_list_entry(entry) for entry in json.loads(invocation.stdout or "[]")]

    # ----------------------------------------------------------------------------------------------
    # Process handling
    # ----------------------------------------------------------------------------------------------
    def environment(self) -> dict[str, str]:
        """A minimal environment: no inherited secrets, helm's state kept under var/helm."""
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.work_dir / "home"),
            "HELM_CACHE_HOME": str(self.work_dir / "cache"),
            "HELM_CONFIG_HOME": str(self.work_dir / "config"),
            "HELM_DATA_HOME": str(self.work_dir / "data"),
            "LANG": "C.UTF-8",
        }
        if self.kubeconfig:
            env["KUBECONFIG"] = self.kubeconfig
        if self.kube_context:
            env["HELM_KUBECONTEXT"] = self.kube_context
        # In a pod, helm finds the API through these; they are addresses, not secrets.
        for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT"):
            if os.environ.get(name):
                env[name] = os.environ[name]
        return env

    @contextmanager
    def _values_file(self, values: dict[str, Any]) -> Iterator[str]:
        tmp_dir = self.work_dir / "tmp"
        tmp_dir.mkdir(parents=True, exist_ok=True)
        descriptor, path = tempfile.mkstemp(prefix="values-", suffix=".json", dir=tmp_dir)  # mode 0600
        try:
            with os.fdopen(descriptor, "w") as handle:
                json.dump(values, handle)
            yield path
        finally:
            Path(path).unlink(missing_ok=True)

    def _run_checked(self, argv: list[str], *, timeout: float, record: bool = True) -> HelmInvocation:
        invocation = self._run(argv, timeout=timeout, record=record)
        if invocation.exit_code != 0:
            error_type = classify_helm_error(invocation.stderr)
            detail = invocation.stderr.strip().splitlines()
            raise error_type(
                redact(detail[-1] if detail else f"helm exited {invocation.exit_code}"), invocation
            )
        return invocation

    def _run(self, argv: list[str], *, timeout: float, record: bool = True) -> HelmInvocation:
        for sub in ("home", "cache", "config", "data"):
            (self.work_dir / sub).mkdir(parents=True, exist_ok=True)
        full_argv = [self.binary, *argv]
        started_at, started = timezone.now(), time.monotonic()
        # The forwarding is in place before helm starts: a SIGTERM that lands between the fork and
        # the first wait must still reach helm, or helm (in its own session) runs on, orphaned.
        with _SigtermForwarding() as forwarding:
            process = subprocess.Popen(
                full_argv,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.environment(),
                start_new_session=True,  # own process group: signals to the worker do not reach helm directly
                text=True,
            )
            try:
                forwarding.attach(process)
                stdout, stderr = process.communicate(timeout=timeout)
                exit_code = process.returncode
            except subprocess.TimeoutExpired:
                stdout, stderr = _stop(process)
                stderr += f"\nhelm did not finish within {timeout:.0f} s and was stopped (timed out waiting)"
                exit_code = process.returncode if process.returncode is not None else -signal.SIGKILL
            except BaseException:
                # Celery's soft time limit or a cancellation: helm gets SIGTERM first so it can roll back.
                _stop(process)
                raise
        invocation = HelmInvocation(
            argv=[redact(arg) for arg in ["helm", *argv]],
            exit_code=exit_code,
            stdout=stdout,
            stderr=redact(stderr),
            started_at=started_at,
            duration_seconds=time.monotonic() - started,
        )
        if record and self.on_invocation is not None:
            self.on_invocation(invocation)
        return invocation


def _stop(process: subprocess.Popen[str]) -> tuple[str, str]:
    """SIGTERM helm's process group, give it a grace period to roll back, then SIGKILL."""
    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    try:
        stdout, stderr = process.communicate(timeout=SIGTERM_GRACE_SECONDS)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        stdout, stderr = process.communicate()
    return stdout or "", stderr or ""


class _SigtermForwarding:
    """While helm runs, a SIGTERM to this process first reaches helm, which then gets its grace period;
    then the process's own SIGTERM handling (Celery's) goes on. A SIGTERM that arrives before helm's
    process is attached is held and acted on at attach.

    Only the main thread may install signal handlers; elsewhere (threads in tests) this is a no-op.
    """

    def __init__(self) -> None:
        self._process: subprocess.Popen[str] | None = None
        self._received = False
        self._previous: Any = None
        self._installed = False

    def __enter__(self) -> _SigtermForwarding:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.getsignal(signal.SIGTERM)
            signal.signal(signal.SIGTERM, self._on_sigterm)
            self._installed = True
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._restore()

    def attach(self, process: subprocess.Popen[str]) -> None:
        self._process = process
        if self._received:
            self._stop_helm_then_pass_on()

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        self._received = True
        if self._process is not None:
            self._stop_helm_then_pass_on()

    def _stop_helm_then_pass_on(self) -> None:
        assert self._process is not None
        _stop(self._process)
        self._restore()
        os.kill(os.getpid(), signal.SIGTERM)

    def _restore(self) -> None:
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False


def _parse_release(data: dict[str, Any]) -> HelmRelease:
    info = data.get("info", {})
    metadata = data.get("chart", {}).get("metadata", {})
    return HelmRelease(
        name=data.get("name", ""),
        namespace=data.get("namespace", ""),
        revision=int(data.get("version", 0)),
        status=info.get("status", ""),
        chart=f"{metadata.get('name', '')}-{metadata.get('version', '')}".strip("-"),
        app_version=metadata.get("appVersion", ""),
        description=info.get("description", ""),
        updated=info.get("last_deployed", ""),
    )


def _parse_list_entry(entry: dict[str, Any]) -> HelmRelease:
    return HelmRelease(
        name=entry.get("name", ""),
        namespace=entry.get("namespace", ""),
        revision=int(entry.get("revision", 0)),
        status=entry.get("status", ""),
        chart=entry.get("chart", ""),
        app_version=entry.get("app_version", ""),
        updated=entry.get("updated", ""),
    )


__all__ = [
    "ClusterUnreachable",
    "HelmClient",
    "HelmCommandFailed",
    "HelmError",
    "HelmInvocation",
    "HelmNotInstalled",
    "HelmRelease",
    "HelmRevision",
    "HelmTimeout",
    "HelmVersion",
    "InvalidChart",
    "OperationInProgress",
    "ReleaseNotFound",
    "classify_helm_error",
    "resolve_helm_binary",
]
