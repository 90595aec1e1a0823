"""Production settings refuse what issue 15 found unsafe; local mode keeps working over plain HTTP."""

from __future__ import annotations

from platform_site.tests.test_settings import _settings_in_subprocess

PROD = {"PLATFORM_ENV": "prod", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "platform.example.com"}


def test_production_refuses_the_console_email_backend():
    result = _settings_in_subprocess(
        {**PROD, "EMAIL_BACKEND": "django.core.mail.backends.console.EmailBackend"}, "settings.EMAIL_BACKEND"
    )
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "password-reset links" in result.stderr


def test_production_defaults_to_smtp_with_a_timeout():
    result = _settings_in_subprocess(
        {**PROD, "EMAIL_HOST": "smtp.example.com", "EMAIL_USE_TLS": "true"},
        "settings.EMAIL_BACKEND, settings.EMAIL_HOST, settings.EMAIL_USE_TLS, settings.EMAIL_TIMEOUT",
    )
    assert result.stdout.strip() == "django.core.mail.backends.smtp.EmailBackend smtp.example.com True 10"


def test_local_mode_may_print_mail_to_the_console():
    result = _settings_in_subprocess({"PLATFORM_ENV": "local"}, "settings.EMAIL_BACKEND")
    assert result.stdout.strip() == "django.core.mail.backends.console.EmailBackend"
