"""Render the store charts with ``helm template`` and return the parsed manifests.

Used by the chart tests and by other code that needs to look at what a store release would create
without a cluster. Values always travel through a temporary file (``-f``), never ``--set``.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHARTS_DIR = REPO_ROOT / "charts"
DEFAULT_HELM = REPO_ROOT / ".tools" / "bin" / "helm"
HELM_TIMEOUT_SECONDS = 60


class HelmTemplateError(RuntimeError):
    """``helm template`` exited non-zero; ``stderr`` holds helm's message (e.g. a schema error)."""

    def __init__(self, argv: list[str], returncode: int, stderr: str) -> None:
        super().__init__(f"{' '.join(argv)} exited {returncode}: {stderr.strip()}")
        self.returncode = returncode
        self.stderr = stderr


def helm_binary(helm: str | None = None) -> str:
    """Return the helm to run: the argument, else ``$HELM_BINARY``, else the repository's pinned helm."""
    return helm or os.environ.get("HELM_BINARY") or str(DEFAULT_HELM)


def chart_path(chart: str) -> Path:
    """Resolve a chart given by name (``woocommerce``) or by path."""
    candidate = Path(chart)
    if candidate.is_dir():
        return candidate.resolve()
    return CHARTS_DIR / chart


def run_helm(args: list[str], helm: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run helm with an argument list and a minimal environment; never raises on a non-zero exit."""
    with tempfile.TemporaryDirectory(prefix="helm-home-") as home:
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "HELM_CACHE_HOME": f"{home}/cache",
            "HELM_CONFIG_HOME": f"{home}/config",
            "HELM_DATA_HOME": f"{home}/data",
        }
        return subprocess.run(
            [helm_binary(helm), *args],
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT_SECONDS,
            env=env,
            check=False,
        )


def render_chart(
    chart: str,
    values_files: Iterable[Path] = (),
    values: dict[str, Any] | None = None,
    helm: str | None = None,
    namespace: str = "store-demo",
    release: str = "demo",
) -> list[dict[str, Any]]:
    """Run ``helm template`` on a chart and return every rendered object (hooks included).

    ``values_files`` are passed in order with ``-f``; ``values`` (if any) is written to a 0600
    temporary file and passed last, so it wins. Raises :class:`HelmTemplateError` when helm fails.
    """
    argv = ["template", release, str(chart_path(chart)), "--namespace", namespace]
    for values_file in values_files:
        argv += ["-f", str(values_file)]
    with tempfile.TemporaryDirectory(prefix="chart-values-") as tmp:
        if values is not None:
            extra = Path(tmp) / "values.yaml"
            extra.touch(mode=0o600)
            extra.write_text(yaml.safe_dump(values, sort_keys=False))
            argv += ["-f", str(extra)]
        result = run_helm(argv, helm=helm)
    if result.returncode != 0:
        raise HelmTemplateError([helm_binary(helm), *argv], result.returncode, result.stderr)
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Return ``base`` updated recursively with ``override`` (helm's own merge rule for values)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def by_kind(manifests: Iterable[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    """Objects of one kind, in render order."""
    return [m for m in manifests if m.get("kind") == kind]


def find(manifests: Iterable[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one object with this kind and name; fails the test if it is missing."""
    matches = [m for m in by_kind(manifests, kind) if m["metadata"]["name"] == name]
    assert len(matches) == 1, f"expected one {kind}/{name}, found {len(matches)}"
    return matches[0]


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    """The pod spec inside a workload (Deployment, StatefulSet, Job, CronJob, Pod), else None."""
    kind = obj.get("kind")
    if kind == "Pod":
        return obj["spec"]
    if kind in {"Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job"}:
        return obj["spec"]["template"]["spec"]
    if kind == "CronJob":
        return obj["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return None


def containers(spec: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Init containers and containers of a pod spec."""
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])
