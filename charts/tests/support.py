"""The store charts under test, their CI values files and the helm binaries to test with."""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

from charts.tests.rendering import CHARTS_DIR, REPO_ROOT, render_chart

CHARTS = ("woocommerce", "medusa")
CI_VALUES = ("local", "prod")
HELMS = {"helm3": REPO_ROOT / ".tools" / "bin" / "helm3", "helm4": REPO_ROOT / ".tools" / "bin" / "helm4"}
QUOTA = {"woocommerce": ("1", "1Gi"), "medusa": ("2", "2Gi")}


def ci_values(chart: str, name: str) -> Path:
    """``charts/<chart>/ci/<name>-values.yaml``."""
    return CHARTS_DIR / chart / "ci" / f"{name}-values.yaml"


@cache
def _rendered(chart: str, ci: str) -> tuple[dict[str, Any], ...]:
    return tuple(render_chart(chart, [ci_values(chart, ci)]))


def rendered(chart: str, ci: str = "local") -> list[dict[str, Any]]:
    """Manifests of a chart with one CI values file, rendered once per test session."""
    return copy.deepcopy(list(_rendered(chart, ci)))
