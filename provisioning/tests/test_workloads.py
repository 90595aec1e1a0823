"""Quantities as metrics-server reports them, summed the way the activity page shows them."""

from __future__ import annotations

import pytest

from provisioning.workloads import _cpu_millicores, _memory_mib


@pytest.mark.parametrize(
    ("quantity", "millicores"),
    [("250m", 250), ("1", 1000), ("0.5", 500), ("123456789n", 123.456789), ("1500u", 1.5), ("0", 0)],
)
def test_cpu_quantities(quantity, millicores):
    assert _cpu_millicores(quantity) == pytest.approx(millicores)


@pytest.mark.parametrize(
    ("quantity", "mib"),
    [("512Mi", 512), ("1Gi", 1024), ("2048Ki", 2), ("1048576", 1), ("1M", 1e6 / 2**20), ("0", 0)],
)
def test_memory_quantities(quantity, mib):
    assert _memory_mib(quantity) == pytest.approx(mib)
