"""Every rendered object is valid for the Kubernetes API of the oldest and newest supported clusters."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

KUBERNETES_VERSIONS = ("1.29.0", "1.35.0")


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_objects_validate_strictly(store: tuple[str, str, list[dict[str, Any]]], version: str) -> None:
    _, _, manifests = store

    for obj in manifests:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_catches_an_unknown_field() -> None:
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"typo": 1}}

    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSIONS[0], strict=True)
