"""Roles (issue 15, finding 3): owners may do everything; members view and operate (launch, retry)
but cannot reveal credentials, delete stores or manage API tokens. One table (stores/permissions.py)
decides for the pages, the API and the tokens; the pages show disabled controls with the reason."""

from __future__ import annotations

import html
import re

import pytest
from django.core.cache import cache
from knox.models import AuthToken
from rest_framework.test import APIClient

from stores.choices import MembershipRole, StoreEventKind, StoreStatus
from stores.models import Store, StoreEvent
from stores.permissions import ROLE_ACTIONS, Action
from stores.tests.factories import MembershipFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _simulated(settings):
    settings.CLUSTER_IS_SIMULATED = True
    cache.clear()


@pytest.fixture
def member(tenant):
    """A member (not owner) added by staff to the owner's tenant."""
    return MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def test_the_split_is_defined_once():
    assert ROLE_ACTIONS[MembershipRole.OWNER] == frozenset(Action)
    assert ROLE_ACTIONS[MembershipRole.MEMBER] == {Action.VIEW, Action.LAUNCH, Action.RETRY}


def test_a_member_cannot_reveal_delete_or_make_tokens_on_the_pages(client, tenant, member):
    store = StoreFactory(tenant=tenant, name="shared-shop", status=StoreStatus.READY)
    client.force_login(member)

    page = _text(client.get("/stores/shared-shop/"))
    assert 'id="reveal-credentials" disabled' in page
    assert "Only the organisation's owners can see store credentials." in page
    assert (
        "Only the organisation's owners can delete stores." in page
        and 'action="/stores/shared-shop/delete/"' not in page
    )

    refused = client.post("/stores/shared-shop/credentials/", headers={"HX-Request": "true"})
    assert refused.status_code == 403
    assert not StoreEvent.objects.filter(store=store, kind=StoreEventKind.AUDIT).exists()
    assert client.post("/stores/shared-shop/delete/", {"confirm_name": "shared-shop"}).status_code == 403
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY

    tokens = _text(client.get("/settings/tokens/"))
    assert "Only the organisation's owners can create or revoke API tokens." in tokens
    assert client.post("/settings/tokens/").status_code == 403
    assert not AuthToken.objects.filter(user=member).exists()


def test_a_member_operates_stores_launch_and_retry(client, tenant, member):
    failed = StoreFactory(tenant=tenant, name="broken-shop", status=StoreStatus.FAILED)
    client.force_login(member)
    assert client.post(f"/stores/{failed.name}/retry/").status_code == 302
    assert Store.objects.get(pk=failed.pk).status == StoreStatus.REQUESTED
    assert client.post("/stores/new/", {"name": "member-shop", "engine": "woocommerce"}).status_code == 302
    assert Store.objects.get(name="member-shop").tenant == tenant


def test_the_owner_sees_every_control_enabled(client, tenant, owner):
    StoreFactory(tenant=tenant, name="own-shop", status=StoreStatus.READY)
    client.force_login(owner)
    page = _text(client.get("/stores/own-shop/"))
    assert 'id="reveal-credentials" disabled' not in page and 'action="/stores/own-shop/delete/"' in page


def test_a_member_is_refused_the_same_things_through_the_api(tenant, member):
    ready = StoreFactory(tenant=tenant, name="api-shop", status=StoreStatus.READY)
    failed = StoreFactory(tenant=tenant, name="api-broken", status=StoreStatus.FAILED)
    api = APIClient()
    api.force_login(member)  # members hold no tokens; the browsable API uses the session

    assert api.get("/api/v1/stores/").status_code == 200
    refused = api.delete(f"/api/v1/stores/{ready.name}/")
    assert refused.status_code == 403 and refused.json()["error"]["code"] == "forbidden"
    assert api.post(f"/api/v1/stores/{ready.name}/credentials/").status_code == 403
    assert Store.objects.get(pk=ready.pk).status == StoreStatus.READY
    assert api.post(f"/api/v1/stores/{failed.name}/retry/").status_code == 202
    # Another tenant's store stays a 404, not a 403.
    assert api.delete("/api/v1/stores/no-such-store/").status_code == 404
