"""The platform chart's part in issue 15: the web pods know the client's real address behind the
ingress, and production e-mail never goes to the console."""

from __future__ import annotations

from typing import Any

import pytest

from charts.tests.platform_support import env_of, rendered_platform
from charts.tests.rendering import find, pod_spec

ENVS = ("local", "prod")


@pytest.fixture(params=ENVS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return rendered_platform(request.param)


def _web_env(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return env_of(pod_spec(find(manifests, "Deployment", "platform-web"))["containers"][0])


def test_the_web_pods_trust_exactly_the_ingress_hop(manifests: list[dict[str, Any]]) -> None:
    # 0 (the settings default) made every client the ingress pod: one lockout for everybody.
    assert _web_env(manifests)["TRUSTED_PROXY_COUNT"] == "1"
