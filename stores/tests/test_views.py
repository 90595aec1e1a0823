"""Merchant pages: every page, every bad input, tenancy and the status fragments."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from knox.models import AuthToken

from stores.choices import DomainStatus, StoreEventKind, StoreStatus
from stores.credentials import ClusterUnavailable, StoreCredentials
from stores.domains import domain_add
from stores.models import Membership, Store, StoreDomain, StoreEvent
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.transitions import store_record_event, store_transition

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def _pages_settings(settings):
    settings.CLUSTER_IS_SIMULATED = True  # no page view tries to reach a cluster
    settings.AUTH_RATE_LIMIT_ATTEMPTS = 5
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def merchant(client, owner):
    client.force_login(owner)
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", response.content.decode())


# --- Anonymous visitors -------------------------------------------------------------------------------


def test_landing_offers_both_engines_and_a_call_to_action(client):
    response = client.get("/")
    assert response.status_code == 200
    text = _text(response)
    assert "WooCommerce" in text and "Medusa" in text
    assert reverse("stores:signup") in text and "Create your store" in text
    assert "1 CPU" in text  # the default plan's WooCommerce size


@pytest.mark.parametrize(
    "url",
    [
        "/stores/",
        "/stores/new/",
        "/stores/new/check-name/?name=abc",
        "/stores/shop/",
        "/stores/shop/status/",
        "/stores/shop/row/",
        "/settings/tokens/",
        "/accounts/password_change/",
    ],
)
def test_anonymous_visitors_are_sent_to_login(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith(f"{reverse('login')}?next=")


@pytest.mark.parametrize(
    "url", ["/stores/shop/retry/", "/stores/shop/delete/", "/stores/shop/credentials/", "/stores/new/"]
)
def test_anonymous_posts_are_sent_to_login_and_change_nothing(client, url):
    response = client.post(url, {"name": "shop", "engine": "woocommerce", "confirm_name": "shop"})
    assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert Store.objects.count() == 0


def test_an_expired_session_on_a_polled_fragment_redirects_the_whole_page(client):
    response = client.get("/stores/shop/status/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"].startswith(reverse("login"))


def test_a_path_with_cr_lf_is_encoded_into_the_htmx_login_redirect(client):
    """Issue 15: the raw path went into the HX-Redirect header and CR/LF made it a 500."""
    response = client.get("/stores/a%0D%0Ab%26c/status/", headers={"HX-Request": "true"})
    assert response.status_code == 204
    assert response["HX-Redirect"] == "/accounts/login/?next=%2Fstores%2Fa%0D%0Ab%26c%2Fstatus%2F"


def test_cluster_banner_shows_on_every_page(client, merchant, tenant):
    StoreFactory(tenant=tenant, name="bannered")
    for url in ["/", "/stores/", "/stores/new/", "/stores/bannered/", "/settings/tokens/"]:
        assert "Simulated cluster" in _text(merchant.get(url)), url
    client.logout()
    for url in ["/", "/signup/", "/accounts/login/", "/no-such-page/"]:
        assert "Simulated cluster" in _text(client.get(url)), url


def test_unreachable_cluster_banner_says_stores_are_retried(client, settings, monkeypatch):
    settings.CLUSTER_IS_SIMULATED = False
    settings.KUBECONFIG = "/nonexistent/kubeconfig"
    text = _text(client.get("/"))
    assert "The cluster does not answer" in text and "retried automatically" in text


def test_no_cluster_configured_banner_says_stores_wait(client, settings, monkeypatch, tmp_path):
    settings.CLUSTER_IS_SIMULATED = False
    settings.KUBECONFIG = ""
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    text = _text(client.get("/"))
    assert "No cluster configured" in text and "wait in “requested”" in text


def test_unknown_page_is_a_friendly_404(client):
    response = client.get("/definitely/not/here/")
    assert response.status_code == 404
    assert "We could not find that page" in _text(response)


# --- Signup, login, password ------------------------------------------------------------------------


def test_signup_creates_user_tenant_and_membership_and_logs_in(client):
    response = client.post(
        "/signup/", {"email": "Ada@Example.com", "password": PASSWORD, "organisation": "Ada's Bikes"}
    )
    assert response.status_code == 302 and response["Location"] == reverse("stores:dashboard")
    user = get_user_model().objects.get(username="ada@example.com")
    membership = Membership.objects.get(user=user)
    assert membership.role == "owner" and membership.tenant.name == "Ada's Bikes"
    assert membership.tenant.plan.is_default
    dashboard = client.get("/stores/")
    assert dashboard.status_code == 200 and "Launch your first store" in _text(dashboard)


def test_signup_rejects_a_weak_password_with_the_error_tied_to_the_field(client):
    response = client.post(
        "/signup/", {"email": "b@example.com", "password": "12345678", "organisation": "B"}
    )
    assert response.status_code == 400
    text = _text(response)
    assert "This password is too common" in text
    assert 'aria-describedby="id_password_help id_password_errors"' in text
    assert 'aria-invalid="true"' in text and 'id="id_password_errors"' in text
    assert not get_user_model().objects.filter(username="b@example.com").exists()


def test_signup_with_an_existing_email_says_log_in_instead(client, owner):
    response = client.post("/signup/", {"email": owner.email, "password": PASSWORD, "organisation": "Again"})
    assert response.status_code == 400
    assert "already exists" in _text(response)


def test_signup_requires_every_field(client):
    response = client.post("/signup/", {})
    assert response.status_code == 400
    assert _text(response).count("This field is required.") == 3


def test_signup_is_rate_limited_per_ip(client):
    for n in range(5):
        client.post("/signup/", {"email": f"x{n}@example.com", "password": "short", "organisation": "X"})
    response = client.post(
        "/signup/", {"email": "late@example.com", "password": PASSWORD, "organisation": "X"}
    )
    assert response.status_code == 429
    assert "Too many attempts" in _text(response)
    assert 0 < int(response["Retry-After"]) <= 300
    assert not get_user_model().objects.filter(username="late@example.com").exists()


def test_login_with_email_and_logout(client, owner):
    response = client.post("/accounts/login/", {"username": owner.email.upper(), "password": PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/stores/"
    assert client.get("/stores/").status_code == 200
    assert client.post("/accounts/logout/").status_code == 302
    assert client.get("/stores/").status_code == 302


def test_password_change_and_reset(merchant, client, owner):
    assert "Change your password" in _text(merchant.get("/accounts/password_change/"))
    response = merchant.post(
        "/accounts/password_change/",
        {
            "old_password": PASSWORD,
            "new_password1": "a much better passphrase",
            "new_password2": "a much better passphrase",
        },
    )
    assert response.status_code == 302
    merchant.post("/accounts/logout/")
    assert "Reset your password" in _text(client.get("/accounts/password_reset/"))
    response = client.post("/accounts/password_reset/", {"email": owner.email})
    assert response.status_code == 302
    assert len(mail.outbox) == 1 and "/accounts/reset/" in mail.outbox[0].body
    link = re.search(r"http://testserver(/accounts/reset/\S+/)", mail.outbox[0].body).group(1)
    form_page = client.get(link, follow=True)
    assert "Choose a new password" in _text(form_page)


# --- Dashboard ---------------------------------------------------------------------------------------


def test_dashboard_lists_only_this_tenants_live_stores_with_plan_usage(merchant, tenant, other_tenant):
    StoreFactory(tenant=tenant, name="mine-ready", status=StoreStatus.READY)
    StoreFactory(tenant=tenant, name="mine-queued")
    StoreFactory(tenant=tenant, name="mine-gone", status=StoreStatus.DELETED)
    StoreFactory(tenant=other_tenant, name="theirs")
    text = _text(merchant.get("/stores/"))
    assert "mine-ready" in text and "mine-queued" in text
    assert "theirs" not in text and "mine-gone" not in text
    assert "2 of 3" in text
    # The address is a link only when the store is ready.
    assert '<a href="http://mine-ready.127.0.0.1.nip.io/"' in text
    assert '<a href="http://mine-queued.127.0.0.1.nip.io/"' not in text
    # Changing rows poll their own fragment; settled rows do not.
    assert f'hx-get="{reverse("stores:row", args=["mine-queued"])}"' in text
    assert f'hx-get="{reverse("stores:row", args=["mine-ready"])}"' not in text


def test_dashboard_at_the_plan_limit_hides_the_launch_link(merchant, tenant):
    for name in ["one-a", "two-b", "three-c"]:
        StoreFactory(tenant=tenant, name=name)
    text = _text(merchant.get("/stores/"))
    assert "3 of 3" in text and "Delete a store to launch another" in text
    assert f'href="{reverse("stores:new")}"' not in text


def test_a_user_without_an_organisation_gets_a_clear_403(client, db):
    staff = get_user_model().objects.create_user(username="staff@example.com", password=PASSWORD)
    client.force_login(staff)
    response = client.get("/stores/")
    assert response.status_code == 403 and "does not belong to an organisation" in _text(response)


def test_row_fragment_follows_the_store_and_is_empty_once_deleted(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="rowed", status=StoreStatus.DELETING)
    response = merchant.get("/stores/rowed/row/")
    assert "Deleting" in _text(response) and "hx-trigger" in _text(response)
    store_transition(store_id=store.pk, to=StoreStatus.DELETED)
    response = merchant.get("/stores/rowed/row/")
    assert response.status_code == 200 and response.content == b""


# --- Launch ------------------------------------------------------------------------------------------


def test_launch_page_describes_each_engine_and_its_size(merchant):
    response = merchant.get("/stores/new/")
    text = _text(response)
    assert response.status_code == 200
    assert "MariaDB database" in text and "PostgreSQL and Redis" in text
    assert "1 CPU" in text and "2 CPU" in text and "2Gi memory" in text
    assert "0 of 3 stores" in text
    assert 'hx-get="/stores/new/check-name/"' in text and "delay:350ms" in text


def test_launch_creates_the_store_and_opens_its_page(merchant, tenant, owner):
    response = merchant.post("/stores/new/", {"name": "coffee", "engine": "medusa"})
    assert response.status_code == 302 and response["Location"] == "/stores/coffee/"
    store = Store.objects.get(name="coffee")
    assert (store.tenant, store.engine, store.created_by) == (tenant, "medusa", owner)
    page = merchant.get(response["Location"])
    assert "is on its way" in _text(page)


def test_double_submit_lands_on_the_same_store(merchant):
    first = merchant.post("/stores/new/", {"name": "twice", "engine": "woocommerce"})
    second = merchant.post("/stores/new/", {"name": "twice", "engine": "woocommerce"})
    assert first["Location"] == second["Location"] == "/stores/twice/"
    assert Store.objects.filter(name="twice").count() == 1
    assert "already requested" in _text(merchant.get("/stores/twice/"))


def test_double_submit_at_the_plan_limit_still_lands_on_the_store(merchant, tenant):
    StoreFactory(tenant=tenant, name="first-one")
    StoreFactory(tenant=tenant, name="second-one")
    merchant.post("/stores/new/", {"name": "third-one", "engine": "woocommerce"})
    again = merchant.post("/stores/new/", {"name": "third-one", "engine": "woocommerce"})
    assert again.status_code == 302 and Store.objects.filter(tenant=tenant).count() == 3


def test_the_launch_button_disables_itself_on_submit(merchant):
    text = _text(merchant.get("/stores/new/"))
    assert "data-disable-on-submit" in text and 'data-submit-label="Launching…"' in text


@pytest.mark.parametrize(
    ("name", "message", "suggestion"),
    [
        ("My Shop", "cannot contain spaces", "my-shop"),
        ("Coffee", "must be lowercase", "coffee"),
        ("ab", "at least 3 characters", "ab-shop"),
        ("shop_1", "cannot contain underscores", "shop-1"),
        ("-shop", "start and end with a letter or digit", "shop"),
        ("x" * 60, "at most 57 characters", "x" * 57),
        ("café", "letters a-z", "cafe"),
        ("", "Store name is required.", "my-shop"),
    ],
)
def test_launch_rejects_invalid_names_with_the_reason_and_a_suggestion(merchant, name, message, suggestion):
    response = merchant.post("/stores/new/", {"name": name, "engine": "woocommerce"})
    assert response.status_code == 400
    text = _text(response)
    assert message in text
    if suggestion:
        assert f"Try “{suggestion}”" in text
    assert 'aria-invalid="true"' in text
    assert Store.objects.count() == 0


@pytest.mark.parametrize("name", ["admin", "www", "kube-system", "api"])
def test_launch_rejects_reserved_names(merchant, name):
    response = merchant.post("/stores/new/", {"name": name, "engine": "woocommerce"})
    assert response.status_code == 400
    assert "is reserved by the platform" in _text(response)
    assert Store.objects.count() == 0


def test_launch_rejects_an_unknown_engine(merchant):
    response = merchant.post("/stores/new/", {"name": "shopify", "engine": "magento"})
    assert response.status_code == 400 and "Select a valid choice" in _text(response)
    assert Store.objects.count() == 0


def test_launch_over_the_plan_limit_names_the_plan(merchant, tenant):
    for name in ["one-a", "two-b", "three-c"]:
        StoreFactory(tenant=tenant, name=name)
    response = merchant.post("/stores/new/", {"name": "four-d", "engine": "woocommerce"})
    assert response.status_code == 400
    text = _text(response)
    assert "allows 3 stores" in text and tenant.plan.name in text
    assert not Store.objects.filter(name="four-d").exists()


def test_deleted_stores_free_their_plan_slot(merchant, tenant):
    for name in ["one-a", "two-b"]:
        StoreFactory(tenant=tenant, name=name)
    StoreFactory(tenant=tenant, name="three-c", status=StoreStatus.DELETED)
    assert merchant.post("/stores/new/", {"name": "four-d", "engine": "woocommerce"}).status_code == 302


def test_launch_with_a_name_another_tenant_uses_is_a_conflict(merchant, other_tenant):
    StoreFactory(tenant=other_tenant, name="popular")
    response = merchant.post("/stores/new/", {"name": "popular", "engine": "woocommerce"})
    assert response.status_code == 400
    assert "already taken" in _text(response)
    assert Store.objects.filter(name="popular").count() == 1


def test_launch_with_own_name_but_other_engine_is_a_conflict(merchant, tenant):
    StoreFactory(tenant=tenant, name="mixed")
    response = merchant.post("/stores/new/", {"name": "mixed", "engine": "medusa"})
    assert response.status_code == 400 and "You already have a store called" in _text(response)


def test_check_name_explains_and_suggests(merchant, tenant, other_tenant):
    StoreFactory(tenant=other_tenant, name="taken-name")
    StoreFactory(tenant=tenant, name="mine-already")

    bad = _text(merchant.get("/stores/new/check-name/", {"name": "My Shop"}))
    assert "cannot contain spaces" in bad and 'data-use-name="my-shop"' in bad
    reserved = _text(merchant.get("/stores/new/check-name/", {"name": "admin"}))
    assert "reserved" in reserved and 'data-use-name="admin-shop"' in reserved
    taken = _text(merchant.get("/stores/new/check-name/", {"name": "taken-name", "engine": "woocommerce"}))
    assert "already taken" in taken and "data-use-name" not in taken
    free = _text(merchant.get("/stores/new/check-name/", {"name": "fresh-name"}))
    assert "is available" in free and "fresh-name.127.0.0.1.nip.io" in free
    mine = _text(merchant.get("/stores/new/check-name/", {"name": "mine-already", "engine": "woocommerce"}))
    assert "You already have" in mine
    assert merchant.get("/stores/new/check-name/", {"name": ""}).content.strip() == b""
    assert Store.objects.count() == 2


# --- Store page --------------------------------------------------------------------------------------


def test_store_page_timeline_follows_the_events(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="timeline", status=StoreStatus.PROVISIONING)
    store_record_event(store_id=store.pk, kind=StoreEventKind.STEP, step="namespace", reason="ns")
    store_record_event(store_id=store.pk, kind=StoreEventKind.STEP, step="secrets", reason="secret")
    text = _text(merchant.get("/stores/timeline/"))
    states = dict(re.findall(r'timeline__step--(\w+)" data-step="([\w-]+)"', text)[i][::-1] for i in range(5))
    assert states == {
        "requested": "done",
        "namespace": "done",
        "secrets": "done",
        "helm": "current",
        "ready": "pending",
    }
    # The status fragment keeps polling while the store changes.
    assert f'hx-get="{reverse("stores:status", args=["timeline"])}" hx-trigger="every 2s"' in text


def test_failed_store_explains_and_offers_retry(merchant, tenant):
    StoreFactory(
        tenant=tenant,
        name="broken",
        status=StoreStatus.FAILED,
        reason="helm timed out: the database pod never started.",
    )
    response = merchant.get("/stores/broken/")
    text = _text(response)
    assert "What went wrong:" in text and "the database pod never started" in text
    assert f'action="{reverse("stores:retry", args=["broken"])}"' in text
    assert "hx-trigger" not in text  # settled: no polling
    assert 'timeline__step--failed" data-step="namespace"' in text


def test_retry_requeues_a_failed_store(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="broken", status=StoreStatus.FAILED)
    assert merchant.get("/stores/broken/retry/").status_code == 405
    response = merchant.post("/stores/broken/retry/")
    assert response.status_code == 302 and response["Location"] == "/stores/broken/"
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    # A fresh timeline for the new attempt.
    text = _text(merchant.get("/stores/broken/"))
    assert 'timeline__step--current" data-step="namespace"' in text


def test_retry_of_a_ready_store_is_refused_with_a_message(merchant, tenant):
    StoreFactory(tenant=tenant, name="fine", status=StoreStatus.READY)
    page = merchant.post("/stores/fine/retry/", follow=True)
    assert "Only a failed store can be retried" in _text(page)
    assert Store.objects.get(name="fine").status == StoreStatus.READY


def test_ready_store_shows_storefront_admin_and_reveal(merchant, tenant):
    StoreFactory(tenant=tenant, name="shiny", status=StoreStatus.READY)
    StoreFactory(tenant=tenant, name="headless", status=StoreStatus.READY, engine="medusa")
    text = _text(merchant.get("/stores/shiny/"))
    assert 'href="http://shiny.127.0.0.1.nip.io/"' in text
    assert 'href="http://shiny.127.0.0.1.nip.io/wp-admin/"' in text
    assert "Reveal admin credentials" in text and "hx-trigger" not in text
    assert 'href="http://headless.127.0.0.1.nip.io/app/"' in _text(merchant.get("/stores/headless/"))


def test_status_fragment_is_only_the_panel_and_stops_polling_when_settled(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="settling", status=StoreStatus.PROVISIONING)
    fragment = merchant.get("/stores/settling/status/")
    assert fragment.status_code == 200 and "<html" not in _text(fragment)
    assert "hx-trigger" in _text(fragment) and "no-cache" in fragment["Cache-Control"]
    store_transition(store_id=store.pk, to=StoreStatus.READY)
    settled = _text(merchant.get("/stores/settling/status/"))
    assert 'data-status="ready"' in settled and "hx-trigger" not in settled


def test_reveal_credentials_is_post_only_audited_by_the_service_and_never_cached(
    merchant, tenant, monkeypatch
):
    store = StoreFactory(tenant=tenant, name="secretive", status=StoreStatus.READY)
    calls = []

    def reveal(*, store, actor):
        calls.append((store.name, actor.email))
        return StoreCredentials(
            admin_url=f"{store.public_url}wp-admin/",
            username="admin",
            email="a@example.com",
            password="s3cr3t-pw",
        )

    monkeypatch.setattr("stores.views.store_credentials_reveal", reveal)
    assert merchant.get("/stores/secretive/credentials/").status_code == 405
    fragment = merchant.post("/stores/secretive/credentials/", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "s3cr3t-pw" in _text(fragment) and "<html" not in _text(fragment)
    assert "no-store" in fragment["Cache-Control"] and "private" in fragment["Cache-Control"]
    full = merchant.post("/stores/secretive/credentials/")
    assert "<html" in _text(full) and "s3cr3t-pw" in _text(full) and "no-store" in full["Cache-Control"]
    assert calls == [("secretive", store.created_by.email if store.created_by else calls[0][1])] * 2
    # The secret is never part of the store page itself.
    assert "s3cr3t-pw" not in _text(merchant.get("/stores/secretive/"))


def test_reveal_credentials_writes_an_audit_event_through_the_service(merchant, tenant, monkeypatch):
    StoreFactory(tenant=tenant, name="audited", status=StoreStatus.READY)
    monkeypatch.setattr(
        "stores.credentials.cluster.read_credentials",
        lambda api, namespace, name: {"admin-username": "admin", "admin-password": "pw-from-secret"},
    )
    monkeypatch.setattr(
        "stores.credentials.ClusterAccess",
        lambda: type(
            "Access",
            (),
            {"api_client_factory": staticmethod(lambda: type("Api", (), {"close": lambda self: None})())},
        )(),
    )
    response = merchant.post("/stores/audited/credentials/", headers={"HX-Request": "true"})
    assert "pw-from-secret" in _text(response)
    event = StoreEvent.objects.get(store__name="audited", kind=StoreEventKind.AUDIT)
    assert event.step == "credentials-revealed"
    assert "Admin credentials revealed" in _text(merchant.get("/stores/audited/"))


def test_reveal_before_ready_and_with_the_cluster_down_explains(merchant, tenant, monkeypatch):
    StoreFactory(tenant=tenant, name="early")
    response = merchant.post("/stores/early/credentials/", headers={"HX-Request": "true"})
    assert response.status_code == 409 and "once the store is ready" in _text(response)
    assert "no-store" in response["Cache-Control"]

    StoreFactory(tenant=tenant, name="cloudy", status=StoreStatus.READY)

    def down(**kwargs):
        raise ClusterUnavailable("The cluster did not answer; try again in a minute.")

    monkeypatch.setattr("stores.views.store_credentials_reveal", down)
    response = merchant.post("/stores/cloudy/credentials/", headers={"HX-Request": "true"})
    assert response.status_code == 503 and "did not answer" in _text(response)


def test_delete_needs_the_exact_name(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="keeper", status=StoreStatus.READY)
    assert merchant.get("/stores/keeper/delete/").status_code == 405
    response = merchant.post("/stores/keeper/delete/", {"confirm_name": "Keeper"})
    assert response.status_code == 400
    text = _text(response)
    assert "does not match" in text and 'aria-describedby="id_confirm_name_errors"' in text
    store.refresh_from_db()
    assert store.status == StoreStatus.READY


def test_delete_starts_teardown_and_shows_its_progress(merchant, tenant):
    store = StoreFactory(tenant=tenant, name="goner", status=StoreStatus.READY)
    response = merchant.post("/stores/goner/delete/", {"confirm_name": "goner"})
    assert response.status_code == 302 and response["Location"] == "/stores/goner/"
    store.refresh_from_db()
    assert store.status == StoreStatus.DELETING
    text = _text(merchant.get("/stores/goner/"))
    assert "Deletion progress" in text and 'timeline__step--current" data-step="helm-uninstall"' in text
    assert "hx-trigger" in text and "Delete this store" not in text
    # Deleting twice is harmless.
    assert merchant.post("/stores/goner/delete/", {"confirm_name": "goner"}).status_code == 302
    store_transition(store_id=store.pk, to=StoreStatus.DELETED)
    text = _text(merchant.get("/stores/goner/"))
    assert "Store deleted" in text and "hx-trigger" not in text
    assert "goner" not in _text(merchant.get("/stores/")).split("Your stores", 2)[-1]


# --- Tenant isolation --------------------------------------------------------------------------------


def test_every_store_url_of_another_tenant_is_a_404(client, tenant, other_owner):
    store = StoreFactory(tenant=tenant, name="private-shop", status=StoreStatus.READY)
    failed = StoreFactory(tenant=tenant, name="private-failed", status=StoreStatus.FAILED)
    private_domain = domain_add(store=store, domain="private.example.com")
    client.force_login(other_owner)
    for name in [store.name, failed.name, "no-such-store"]:
        for route in ["detail", "status", "row", "domains", "activity"]:
            url = reverse(f"stores:{route}", args=[name])
            assert client.get(url).status_code == 404, url
            assert client.get(url, headers={"HX-Request": "true"}).status_code == 404, url
        for route, data in [
            ("retry", {}),
            ("suspend", {"reason": "not yours"}),
            ("resume", {}),
            ("delete", {"confirm_name": name}),
            ("credentials", {}),
            ("domain_add", {"domain": "shop.example.com"}),
            ("backup_create", {}),
        ]:
            url = reverse(f"stores:{route}", args=[name])
            assert client.post(url, data).status_code == 404, url
        for route in ["domain_check", "domain_remove", "domain_primary", "domain_unset_primary"]:
            url = reverse(f"stores:{route}", args=[name, private_domain.pk])
            assert client.post(url).status_code == 404, url
        url = reverse("stores:backup_restore", args=[name, 1])
        assert client.post(url, {"confirm_name": name}).status_code == 404, url
        url = reverse("stores:backup_new_store", args=[name, 1])
        assert client.post(url, {"name": "taken-from-them"}).status_code == 404, url
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY
    assert Store.objects.get(pk=failed.pk).status == StoreStatus.FAILED
    assert not StoreEvent.objects.filter(kind=StoreEventKind.AUDIT).exists()
    assert list(StoreDomain.objects.values_list("domain", "status")) == [
        ("private.example.com", DomainStatus.PENDING_VERIFICATION)
    ]
    assert "private-shop" not in _text(client.get("/stores/"))
    # The name check must not reveal more than "taken" about another tenant's store.
    assert "already taken" in _text(client.get("/stores/new/check-name/", {"name": "private-shop"}))


def test_every_customer_url_is_walked_by_the_isolation_test():
    from stores import urls

    walked = {"detail", "status", "row", "activity", "retry", "delete", "credentials", "suspend", "resume"}
    walked |= {
        "domains",
        "domain_add",
        "domain_check",
        "domain_remove",
        "domain_primary",
        "domain_unset_primary",
    }
    walked |= {"backup_create", "backup_restore", "backup_new_store"}
    # An endpoint is addressed by id, not store name: test_webhook_pages walks another tenant's.
    walked_by_id = {"webhook"}
    tenant_free = {
        *("landing", "signup", "dashboard", "new", "check_name", "tokens", "token_revoke", "webhooks"),
        *("verify_email", "verify_email_resend"),
    }
    assert {p.name for p in urls.urlpatterns} == walked | walked_by_id | tenant_free


# --- API tokens --------------------------------------------------------------------------------------


def test_tokens_are_shown_once_listed_and_revocable(merchant, owner, other_owner, client):
    assert "No tokens yet" in _text(merchant.get("/settings/tokens/"))
    created = merchant.post("/settings/tokens/")
    assert created.status_code == 201 and "no-store" in created["Cache-Control"]
    token = re.search(r'<code class="token" id="new-token">(\w+)</code>', created.content.decode()).group(1)
    row = AuthToken.objects.get(user=owner)
    assert row.token_key == token[:15]
    assert timedelta(days=89) < row.expiry - timezone.now() <= timedelta(days=90)
    listing = _text(merchant.get("/settings/tokens/"))
    assert f"{row.token_key}…" in listing and token not in listing

    # Another user can neither see nor revoke it.
    other = client.__class__()
    other.force_login(other_owner)
    assert row.token_key not in _text(other.get("/settings/tokens/"))
    assert other.post(reverse("stores:token_revoke", args=[row.token_key])).status_code == 404
    assert AuthToken.objects.filter(user=owner).count() == 1

    assert merchant.get(reverse("stores:token_revoke", args=[row.token_key])).status_code == 405
    revoked = merchant.post(reverse("stores:token_revoke", args=[row.token_key]), follow=True)
    assert "revoked" in _text(revoked) and not AuthToken.objects.filter(user=owner).exists()


def test_token_ttl_is_configurable(merchant, owner, settings):
    settings.API_TOKEN_TTL_DAYS = 7
    merchant.post("/settings/tokens/")
    expiry = AuthToken.objects.get(user=owner).expiry
    assert timedelta(days=6) < expiry - timezone.now() <= timedelta(days=7)


def test_the_signed_up_tenant_is_the_one_the_pages_use(client, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        client.post("/signup/", {"email": "solo@example.com", "password": PASSWORD, "organisation": "Solo"})
    client.get(re.search(r"http://testserver(/accounts/verify-email/\S+/)", mail.outbox[-1].body).group(1))
    MembershipFactory()  # someone else entirely
    client.post("/stores/new/", {"name": "solo-shop", "engine": "woocommerce"})
    assert Store.objects.get(name="solo-shop").tenant.name == "Solo"


@pytest.mark.parametrize("template", ["500.html", "403_csrf.html"])
def test_error_pages_render_without_a_request_context(template):
    # Django renders these with an empty context: the layout must not depend on context processors.
    from django.template.loader import render_to_string

    html = render_to_string(template)
    assert "<html" in html and "Store Platform" in html


def test_login_still_works_while_the_cache_redis_is_unreachable(client, owner):
    """Rate limiting is skipped (and logged) when Redis is down; signing in must not become a 500."""
    from django.test import override_settings

    unreachable = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:1/0",
        }
    }
    with override_settings(CACHES=unreachable):
        response = client.post(
            reverse("login"), {"username": owner.username, "password": "correct horse battery staple"}
        )
    assert response.status_code == 302


def test_progress_notice_is_shown_while_changing_and_cleared_once_settled(merchant, tenant):
    response = merchant.post("/stores/new/", {"name": "on-its-way", "engine": "woocommerce"}, follow=True)
    assert "is on its way" in _text(response)
    store = Store.objects.get(name="on-its-way")
    # The polled panel of a store still changing leaves the notice alone...
    polled = merchant.get(f"/stores/{store.name}/status/", HTTP_HX_REQUEST="true")
    assert 'id="progress-notices" hx-swap-oob' not in polled.content.decode()
    # ...and clears it out of band once the store has settled.
    assert store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING)
    assert store_transition(store_id=store.pk, to=StoreStatus.READY, reason="deployed")
    polled = merchant.get(f"/stores/{store.name}/status/", HTTP_HX_REQUEST="true")
    assert '<div id="progress-notices" hx-swap-oob="true"></div>' in polled.content.decode()


def test_a_progress_notice_for_a_store_settled_before_the_page_showed_is_not_shown(merchant, tenant):
    created = merchant.post("/stores/new/", {"name": "quick-one", "engine": "woocommerce"})
    assert created.status_code == 302  # the notice is queued for the next page
    store = Store.objects.get(name="quick-one")
    assert store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING)
    assert store_transition(store_id=store.pk, to=StoreStatus.READY, reason="deployed")

    page = _text(merchant.get(created["Location"]))
    assert "is on its way" not in page and "Ready" in page
