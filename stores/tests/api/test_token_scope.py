"""API tokens (issue 15, finding 9): bound to one tenant and the role they were minted with, refused
once that membership is gone or the password changed, optionally read-only; token creation bounded."""

from __future__ import annotations

import re
from io import StringIO

import pytest
from django.core import mail
from django.core.cache import cache
from django.core.management import call_command
from knox.models import AuthToken

from stores.choices import MembershipRole, StoreStatus
from stores.models import ApiTokenScope, Membership, Store
from stores.tests.api.conftest import client_with_token, token_for
from stores.tests.factories import MembershipFactory, StoreFactory, TenantFactory

pytestmark = pytest.mark.django_db
STORES = "/api/v1/stores/"
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _clean_cache():
    cache.clear()


def _names(response) -> list[str]:
    return [store["name"] for store in response.json()["results"]]


def test_a_token_minted_in_tenant_a_never_lists_tenant_b_after_leaving_a(owner, tenant):
    """The attack from the issue: the token followed "the user's first membership" to tenant B."""
    StoreFactory(tenant=tenant, name="a-shop")
    tenant_b = TenantFactory()
    StoreFactory(tenant=tenant_b, name="b-secret")
    token = token_for(owner)
    api = client_with_token(token)
    assert _names(api.get(STORES)) == ["a-shop"]

    MembershipFactory(user=owner, tenant=tenant_b, role=MembershipRole.OWNER)
    Membership.objects.filter(user=owner, tenant=tenant).delete()

    refused = api.get(STORES)
    assert refused.status_code == 401
    assert "b-secret" not in refused.content.decode()


def test_the_token_keeps_its_tenant_when_the_user_joins_another_first(owner, tenant):
    StoreFactory(tenant=tenant, name="a-shop")
    tenant_b = TenantFactory()
    StoreFactory(tenant=tenant_b, name="b-secret")
    token = token_for(owner)
    # Make B the "first" membership: the old resolution would have switched tenants.
    joined = MembershipFactory(user=owner, tenant=tenant_b)
    Membership.objects.filter(pk=joined.pk).update(created_at="2000-01-01T00:00:00Z")
    assert _names(client_with_token(token).get(STORES)) == ["a-shop"]
    assert ApiTokenScope.objects.get(token__token_key=token[:15]).tenant == tenant


def test_a_demoted_owners_token_loses_the_owners_powers(owner, tenant):
    store = StoreFactory(tenant=tenant, name="keep-me", status=StoreStatus.READY)
    api = client_with_token(token_for(owner))
    Membership.objects.filter(user=owner, tenant=tenant).update(role=MembershipRole.MEMBER)
    assert api.get(STORES).status_code == 200
    assert api.delete(f"{STORES}{store.name}/").status_code == 403
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY


def test_a_password_change_revokes_every_token(client, owner):
    api = client_with_token(token_for(owner))
    assert api.get(STORES).status_code == 200
    client.force_login(owner)
    response = client.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much better passphrase",
            "new_password2": "a much better passphrase",
        },
    )
    assert response.status_code == 302
    assert api.get(STORES).status_code == 401
    assert "No tokens yet" in client.get("/settings/tokens/").content.decode()


def test_a_password_reset_revokes_every_token(client, owner):
    api = client_with_token(token_for(owner))
    client.post("/accounts/password_reset/", {"email": owner.email})
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form = client.get(link, follow=True)
    client.post(
        form.redirect_chain[-1][0],
        {"new_password1": "brand new passphrase 42", "new_password2": "brand new passphrase 42"},
    )
    owner.refresh_from_db()
    assert owner.check_password("brand new passphrase 42")
    assert api.get(STORES).status_code == 401


def test_a_read_only_token_can_read_but_not_change_anything(owner, tenant):
    ready = StoreFactory(tenant=tenant, name="watched", status=StoreStatus.READY)
    failed = StoreFactory(tenant=tenant, name="watched-broken", status=StoreStatus.FAILED)
    api = client_with_token(token_for(owner, read_only=True))
    assert api.get(STORES).status_code == 200 and api.get("/api/v1/plan/").status_code == 200
    assert api.get(f"{STORES}{ready.name}/events/").status_code == 200
    for response in (
        api.post(STORES, {"name": "sneaky", "engine": "woocommerce"}, format="json"),
        api.delete(f"{STORES}{ready.name}/"),
        api.post(f"{STORES}{failed.name}/retry/"),
        api.post(f"{STORES}{ready.name}/credentials/"),
    ):
        assert response.status_code == 403
        assert response.json()["error"] == {
            "code": "forbidden",
            "message": "This API token is read-only.",
            "fields": {},
        }
    assert not Store.objects.filter(name="sneaky").exists()
    assert Store.objects.get(pk=ready.pk).status == StoreStatus.READY


def test_a_token_without_a_scope_is_refused(owner):
    """Tokens minted before this change have no tenant: refused, never guessed from memberships."""
    _, legacy = AuthToken.objects.create(owner)
    assert client_with_token(legacy).get(STORES).status_code == 401


def test_the_tokens_page_mints_scoped_and_read_only_tokens(client, owner, tenant):
    client.force_login(owner)
    created = client.post("/settings/tokens/", {"read_only": "on"})
    assert created.status_code == 201
    scope = ApiTokenScope.objects.get(token__user=owner)
    assert (scope.tenant, scope.role, scope.read_only) == (tenant, MembershipRole.OWNER, True)
    assert "Owner, read-only" in created.content.decode()


def test_the_management_command_mints_a_scoped_token(owner, tenant):
    out = StringIO()
    call_command("create_api_token", owner.email, "--read-only", stdout=out)
    scope = ApiTokenScope.objects.get(token__token_key=out.getvalue().strip()[:15])
    assert (scope.tenant, scope.read_only) == (tenant, True)


def test_token_creation_is_bounded(client, owner, settings):
    client.force_login(owner)
    settings.API_TOKEN_MAX_PER_USER = 2
    assert [client.post("/settings/tokens/").status_code for _ in range(3)] == [201, 201, 409]
    assert "revoke one you no longer use" in client.post("/settings/tokens/").content.decode()
    assert AuthToken.objects.filter(user=owner).count() == 2
    settings.API_TOKEN_MAX_PER_USER = 100
    settings.AUTH_RATE_LIMIT_ATTEMPTS = 5
    # Four attempts so far in this window; the fifth passes, the sixth is rate limited.
    assert [client.post("/settings/tokens/").status_code for _ in range(2)] == [201, 429]
