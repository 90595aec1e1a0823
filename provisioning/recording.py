"""The record of one run: every change-making helm and Kubernetes call as a CommandRecord, and the
database retry that keeps a finished call's record from being lost in a brief database outage."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from django.db import InterfaceError, OperationalError, close_old_connections

from provisioning.helm import HelmInvocation
from provisioning.services import command_record_create

T = TypeVar("T")


def with_database_retry(call: Callable[[], T], *, attempts: int = 6) -> T:
    """Run a short transaction, retrying while the database is briefly unreachable, so a finished helm
    run is never left half-recorded. Each attempt is all-or-nothing."""
    for attempt in range(attempts):
        try:
            return call()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            close_old_connections()
            time.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def summarise_helm_stdout(stdout: str) -> str:
    """helm's JSON output carries the whole rendered manifest; the run keeps only what a person needs."""
    try:
        data = json.loads(stdout)
    except ValueError:
        return stdout[:2000]
    if isinstance(data, dict):
        info = data.get("info", {})
        return (
            f"release {data.get('name')} revision {data.get('version')}: "
            f"{info.get('status')} ({info.get('description')})"
        )
    return stdout[:2000]


class RunRecorder:
    """Stores every change-making call of one run (retried through a brief database outage: the call
    it records has already happened) and adds up the time spent in helm."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.helm_seconds = 0.0

    def kube(
        self, argv: list[str], exit_code: int, started_at: datetime, duration: float, output: str
    ) -> None:
        """Record one Kubernetes API call (the signature of provisioning.cluster.Recorder)."""
        with_database_retry(
            lambda: command_record_create(
                run_id=self.run_id,
                tool="kubernetes-api",
                argv=argv,
                exit_code=exit_code,
                started_at=started_at,
                duration_seconds=duration,
                output=output,
            )
        )

    def helm(self, invocation: HelmInvocation) -> None:
        """Record one helm invocation (HelmClient's on_invocation callback)."""
        self.helm_seconds += invocation.duration_seconds
        output = invocation.stderr
        if invocation.exit_code == 0 and invocation.stdout:
            output = f"{output}\n{summarise_helm_stdout(invocation.stdout)}".strip()
        with_database_retry(
            lambda: command_record_create(
                run_id=self.run_id,
                tool="helm",
                argv=invocation.argv,
                exit_code=invocation.exit_code,
                started_at=invocation.started_at,
                duration_seconds=invocation.duration_seconds,
                output=output,
            )
        )
