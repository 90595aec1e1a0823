"""Sign-in lockout (issue 15, finding 1 and 5): per (account, client) pair, a higher per-client ceiling,
the client's real address behind the ingress, atomic counting, the same rules on /admin/login/."""

from __future__ import annotations

import re
import threading

import pytest
import requests
from django.contrib.auth.backends import ModelBackend
from django.core.cache import cache

from stores.tests.factories import UserFactory

PASSWORD = "correct horse battery staple"
ATTACKER = "6.6.6.6"
VICTIM = "10.20.30.40"
INGRESS_POD = "10.42.0.7"  # what REMOTE_ADDR is for every request that came through the ingress


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AUTH_LOCKOUT_ATTEMPTS = 5
    settings.AUTH_LOCKOUT_CLIENT_ATTEMPTS = 10
    cache.clear()
    yield
    cache.clear()


def _login(client, email, password, **extra):
    return client.post("/accounts/login/", {"username": email, "password": password}, **extra)


@pytest.mark.django_db
def test_made_up_emails_from_one_client_do_not_lock_out_the_victim_from_elsewhere(client, owner):
    for n in range(10):
        assert _login(client, f"nobody{n}@example.com", "guess", REMOTE_ADDR=ATTACKER).status_code == 200
    # The attacker's own address has used up its ceiling (for every account, the victim's included) ...
    refused = _login(client, owner.email, PASSWORD, REMOTE_ADDR=ATTACKER)
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many failed sign-ins" in refused.content.decode()
    # ... but the victim, from their own address, signs in with their password.
    assert _login(client, owner.email, PASSWORD, REMOTE_ADDR=VICTIM).status_code == 302


@pytest.mark.django_db
def test_wrong_passwords_for_the_victims_email_do_not_lock_the_victim_out_from_their_address(client, owner):
    for _ in range(5):
        response = _login(client, owner.email, "wrong", REMOTE_ADDR=ATTACKER)
        assert response.status_code == 200 and "Please enter a correct" in response.content.decode()
    # The pair (victim's email, attacker's address) is locked: even the right password is not checked.
    assert _login(client, owner.email, PASSWORD, REMOTE_ADDR=ATTACKER).status_code == 429
    # Upper case is the same account to the limit.
    assert _login(client, owner.email.upper(), PASSWORD, REMOTE_ADDR=ATTACKER).status_code == 429
    assert _login(client, owner.email, PASSWORD, REMOTE_ADDR=VICTIM).status_code == 302


