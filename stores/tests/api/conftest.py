"""Fixtures for the partner API tests: token-authenticated clients for two tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.tests.factories import MembershipFactory


def token_for(user, *, expiry: timedelta | None = timedelta(hours=1)) -> str:
    """A fresh knox token string for `user`."""
    return AuthToken.objects.create(user, expiry=expiry)[1]


def client_with_token(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    return client


@pytest.fixture(autouse=True)
def generous_throttles(settings):
    """The suite makes many requests from one IP; the throttling tests lower these on purpose."""
    settings.REST_FRAMEWORK = {
        **django_settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"token": "100000/min", "ip": "100000/min"},
    }


@pytest.fixture
def api(owner) -> APIClient:
    """A client authenticated with a token of `owner` (tenant A)."""
    return client_with_token(token_for(owner))


@pytest.fixture
def other_api(other_owner) -> APIClient:
    """A client authenticated with a token of `other_owner` (tenant B)."""
    return client_with_token(token_for(other_owner))


@pytest.fixture
def third_user(db):
    return MembershipFactory().user
