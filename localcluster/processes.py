"""One long-running cluster component as a child process, with its log file and a readiness check."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """In the child before exec: ask the kernel for SIGKILL when the launcher dies, however it dies,
    so a crashed test run never leaves an apiserver or a kubelet behind (prctl(2) PR_SET_PDEATHSIG).
    SIGKILL, not SIGTERM: an apiserver whose etcd went too would wait out a graceful shutdown."""
    libc = ctypes.CDLL("libc.so.6", use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ComponentFailed(RuntimeError):
    """A component exited or did not become ready; the message carries the end of its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Component:
    """A process started in its own session so that stopping it never signals the caller."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_path: Path,
        ready: Callable[[], bool],
        env: dict[str, str] | None = None,
        wrapper: list[str] | None = None,
    ) -> None:
        self.name = name
        self.argv = argv
        self.log_path = log_path
        self.ready = ready
        self.env = env
        # e.g. ["nsenter", "--net=/run/netns/x"]: runs the component inside a network namespace.
        self.wrapper = wrapper or []
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, *, timeout: float = 60) -> None:
        """Start the process and wait until `ready()` is true; ComponentFailed otherwise."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            log.write(f"\n==== {time.strftime('%H:%M:%S')} starting {self.name}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [*self.wrapper, *self.argv],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=self.env if self.env is not None else dict(os.environ),
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 - no threads fork here, and it must run pre-exec
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise ComponentFailed(
                    f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    return
            time.sleep(0.2)
        self.stop()
        raise ComponentFailed(f"{self.name} was not ready after {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, *, grace: float = 10) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; the whole process group goes."""
        if self.process is None:
            return
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process = None

    def kill(self) -> None:
        """SIGKILL at once, like a crash."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        self.process = None
