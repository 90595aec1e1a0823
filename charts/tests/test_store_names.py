"""Store names that YAML would read as something other than a string (issue 15, finding 7): both
store charts render them as strings everywhere, so helm can install and retry such a store."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from charts.tests.rendering import render_chart
from charts.tests.support import CHARTS, ci_values
from stores.validators import validate_store_name

# Each is a valid store name that a YAML 1.1/1.2 parser reads as an int, a float, a bool or hex.
YAML_AMBIGUOUS_NAMES = ("123", "2024", "yes", "off", "true", "1e5", "0x1f", "0o17", "null", "nan")


def _strings_only(value: Any, path: str = "") -> list[str]:
    """Paths of label and annotation values that did not come out as strings."""
    wrong = []
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}"
            if key in {"labels", "annotations", "matchLabels"} and isinstance(item, dict):
                wrong += [f"{here}.{k}={v!r}" for k, v in item.items() if not isinstance(v, str)]
            wrong += _strings_only(item, here)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            wrong += _strings_only(item, f"{path}[{index}]")
    return wrong


@pytest.mark.parametrize("chart", CHARTS)
@pytest.mark.parametrize("name", YAML_AMBIGUOUS_NAMES)
def test_yaml_ambiguous_store_names_render_as_strings(chart: str, name: str, tmp_path: Path) -> None:
    validate_store_name(name)  # the platform accepts every one of them
    # JSON, as the HelmClient writes values: the name reaches the chart as a string.
    values = tmp_path / "store.json"
    values.write_text(json.dumps({"store": {"name": name, "host": f"{name}.127.0.0.1.nip.io"}}))
    manifests = render_chart(
        chart, [ci_values(chart, "local"), values], namespace=f"store-{name}", release=name
    )
    assert manifests
    wrong = [p for m in manifests for p in _strings_only(m, f"{m['kind']}/{m['metadata']['name']}")]
    assert wrong == []
    labelled = [m for m in manifests if "platform.example/store" in m["metadata"].get("labels", {})]
    assert labelled and all(m["metadata"]["labels"]["platform.example/store"] == name for m in labelled)
    assert all(m["metadata"]["labels"]["app.kubernetes.io/instance"] == name for m in labelled)
