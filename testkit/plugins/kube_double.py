"""Pytest plugin providing the ``kube_api`` fixture (load with ``pytest_plugins``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from kubeapi_double.server import KubeApiDouble


@pytest.fixture
def kube_api(tmp_path: Path) -> Iterator[KubeApiDouble]:
    """A fresh Kubernetes API double on a free port, with its kubeconfig at ``tmp_path/kubeconfig``.

    The kubeconfig path is available as ``kube_api.kubeconfig_path``.
    """
    double = KubeApiDouble(ready_delay=0.05, job_failure_delay=2.0)
    double.start()
    double.write_kubeconfig(tmp_path / "kubeconfig")
    try:
        yield double
    finally:
        double.stop()
