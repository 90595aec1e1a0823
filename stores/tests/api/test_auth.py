"""Authentication, tenancy and throttling of the partner API."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.models import Store
from stores.tests.api.conftest import client_with_token, token_for
from stores.tests.factories import UserFactory

pytestmark = pytest.mark.django_db

STORES = "/api/v1/stores/"


def _error(response):
    return response.json()["error"]


def test_no_token_is_a_401_with_the_scheme_named():
    response = APIClient().get(STORES)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"
    assert _error(response) == {
        "code": "not_authenticated",
        "message": "Authentication required: send `Authorization: Token <token>`.",
        "fields": {},
    }


@pytest.mark.parametrize("header", ["Token", "Token not-a-real-token", "Token a b"])
def test_a_bad_token_header_is_a_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get(STORES)
    assert response.status_code == 401 and _error(response)["code"] == "authentication_failed"


def test_an_expired_token_is_a_401(owner):
    token = token_for(owner, expiry=timedelta(seconds=-1))

    response = client_with_token(token).get(STORES)

    assert response.status_code == 401
    assert _error(response) == {
        "code": "authentication_failed",
        "message": "The token is invalid, expired or revoked.",
        "fields": {},
    }


def test_a_revoked_token_is_a_401(owner):
    token = token_for(owner)
    instance = AuthToken.objects.get(token_key=token[:15])
    client = client_with_token(token)
    assert client.get(STORES).status_code == 200

    instance.delete()  # what revoking on the tokens page does

    assert client.get(STORES).status_code == 401
    assert (
        client.post(STORES, {"name": "after-revoke", "engine": "woocommerce"}, format="json").status_code
        == 401
    )
    assert not Store.objects.exists()


def test_session_auth_works_for_the_browsable_api(owner):
    client = APIClient()
    client.force_login(owner)
    assert client.get(STORES).status_code == 200
    assert "text/html" in client.get(STORES, HTTP_ACCEPT="text/html")["Content-Type"]


def test_session_writes_need_the_csrf_token(owner):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(owner)
    response = client.post(STORES, {"name": "csrf-less", "engine": "woocommerce"}, format="json")
    assert response.status_code == 403 and _error(response)["code"] == "permission_denied"
    assert "CSRF" in _error(response)["message"]


def test_a_user_without_an_organisation_is_a_403():
    # Signed in with a session (the browsable API): a token cannot even be minted without one.
    loner = UserFactory()
    client = APIClient()
    client.force_login(loner)
    response = client.get(STORES)
    assert response.status_code == 403
    assert _error(response) == {
        "code": "no_tenant",
        "message": "Your account does not belong to an organisation.",
        "fields": {},
    }


def _rates(settings, token: str, ip: str) -> None:
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": token, "ip": ip},
    }


def test_a_token_over_its_rate_gets_429_with_retry_after(settings, owner):
    _rates(settings, token="2/min", ip="100000/min")
    client = client_with_token(token_for(owner))

    statuses = [client.get(STORES).status_code for _ in range(3)]

    assert statuses == [200, 200, 429]
    response = client.get(STORES)
    assert 1 <= int(response["Retry-After"]) <= 60
    error = _error(response)
    assert error["code"] == "throttled" and error["message"].startswith("Too many requests; retry in")
    # Another token of the same user has its own budget.
    assert client_with_token(token_for(owner)).get(STORES).status_code == 200


def test_one_ip_over_its_rate_gets_429_across_tokens(settings, owner, other_owner):
    from django.core.cache import cache

    cache.delete_many(["throttle_ip_10.9.8.7", "throttle_ip_10.9.8.8"])  # Redis outlives test runs
    _rates(settings, token="100000/min", ip="2/min")
    first, second = client_with_token(token_for(owner)), client_with_token(token_for(other_owner))

    statuses = [c.get(STORES, REMOTE_ADDR="10.9.8.7").status_code for c in (first, second, first)]

    assert statuses == [200, 200, 429]
    assert first.get(STORES, REMOTE_ADDR="10.9.8.8").status_code == 200  # another client is unaffected


def test_a_forged_forwarded_for_does_not_buy_a_new_ip_budget(settings, owner):
    """DRF's default trusts every X-Forwarded-For entry; the throttle uses TRUSTED_PROXY_COUNT's rule."""
    from django.core.cache import cache

    cache.clear()
    settings.TRUSTED_PROXY_COUNT = 0
    _rates(settings, token="100000/min", ip="2/min")
    client = client_with_token(token_for(owner))
    statuses = [
        client.get(STORES, REMOTE_ADDR="10.9.8.9", HTTP_X_FORWARDED_FOR=f"203.0.113.{n}").status_code
        for n in range(3)
    ]
    assert statuses == [200, 200, 429]
    # Behind one trusted proxy the entry it appended names the client.
    settings.TRUSTED_PROXY_COUNT = 1
    forwarded = {"REMOTE_ADDR": "10.42.0.7", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.1"}
    assert [client.get(STORES, **forwarded).status_code for _ in range(3)] == [200, 200, 429]
    other = {"REMOTE_ADDR": "10.42.0.7", "HTTP_X_FORWARDED_FOR": "6.6.6.6, 198.51.100.2"}
    assert client.get(STORES, **other).status_code == 200


def test_drf_counts_the_same_proxy_hops():
    assert django_settings.REST_FRAMEWORK["NUM_PROXIES"] == django_settings.TRUSTED_PROXY_COUNT
