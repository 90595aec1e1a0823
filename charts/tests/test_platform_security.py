"""The platform chart's part in issue 15: the web pods know the client's real address behind the
ingress, and production e-mail never goes to the console."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from charts.tests.platform_support import (
    NAMESPACE,
    PLATFORM,
    PROD_DOMAIN,
    RELEASE,
    VALUES_FILES,
    env_of,
    rendered_platform,
)
from charts.tests.rendering import HelmTemplateError, find, pod_spec, render_chart

ENVS = ("local", "prod")


@pytest.fixture(params=ENVS)
def manifests(request: pytest.FixtureRequest) -> list[dict[str, Any]]:
    return rendered_platform(request.param)


def _web_env(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return env_of(pod_spec(find(manifests, "Deployment", "platform-web"))["containers"][0])


def test_the_web_pods_trust_exactly_the_ingress_hop(manifests: list[dict[str, Any]]) -> None:
    # 0 (the settings default) made every client the ingress pod: one lockout for everybody.
    assert _web_env(manifests)["TRUSTED_PROXY_COUNT"] == "1"


# --- E-mail (finding 4) ----------------------------------------------------------------------------

CONSOLE = "django.core.mail.backends.console.EmailBackend"


def _render_prod(values: dict[str, Any]) -> list[dict[str, Any]]:
    return render_chart(
        str(PLATFORM), [VALUES_FILES["prod"]], {**PROD_DOMAIN, **values}, namespace=NAMESPACE, release=RELEASE
    )


def test_no_values_file_sends_mail_to_the_console() -> None:
    for path in [PLATFORM / "values.yaml", *VALUES_FILES.values()]:
        email = yaml.safe_load(path.read_text()).get("email") or {}
        assert email.get("backend", "") != CONSOLE, path
    for env in ENVS:
        web = _web_env(rendered_platform(env))
        assert web["EMAIL_BACKEND"] != CONSOLE


def test_production_values_send_mail_through_smtp_with_the_password_from_a_secret() -> None:
    web = _web_env(
        _render_prod(
            {
                "email": {
                    "from": "Shops <noreply@shops.example>",
                    "smtp": {"host": "smtp.example.com", "user": "relay", "existingSecret": "smtp-creds"},
                }
            }
        )
    )
    assert web["EMAIL_BACKEND"] == "django.core.mail.backends.smtp.EmailBackend"
    assert (web["EMAIL_HOST"], web["EMAIL_PORT"], web["EMAIL_HOST_USER"]) == (
        "smtp.example.com",
        "587",
        "relay",
    )
    assert web["EMAIL_HOST_PASSWORD"] == {"secretKeyRef": {"name": "smtp-creds", "key": "smtp-password"}}
    assert (web["EMAIL_USE_TLS"], web["EMAIL_USE_SSL"]) == ("true", "false")
    assert web["DEFAULT_FROM_EMAIL"] == "Shops <noreply@shops.example>"


def test_implicit_tls_is_a_choice() -> None:
    web = _web_env(
        _render_prod({"email": {"smtp": {"host": "smtp.example.com", "port": 465, "security": "tls"}}})
    )
    assert (web["EMAIL_PORT"], web["EMAIL_USE_TLS"], web["EMAIL_USE_SSL"]) == ("465", "false", "true")
    assert "EMAIL_HOST_PASSWORD" not in web


def test_production_without_a_relay_or_with_the_console_backend_does_not_install() -> None:
    with pytest.raises(HelmTemplateError) as no_host:
        _render_prod({})
    assert "email.smtp.host is required" in no_host.value.stderr
    with pytest.raises(HelmTemplateError) as console:
        _render_prod({"email": {"backend": CONSOLE, "smtp": {"host": "smtp.example.com"}}})
    assert "console" in console.value.stderr


def test_local_values_write_mail_to_files_in_the_pod() -> None:
    web = _web_env(rendered_platform("local"))
    assert web["EMAIL_BACKEND"] == "django.core.mail.backends.filebased.EmailBackend"
    assert web["EMAIL_FILE_PATH"] == "/app/var/mail"


def test_the_dashboard_host_reaches_the_settings_so_its_name_is_reserved() -> None:
    web = _web_env(
        render_chart(
            str(PLATFORM),
            [VALUES_FILES["local"]],
            {"ingress": {"subdomain": "console-x"}},
            namespace=NAMESPACE,
            release=RELEASE,
        )
    )
    assert web["DASHBOARD_HOST"] == "console-x.127.0.0.1.nip.io"
