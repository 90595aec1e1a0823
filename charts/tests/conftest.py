"""Fixtures shared by the chart tests."""

from __future__ import annotations

from typing import Any

import pytest

from charts.tests.support import CHARTS, CI_VALUES, rendered


@pytest.fixture(params=[(c, v) for c in CHARTS for v in CI_VALUES], ids=lambda p: f"{p[0]}-{p[1]}")
def store(request: pytest.FixtureRequest) -> tuple[str, str, list[dict[str, Any]]]:
    """(chart, ci values name, rendered manifests) for every chart and CI values file."""
    chart, ci = request.param
    return chart, ci, rendered(chart, ci)