@pytest.mark.django_db
def test_behind_the_ingress_each_client_is_counted_by_its_own_address(client, owner, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    via_ingress = {"REMOTE_ADDR": INGRESS_POD}
    for _ in range(5):
        # The client forges an X-Forwarded-For entry; the ingress appends the real address.
        _login(client, owner.email, "wrong", HTTP_X_FORWARDED_FOR=f"{VICTIM}, {ATTACKER}", **via_ingress)
    assert (
        _login(client, owner.email, PASSWORD, HTTP_X_FORWARDED_FOR=ATTACKER, **via_ingress).status_code == 429
    )
    # Every request has the ingress pod's REMOTE_ADDR, yet the victim is not locked out with the attacker.
    assert (
        _login(client, owner.email, PASSWORD, HTTP_X_FORWARDED_FOR=VICTIM, **via_ingress).status_code == 302
    )


@pytest.mark.django_db
def test_a_successful_sign_in_gives_back_only_its_own_pairs_count(client, owner):
    for n in range(9):
        _login(client, f"nobody{n}@example.com", "guess", REMOTE_ADDR=ATTACKER)
    # The attacker's own account signs in: that does not reset the client's failures on other accounts.
    attacker = UserFactory(username="attacker@example.com")
    assert _login(client, attacker.email, PASSWORD, REMOTE_ADDR=ATTACKER).status_code == 302
    client.post("/accounts/logout/")
    _login(client, "nobody-last@example.com", "guess", REMOTE_ADDR=ATTACKER)
    assert _login(client, owner.email, PASSWORD, REMOTE_ADDR=ATTACKER).status_code == 429


@pytest.mark.django_db
def test_admin_login_is_limited_like_the_merchant_login(client):
    staff = UserFactory(username="staff@example.com", is_staff=True, is_superuser=True)
    for _ in range(5):
        response = client.post(
            "/admin/login/?next=/admin/",
            {"username": staff.username, "password": "wrong"},
            REMOTE_ADDR=ATTACKER,
        )
        assert response.status_code == 200
    locked = client.post(
        "/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD}, REMOTE_ADDR=ATTACKER
    )
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
    ok = client.post(
        "/admin/login/?next=/admin/", {"username": staff.username, "password": PASSWORD}, REMOTE_ADDR=VICTIM
    )
    assert ok.status_code == 302


@pytest.mark.django_db(transaction=True)
def test_concurrent_wrong_passwords_never_get_more_checks_than_the_limit(live_server, monkeypatch):
    """16 threads send a wrong password for one account at once, from one address, to a live server."""
    victim = UserFactory(username="victim@example.com")
    checked = []
    lock = threading.Lock()
    real_authenticate = ModelBackend.authenticate

    def counting_authenticate(self, request, username=None, password=None, **kwargs):
        with lock:
            checked.append(username)
        return real_authenticate(self, request, username=username, password=password, **kwargs)

    monkeypatch.setattr(ModelBackend, "authenticate", counting_authenticate)
    url = f"{live_server.url}/accounts/login/"
    sessions = []
    for _ in range(16):
        session = requests.Session()
        page = session.get(url, timeout=30)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        sessions.append((session, token))
    start = threading.Barrier(16)
    statuses: list[int] = []

    def attempt(session, token):
        start.wait(timeout=30)
        response = session.post(
            url,
            {"username": victim.username, "password": "wrong", "csrfmiddlewaretoken": token},
            headers={"Referer": url},
            timeout=60,
        )
        with lock:
            statuses.append(response.status_code)

    threads = [threading.Thread(target=attempt, args=pair) for pair in sessions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(statuses) == [200] * 5 + [429] * 11
    assert len(checked) == 5


# --- Password reset (finding 5) --------------------------------------------------------------------


@pytest.mark.django_db
def test_password_reset_is_limited_per_email_from_any_address(client, owner, settings):
    from django.core import mail

    settings.AUTH_RATE_LIMIT_ATTEMPTS = 5
    for n in range(5):
        response = client.post("/accounts/password_reset/", {"email": owner.email}, REMOTE_ADDR=f"10.0.0.{n}")
        assert response.status_code == 302
    refused = client.post("/accounts/password_reset/", {"email": owner.email}, REMOTE_ADDR="10.0.0.99")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert "Too many attempts" in refused.content.decode()
    assert len(mail.outbox) == 5


@pytest.mark.django_db
def test_password_reset_is_limited_per_client_across_emails(client, owner, settings):
    from django.core import mail

    settings.AUTH_RATE_LIMIT_ATTEMPTS = 5
    for n in range(5):
        client.post("/accounts/password_reset/", {"email": f"nobody{n}@example.com"}, REMOTE_ADDR=ATTACKER)
    assert (
        client.post("/accounts/password_reset/", {"email": owner.email}, REMOTE_ADDR=ATTACKER).status_code
        == 429
    )
    assert mail.outbox == []
    # Someone else, from their own address, still gets their link.
    assert (
        client.post("/accounts/password_reset/", {"email": owner.email}, REMOTE_ADDR=VICTIM).status_code
        == 302
    )
    assert len(mail.outbox) == 1


# --- Credential reveals on the pages (low item) ------------------------------------------------------


@pytest.mark.django_db
def test_credential_reveals_are_rate_limited_per_user(client, owner, tenant, settings, monkeypatch):
    from stores.choices import StoreStatus
    from stores.credentials import StoreCredentials
    from stores.tests.factories import StoreFactory

    settings.CLUSTER_IS_SIMULATED = True
    settings.CREDENTIALS_REVEAL_ATTEMPTS = 3
    StoreFactory(tenant=tenant, name="busy-shop", status=StoreStatus.READY)
    calls = []

    def reveal(*, store, actor):
        calls.append(store.name)
        return StoreCredentials(
            admin_url="http://x/wp-admin/", username="admin", email="a@x.io", password="pw-123456"
        )

    monkeypatch.setattr("stores.views.store_credentials_reveal", reveal)
    client.force_login(owner)
    statuses = [
        client.post("/stores/busy-shop/credentials/", headers={"HX-Request": "true"}).status_code
        for _ in range(5)
    ]
    assert statuses == [200, 200, 200, 429, 429]
    assert len(calls) == 3  # no Kubernetes call and no audit event past the limit
