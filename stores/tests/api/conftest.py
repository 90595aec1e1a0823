"""Fixtures for the partner API tests: token-authenticated clients for two tenants."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.test import APIClient

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from provisioning.services import run_transition
from stores.choices import StoreStatus
from stores.permissions import access_for_user
from stores.services import store_create
from stores.tests.factories import MembershipFactory
from stores.tokens import api_token_create
from stores.transitions import store_transition


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


def make_store(tenant, name, engine="woocommerce", status=None):
    """A store created through the service, then moved to `status` (ready or failed) if given."""
    store, _ = store_create(tenant=tenant, name=name, engine=engine)
    if status == StoreStatus.FAILED:
        run = ProvisioningRun.objects.get(store=store)
        run_transition(run_id=run.pk, to=RunStatus.RUNNING)
        run_transition(run_id=run.pk, to=RunStatus.FAILED, error="helm timed out")
        store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING)
        store_transition(store_id=store.pk, to=StoreStatus.FAILED, reason="helm timed out")
    elif status == StoreStatus.READY:
        store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING)
        store_transition(store_id=store.pk, to=StoreStatus.READY, reason="Store is ready.")
    store.refresh_from_db()
    return store


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
