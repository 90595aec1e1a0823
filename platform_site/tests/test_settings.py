import os
import subprocess
import sys
from pathlib import Path

from django.conf import settings

from platform_site.celery import app

ROOT = Path(__file__).resolve().parents[2]


def test_time_budget_ordering():
    """visibility timeout > hard limit > helm --timeout > soft limit, all from one budget."""
    assert (
        settings.PROVISIONING_VISIBILITY_TIMEOUT
        > settings.PROVISIONING_TASK_TIME_LIMIT
        > settings.PROVISIONING_HELM_TIMEOUT
        > settings.PROVISIONING_TASK_SOFT_TIME_LIMIT
    )
    assert app.conf.task_time_limit == settings.PROVISIONING_TASK_TIME_LIMIT
    assert app.conf.task_soft_time_limit == settings.PROVISIONING_TASK_SOFT_TIME_LIMIT


def test_reliable_delivery_settings():
    assert app.conf.task_acks_late is True
    assert app.conf.task_reject_on_worker_lost is True
    assert app.conf.worker_prefetch_multiplier == 1
    if not settings.CELERY_BROKER_URL.startswith("filesystem://"):
        assert (
            app.conf.broker_transport_options["visibility_timeout"]
            == settings.PROVISIONING_VISIBILITY_TIMEOUT
        )


def _settings_in_subprocess(env: dict[str, str], expression: str) -> subprocess.CompletedProcess[str]:
    code = f"import django, os; django.setup(); from django.conf import settings; print({expression})"
    clean_env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "PLATFORM_ENV"}}
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**clean_env, "DJANGO_SETTINGS_MODULE": "platform_site.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_budget_follows_one_variable():
    result = _settings_in_subprocess(
        {"PROVISIONING_TIMEOUT": "100"},
        "settings.PROVISIONING_TASK_SOFT_TIME_LIMIT, settings.PROVISIONING_HELM_TIMEOUT, "
        "settings.PROVISIONING_TASK_TIME_LIMIT, settings.PROVISIONING_VISIBILITY_TIMEOUT",
    )
    assert result.stdout.strip() == "100 160 280 580"


def test_production_mode_requires_secret_key():
    result = _settings_in_subprocess({"PLATFORM_ENV": "prod"}, "settings.DEBUG")
    assert result.returncode != 0
    assert "SECRET_KEY" in result.stderr


def test_production_mode_has_no_wildcard_hosts_and_secure_cookies():
    result = _settings_in_subprocess(
        {"PLATFORM_ENV": "prod", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "platform.example.com"},
        "settings.DEBUG, settings.ALLOWED_HOSTS, settings.SESSION_COOKIE_SECURE, settings.STORE_INGRESS_CLASS",
    )
    assert result.stdout.strip() == "False ['platform.example.com'] True traefik"


def test_invalid_platform_env_is_refused():
    result = _settings_in_subprocess({"PLATFORM_ENV": "staging"}, "1")
    assert result.returncode != 0 and "PLATFORM_ENV must be" in result.stderr


def test_check_deploy_reports_nothing_with_production_environment():
    clean_env = {k: v for k, v in os.environ.items() if k not in {"SECRET_KEY", "DEBUG", "PLATFORM_ENV"}}
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env={
            **clean_env,
            "PLATFORM_ENV": "prod",
            "SECRET_KEY": "k" * 20 + "-production-secret-" + "q" * 30,
            "ALLOWED_HOSTS": "platform.example.com",
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout


def test_backup_egress_settings_refuse_what_no_network_policy_takes():
    for env, needle in (
        ({"BACKUP_S3_EGRESS": "203.0.113.0/24,s3.example.com"}, "BACKUP_S3_EGRESS"),
        ({"BACKUP_S3_EGRESS": "10.0.0.1"}, "BACKUP_S3_EGRESS"),
        ({"BACKUP_S3_EGRESS": "10.0.0.0/33"}, "BACKUP_S3_EGRESS"),
        ({"BACKUP_S3_EGRESS_PORT": "70000"}, "BACKUP_S3_EGRESS_PORT"),
    ):
        result = _settings_in_subprocess(env, "settings.BACKUP_S3_EGRESS")
        assert result.returncode != 0, env
        assert "ImproperlyConfigured" in result.stderr and needle in result.stderr, env
    result = _settings_in_subprocess(
        {"BACKUP_S3_EGRESS": "10.43.12.7/32,203.0.113.0/24", "BACKUP_S3_EGRESS_PORT": "9000"},
        "settings.BACKUP_S3_EGRESS, settings.BACKUP_S3_EGRESS_PORT",
    )
    assert result.stdout.strip() == "['10.43.12.7/32', '203.0.113.0/24'] 9000"
