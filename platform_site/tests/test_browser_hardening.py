"""Issue 15, low items: a Content-Security-Policy without inline script or style, idle timeouts for
merchant and staff sessions, and __Host- cookies in production."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings as django_settings

from platform_site import security
from platform_site.tests.test_settings import _settings_in_subprocess
from stores.choices import StoreStatus
from stores.presentation import STATUS_COLOURS
from stores.tests.factories import StoreFactory, UserFactory

ROOT = Path(__file__).resolve().parents[2]
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", re.I)
INLINE_STYLE = re.compile(r"<style\b|\sstyle=", re.I)
EVENT_HANDLER = re.compile(r"\son[a-z]+\s*=", re.I)


def test_no_template_carries_inline_script_style_or_event_handlers():
    offenders = []
    for path in (ROOT / "templates").rglob("*.html"):
        text = path.read_text()
        for pattern in (INLINE_SCRIPT, INLINE_STYLE, EVENT_HANDLER):
            offenders += [f"{path.relative_to(ROOT)}: {m.group(0)}" for m in pattern.finditer(text)]
    assert offenders == []


def test_the_status_colours_stylesheet_is_the_one_map():
    css = (ROOT / "static" / "css" / "status-colours.css").read_text()
    found = dict(re.findall(r'\[data-status-colour="(\w+)"\] \{ --badge-colour: (#[0-9a-f]{6}); \}', css))
    assert found == {str(k): v for k, v in STATUS_COLOURS.items()}


@pytest.mark.django_db
def test_pages_admin_and_docs_send_the_policy_and_render_nothing_inline(client, owner, tenant, settings):
    settings.CLUSTER_IS_SIMULATED = True
    StoreFactory(tenant=tenant, name="csp-shop", status=StoreStatus.READY)
    strict = django_settings.CONTENT_SECURITY_POLICY
    assert (
        "script-src 'self'" in strict
        and "'unsafe-inline'" not in strict
        and "frame-ancestors 'none'" in strict
    )

    pages = [client.get("/"), client.get("/accounts/login/"), client.get("/admin/login/")]
    client.force_login(owner)
    pages += [client.get("/stores/"), client.get("/stores/csp-shop/")]
    staff = UserFactory(username="csp-staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    pages += [client.get("/admin/stores/store/")]
    for response in pages:
        assert response.status_code == 200
        assert response["Content-Security-Policy"] == strict
        html = response.content.decode()
        assert not INLINE_SCRIPT.search(html) and not INLINE_STYLE.search(html), response.wsgi_request.path

    docs = client.get("/api/docs/")
    assert docs.status_code == 200 and not INLINE_SCRIPT.search(docs.content.decode())
    assert docs["Content-Security-Policy"] == django_settings.CONTENT_SECURITY_POLICY_API_DOCS
    assert "script-src 'self';" in docs["Content-Security-Policy"]


@pytest.fixture
def clock(monkeypatch):
    now = [1_000_000.0]
    monkeypatch.setattr(security.time, "time", lambda: now[0])
    return now


@pytest.mark.django_db
def test_a_merchant_session_ends_after_the_merchant_idle_timeout(client, owner, clock, settings):
    settings.SESSION_IDLE_TIMEOUT_MERCHANT = 8 * 3600
    client.force_login(owner)
    assert client.get("/stores/").status_code == 200
    clock[0] += 7 * 3600  # idle 7 hours: still signed in, and the activity slides the expiry
    assert client.get("/stores/").status_code == 200
    clock[0] += 7 * 3600
    assert client.get("/stores/").status_code == 200
    clock[0] += 8 * 3600 + 61
    response = client.get("/stores/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_a_staff_session_ends_sooner(client, clock, settings):
    settings.SESSION_IDLE_TIMEOUT_STAFF = 30 * 60
    staff = UserFactory(username="idle-staff@example.com", is_staff=True, is_superuser=True)
    client.force_login(staff)
    assert client.get("/admin/").status_code == 200
    clock[0] += 31 * 60
    assert client.get("/admin/").status_code == 302
    assert client.session.get_expiry_age() <= django_settings.SESSION_IDLE_TIMEOUT_MERCHANT


def test_the_defaults_are_shorter_than_djangos_two_weeks():
    assert django_settings.SESSION_IDLE_TIMEOUT_STAFF < django_settings.SESSION_IDLE_TIMEOUT_MERCHANT
    assert django_settings.SESSION_COOKIE_AGE <= 8 * 3600 < 14 * 24 * 3600


PROD = {"PLATFORM_ENV": "prod", "SECRET_KEY": "x" * 60, "ALLOWED_HOSTS": "platform.example.com"}
COOKIES = (
    "settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME, settings.SESSION_COOKIE_SECURE, "
    "settings.CSRF_COOKIE_SECURE, settings.SESSION_COOKIE_PATH, settings.CSRF_COOKIE_PATH, "
    "settings.SESSION_COOKIE_DOMAIN, settings.CSRF_COOKIE_DOMAIN"
)


def test_production_cookies_are_host_prefixed_secure_root_path_and_domainless():
    result = _settings_in_subprocess(PROD, COOKIES)
    assert result.stdout.strip() == "__Host-sessionid __Host-csrftoken True True / / None None", result.stderr


def test_local_http_mode_keeps_plain_cookie_names():
    result = _settings_in_subprocess(
        {"PLATFORM_ENV": "local"}, "settings.SESSION_COOKIE_NAME, settings.CSRF_COOKIE_NAME"
    )
    assert result.stdout.strip() == "sessionid csrftoken"
