"""Issue 15, low item: a script could sign up and exhaust the cluster. The e-mail is confirmed
(signed link) before the first store launches, and a platform-wide ceiling stops launches."""

from __future__ import annotations

import re

import pytest
from django.core import mail, signing
from django.test import override_settings
from rest_framework.test import APIClient

from stores.launch_guards import EmailNotVerified, PlatformAtCapacity
from stores.lifecycle import store_create
from stores.models import EmailVerification, Store
from stores.services import user_signup
from stores.tests.factories import StoreFactory, TenantFactory

pytestmark = pytest.mark.django_db
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _pages(settings):
    settings.CLUSTER_IS_SIMULATED = True


@pytest.fixture
def signup(client, django_capture_on_commit_callbacks):
    """Sign up through the page; returns the path of the mailed confirmation link."""

    def sign_up(email="new@example.com"):
        # The link is mailed once the signup's transaction commits; the test transaction never does.
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(
                "/signup/", {"email": email, "password": PASSWORD, "organisation": "Fresh"}
            )
        assert response.status_code == 302
        return _last_link()

    return sign_up


def _last_link():
    return re.search(r"http://testserver(/accounts/verify-email/\S+/)", mail.outbox[-1].body).group(1)


def test_a_new_account_cannot_launch_until_its_email_is_confirmed(client, signup):
    link = signup()
    assert mail.outbox[-1].to == ["new@example.com"]
    dashboard = client.get("/stores/").content.decode()
    assert "Confirm your e-mail to launch stores" in dashboard

    refused = client.post("/stores/new/", {"name": "too-early", "engine": "woocommerce"})
    assert refused.status_code == 400 and "Confirm your e-mail address first" in refused.content.decode()
    api = APIClient()
    api.force_login(EmailVerification.objects.get().user)
    response = api.post("/api/v1/stores/", {"name": "too-early", "engine": "woocommerce"}, format="json")
    assert response.status_code == 403 and response.json()["error"]["code"] == "email_not_verified"
    assert not Store.objects.exists()

    confirmed = client.get(link, follow=True)
    assert "your e-mail is confirmed" in confirmed.content.decode()
    assert client.post("/stores/new/", {"name": "on-time", "engine": "woocommerce"}).status_code == 302
    assert client.get(link).status_code == 302  # following it twice is harmless


def test_forged_expired_and_stale_links_are_refused(client, settings, signup):
    link = signup()
    token = link.rstrip("/").split("/")[-1]
    assert "not valid" in client.get(f"/accounts/verify-email/{token}x/", follow=True).content.decode()
    forged = signing.dumps(
        {"user": EmailVerification.objects.get().user_id, "email": "new@example.com"}, salt="other"
    )
    assert "not valid" in client.get(f"/accounts/verify-email/{forged}/", follow=True).content.decode()
    settings.EMAIL_VERIFICATION_MAX_AGE_DAYS = 0
    assert "expired" in client.get(link, follow=True).content.decode()
    assert EmailVerification.objects.exists()


def test_a_new_link_can_be_asked_for(client, signup, django_capture_on_commit_callbacks):
    signup()
    with django_capture_on_commit_callbacks(execute=True):
        assert client.post("/accounts/verify-email/resend/").status_code == 302
    assert len(mail.outbox) == 2
    client.get(_last_link())
    assert not EmailVerification.objects.exists()


def test_accounts_made_by_operators_need_no_confirmation(tenant, owner):
    store, created = store_create(tenant=tenant, name="operator-shop", engine="woocommerce", actor=owner)
    assert created
    scripted = user_signup(email="ops@example.com", password=PASSWORD, organisation="Ops")
    assert not EmailVerification.objects.filter(user=scripted).exists()


def test_an_unconfirmed_actor_is_refused_by_the_service():
    user = user_signup(
        email="x@example.com", password=PASSWORD, organisation="X", verification_base_url="http://t/"
    )
    with pytest.raises(EmailNotVerified):
        store_create(tenant=user.memberships.get().tenant, name="nope", engine="woocommerce", actor=user)


@override_settings(PLATFORM_MAX_LIVE_STORES=2)
def test_the_platform_ceiling_stops_every_tenant_with_a_clear_message(client, owner, tenant):
    StoreFactory(tenant=TenantFactory(), name="first-one")
    StoreFactory(tenant=tenant, name="second-one")
    with pytest.raises(PlatformAtCapacity):
        store_create(tenant=tenant, name="third-one", engine="woocommerce")
    # Asking again for a store you already have still answers.
    assert store_create(tenant=tenant, name="second-one", engine="woocommerce")[1] is False
    client.force_login(owner)
    page = client.post("/stores/new/", {"name": "third-one", "engine": "woocommerce"})
    assert page.status_code == 400 and "The platform is at capacity" in page.content.decode()
    assert Store.objects.count() == 2
