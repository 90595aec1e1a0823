"""Custom domains: every refusal, the status writer, and ownership checks against a real DNS server
on loopback (testkit.dns_server) queried by the product's own resolver."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, StoreStatus
from stores.domain_transitions import domain_transition
from stores.domains import (
    domain_add,
    domain_check,
    domain_normalize,
    domain_remove,
    domain_required_records,
    domain_route,
    domain_verification_name,
    domains_recheck_due,
    domains_unroute_removed,
)
from stores.exceptions import DomainInvalid, DomainTaken, InvalidDomainState
from stores.lifecycle import store_request_teardown
from stores.models import StoreDomain, StoreDomainEvent
from stores.release import store_helm_values
from stores.tasks import domains_recheck
from stores.tests.factories import ProvisioningRunFactory, StoreFactory, TenantFactory
from stores.transitions import store_transition
from testkit.dns_server import dns_server

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def platform_hosts(settings):
    settings.STORE_BASE_DOMAIN = "shops.test"
    settings.DASHBOARD_HOST = "dashboard.shops.test"
    settings.DOMAIN_INGRESS_CNAME_TARGET = "ingress.shops.test"
    settings.DOMAIN_RESERVED_HOSTS = ["status.platform.test"]
    settings.DOMAIN_VERIFICATION_PREFIX = "shops-challenge"
    settings.DOMAIN_RECHECK_FIRST_SECONDS = 60
    settings.DOMAIN_RECHECK_MAX_SECONDS = 3600
    settings.DOMAIN_VERIFY_DEADLINE_SECONDS = 86400


@pytest.fixture
def dns(settings):
    with dns_server() as server:
        settings.DOMAIN_DNS_NAMESERVERS = [server.nameserver]
        settings.DOMAIN_DNS_LIFETIME_SECONDS = 2.0
        yield server


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, ready=True)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("", "Enter a domain"),
        ("shop", "not a full domain name"),
        ("shop..example.com", "not a full domain name"),
        ("sh op.example.com", "spaces"),
        ("shop\u200b.example.com", "invisible"),
        ("-shop.example.com", "not a valid domain label"),
        ("shop_1.example.com", "not a valid domain label"),
        ("a" * 64 + ".example.com", "not a valid domain label"),
        (".".join(["a" * 60] * 5) + ".com", "at most 253"),
        ("https://shop.example.com/", "without a scheme"),
        ("shop.example.com:8443", "without a scheme"),
        ("shop.example.123", "no valid top-level domain"),
        ("xn--zzzzzzz-.example.com", "not a valid"),
        ("192.0.2.10", "IP address"),
        ("2001:db8::1", "IP address"),
        ("[2001:db8::1]", "IP address"),
        ("*.example.com", "Wildcard"),
        ("shop.*.example.com", "Wildcard"),
        ("shops.test", "belongs to the platform"),
        ("coffee.shops.test", "belongs to the platform"),
        ("Dashboard.Shops.Test.", "belongs to the platform"),
        ("status.platform.test", "belongs to the platform"),
        # Cyrillic о and а: look like the platform's hosts, in Unicode and as punycode.
        ("coffee.sh\u043eps.test", "looks like the platform"),
        ("d\u0430shboard.shops.test".replace("shops.test", "example.com"), None),
    ],
)
def test_normalize_refuses_with_a_clear_message(raw, message):
    if message is None:
        # A look-alike of something that is not a platform host is an ordinary IDN domain.
        assert domain_normalize(raw).startswith("xn--")
        return
    with pytest.raises(DomainInvalid) as refused:
        domain_normalize(raw)
    assert message in refused.value.message


def test_punycode_look_alike_of_the_platform_is_refused_in_ascii_form_too():
    ascii_form = "sh\u043eps".encode("idna").decode()
    with pytest.raises(DomainInvalid, match="looks like the platform"):
        domain_normalize(f"{ascii_form}.test")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Shop.Example.COM.", "shop.example.com"),
        ("  www.example.co.uk ", "www.example.co.uk"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("shops.test.example.com", "shops.test.example.com"),
    ],
)
def test_normalize_accepts_real_domains_in_ascii_form(raw, normal):
    assert domain_normalize(raw) == normal


def test_add_creates_pending_domain_with_token_and_event(store, owner):
    domain = domain_add(store=store, domain="Shop.Example.com", actor=owner)
    assert domain.status == DomainStatus.PENDING_VERIFICATION
    assert domain.domain == "shop.example.com"
    assert len(domain.token) >= 32
    event = StoreDomainEvent.objects.get(domain=domain)
    assert (event.old_status, event.new_status, event.actor) == ("", DomainStatus.PENDING_VERIFICATION, owner)


def test_refused_add_loses_nothing(store):
    domain_add(store=store, domain="shop.example.com")
    with pytest.raises(DomainInvalid):
        domain_add(store=store, domain="*.example.com")
    assert list(StoreDomain.objects.values_list("domain", flat=True)) == ["shop.example.com"]


def test_tokens_differ_per_domain(store):
    first = domain_add(store=store, domain="a.example.com")
    second = domain_add(store=store, domain="b.example.com")
    assert first.token != second.token


def test_domain_claimed_by_another_tenant_is_refused(store):
    domain_add(store=store, domain="shop.example.com")
    stranger = StoreFactory(tenant=TenantFactory(), ready=True)
    with pytest.raises(DomainTaken, match="claimed by another account"):
        domain_add(store=stranger, domain="SHOP.example.com.")


def test_same_domain_twice_in_one_tenant_names_the_store(store, tenant):
    domain_add(store=store, domain="shop.example.com")
    with pytest.raises(DomainTaken, match="already added to this store"):
        domain_add(store=store, domain="shop.example.com")
    sibling = StoreFactory(tenant=tenant, ready=True)
    with pytest.raises(DomainTaken, match=f"your store {store.name}"):
        domain_add(store=sibling, domain="shop.example.com")


def test_database_refuses_two_live_claims(store):
    domain_add(store=store, domain="shop.example.com")
    other = StoreFactory(tenant=TenantFactory(), ready=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        StoreDomain.objects.create(store=other, domain="shop.example.com", token="x")


def test_removed_domain_is_free_for_another_tenant(store):
    domain = domain_add(store=store, domain="shop.example.com")
    domain_remove(domain=domain)
    stranger = StoreFactory(tenant=TenantFactory(), ready=True)
    assert domain_add(store=stranger, domain="shop.example.com").store == stranger


def test_teardown_frees_the_stores_domains(store):
    domain = domain_add(store=store, domain="shop.example.com")
    store_request_teardown(store=store)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.REMOVED
    assert domain.events.last().reason == "The store is being torn down."


def test_writer_refuses_moves_the_map_forbids(store):
    domain = domain_add(store=store, domain="shop.example.com")
    assert not domain_transition(domain_id=domain.pk, to=DomainStatus.ACTIVE)
    assert not domain_transition(domain_id=domain.pk, to=DomainStatus.ISSUING)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.PENDING_VERIFICATION
    assert domain.events.count() == 1


def test_writer_walks_the_happy_path_with_one_event_each(store):
    domain = domain_add(store=store, domain="shop.example.com")
    for target in (DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.ACTIVE, DomainStatus.REMOVED):
        assert domain_transition(domain_id=domain.pk, to=target, reason=f"to {target}")
    assert not domain_transition(domain_id=domain.pk, to=DomainStatus.PENDING_VERIFICATION)
    moves = list(domain.events.values_list("old_status", "new_status"))
    assert moves == [
        ("", "pending_verification"),
        ("pending_verification", "verified"),
        ("verified", "issuing"),
        ("issuing", "active"),
        ("active", "removed"),
    ]


def test_only_from_narrows_the_sources(store):
    domain = domain_add(store=store, domain="shop.example.com")
    assert not domain_transition(
        domain_id=domain.pk, to=DomainStatus.FAILED, only_from=[DomainStatus.ISSUING]
    )
    assert domain_transition(
        domain_id=domain.pk, to=DomainStatus.FAILED, only_from=[DomainStatus.PENDING_VERIFICATION]
    )


def test_records_show_the_txt_and_the_ingress_target(store, settings):
    settings.DOMAIN_INGRESS_ADDRESSES = ["203.0.113.7", "2001:db8::7"]
    domain = domain_add(store=store, domain="shop.example.com")
    records = [(r.type, r.name, r.value) for r in domain_required_records(domain)]
    assert records == [
        ("TXT", "_shops-challenge.shop.example.com", domain.token),
        ("CNAME", "shop.example.com", "ingress.shops.test"),
        ("A", "shop.example.com", "203.0.113.7"),
        ("AAAA", "shop.example.com", "2001:db8::7"),
    ]


def test_check_with_the_token_verifies_and_reinstalls_the_store(store, dns):
    domain = domain_add(store=store, domain="shop.example.com")
    dns.zone.set_txt(domain_verification_name(domain.domain), "unrelated", domain.token)
    checked = domain_check(domain_id=domain.pk)
    assert checked.status == DomainStatus.VERIFIED
    assert checked.verified_at is not None
    assert "_shops-challenge.shop.example.com" in dns.zone.queries
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert "shop.example.com" in store.status_reason
    assert (
        ProvisioningRun.objects.filter(store=store, kind=RunKind.PROVISION, status=RunStatus.QUEUED).count()
        == 1
    )
    assert store_helm_values(store)["domains"]["hosts"] == ["shop.example.com"]


def test_unverified_domain_is_not_in_helm_values(store):
    domain_add(store=store, domain="shop.example.com")
    assert store_helm_values(store)["domains"]["hosts"] == []


def test_check_without_record_stays_pending_and_backs_off(store, dns):
    domain = domain_add(store=store, domain="shop.example.com")
    now = timezone.now()
    checked = domain_check(domain_id=domain.pk, now=now)
    assert checked.status == DomainStatus.PENDING_VERIFICATION
    assert "No TXT record _shops-challenge.shop.example.com found yet" in checked.status_reason
    assert checked.check_attempts == 1
    assert checked.next_check_at == now + timedelta(seconds=60)
    again = domain_check(domain_id=domain.pk, now=now)
    assert again.next_check_at == now + timedelta(seconds=120)
    store.refresh_from_db()
    assert store.status == StoreStatus.READY


def test_backoff_is_capped(store, dns):
    domain = domain_add(store=store, domain="shop.example.com")
    StoreDomain.objects.filter(pk=domain.pk).update(check_attempts=30)
    now = timezone.now()
    assert domain_check(domain_id=domain.pk, now=now).next_check_at == now + timedelta(seconds=3600)


def test_check_with_a_wrong_token_says_what_it_saw(store, dns):
    domain = domain_add(store=store, domain="shop.example.com")
    dns.zone.set_txt(domain_verification_name(domain.domain), "stale-token")
    checked = domain_check(domain_id=domain.pk)
    assert checked.status == DomainStatus.PENDING_VERIFICATION
    assert "“stale-token”, not this domain's token" in checked.status_reason


def test_another_domains_token_proves_nothing(store, dns):
    first = domain_add(store=store, domain="a.example.com")
    second = domain_add(store=store, domain="b.example.com")
    dns.zone.set_txt(domain_verification_name(second.domain), first.token)
    assert domain_check(domain_id=second.pk).status == DomainStatus.PENDING_VERIFICATION


def test_check_with_dns_down_says_so(store, settings):
    # A loopback port with nothing listening: the resolver's queries go unanswered.
    with dns_server() as server:
        silent = server.nameserver
    settings.DOMAIN_DNS_NAMESERVERS = [silent]
    settings.DOMAIN_DNS_LIFETIME_SECONDS = 0.5
    domain = domain_add(store=store, domain="shop.example.com")
    checked = domain_check(domain_id=domain.pk)
    assert checked.status == DomainStatus.PENDING_VERIFICATION
    assert "No nameserver answered" in checked.status_reason


def test_past_the_deadline_fails_and_check_now_starts_over(store, dns, owner):
    domain = domain_add(store=store, domain="shop.example.com")
    later = domain.created_at + timedelta(days=2)
    failed = domain_check(domain_id=domain.pk, now=later)
    assert failed.status == DomainStatus.FAILED
    assert "Check now" in failed.status_reason
    dns.zone.set_txt(domain_verification_name(domain.domain), domain.token)
    checked = domain_check(domain_id=domain.pk, actor=owner, now=later)
    assert checked.status == DomainStatus.VERIFIED
    assert list(checked.events.values_list("new_status", flat=True)) == [
        "pending_verification",
        "failed",
        "pending_verification",
        "verified",
    ]


def test_the_periodic_pass_checks_only_due_domains(store, dns):
    due = domain_add(store=store, domain="due.example.com")
    waiting = domain_add(store=store, domain="waiting.example.com")
    now = timezone.now()
    StoreDomain.objects.filter(pk=waiting.pk).update(next_check_at=now + timedelta(hours=1))
    dns.zone.set_txt(domain_verification_name(due.domain), due.token)
    dns.zone.set_txt(domain_verification_name(waiting.domain), waiting.token)
    domains_recheck_due(now=now)
    due.refresh_from_db()
    waiting.refresh_from_db()
    assert due.status == DomainStatus.VERIFIED
    assert waiting.status == DomainStatus.PENDING_VERIFICATION
    assert "waiting.example.com" not in " ".join(dns.zone.queries)


def test_verified_domain_issues_once_an_install_after_verification_succeeded(store):
    domain = domain_add(store=store, domain="shop.example.com")
    verified_at = timezone.now()
    domain_transition(domain_id=domain.pk, to=DomainStatus.VERIFIED, fields={"verified_at": verified_at})
    ProvisioningRunFactory(store=store, succeeded=True, started_at=verified_at - timedelta(minutes=1))
    domain_route(domain_id=domain.pk)
    domain.refresh_from_db()
    # The only install ran before the verification: the store is asked to install again.
    assert domain.status == DomainStatus.VERIFIED
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(
        status=RunStatus.SUCCEEDED, started_at=verified_at + timedelta(seconds=1)
    )
    domain_route(domain_id=domain.pk)
    domain.refresh_from_db()
    assert domain.status == DomainStatus.ISSUING


def test_removing_a_routed_domain_reinstalls_the_store(store):
    domain = domain_add(store=store, domain="shop.example.com")
    domain_transition(domain_id=domain.pk, to=DomainStatus.VERIFIED, fields={"verified_at": timezone.now()})
    removed = domain_remove(domain=domain)
    assert removed.status == DomainStatus.REMOVED
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert "Unrouting" in store.status_reason
    assert store_helm_values(store)["domains"]["hosts"] == []


def test_checking_a_removed_domain_is_refused(store):
    domain = domain_add(store=store, domain="shop.example.com")
    domain_remove(domain=domain)
    with pytest.raises(InvalidDomainState):
        domain_check(domain_id=domain.pk)


def test_the_beat_task_runs_the_pass(store, dns):
    domain = domain_add(store=store, domain="shop.example.com")
    dns.zone.set_txt(domain_verification_name(domain.domain), domain.token)
    assert domains_recheck() == 2  # the due check, then routing the domain it verified
    domain.refresh_from_db()
    assert domain.status == DomainStatus.VERIFIED


def test_a_domain_removed_while_the_store_is_busy_is_unrouted_by_the_pass(store):
    domain = domain_add(store=store, domain="shop.example.com")
    domain_transition(domain_id=domain.pk, to=DomainStatus.VERIFIED, fields={"verified_at": timezone.now()})
    busy = ProvisioningRunFactory(store=store, running=True)
    domain_remove(domain=domain)
    store.refresh_from_db()
    assert store.status == StoreStatus.READY  # busy: nothing asked for yet
    assert domains_unroute_removed() == 0
    # The busy install rendered the old values; once it is over the pass asks for one without the domain.
    ProvisioningRun.objects.filter(pk=busy.pk).update(
        status=RunStatus.SUCCEEDED, started_at=timezone.now() - timedelta(minutes=1)
    )
    assert domains_unroute_removed() == 1
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED and "Unrouting" in store.status_reason
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(
        status=RunStatus.SUCCEEDED, started_at=timezone.now()
    )
    for step in (StoreStatus.PROVISIONING, StoreStatus.READY):
        assert store_transition(store_id=store.pk, to=step)
    assert domains_unroute_removed() == 0


def test_removing_a_never_verified_domain_reinstalls_nothing(store):
    domain = domain_add(store=store, domain="shop.example.com")
    domain_remove(domain=domain)
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    assert domains_unroute_removed() == 0
