"""Fixtures for the partner API tests: token-authenticated clients for two tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.permissions import access_for_user
from stores.tests.factories import MembershipFactory
from stores.tokens import api_token_create


def token_for(user, *, expiry: timedelta | None = timedelta(hours=1), read_only: bool = False) -> str:
    """A fresh token string for `user`, minted like the tokens page does (bound to the user's
    organisation and role), expiring after `expiry` (None: never)."""
    row, token = api_token_create(user=user, access=access_for_user(user=user), read_only=read_only)
    AuthToken.objects.filter(pk=row.pk).update(expiry=timezone.now() + expiry if expiry is not None else None)
    return token


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
