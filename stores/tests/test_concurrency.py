"""Real threads, real database connections: the race for one live name has exactly one winner."""

import threading

import pytest
from django.db import connection, connections
from django.utils import timezone

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus
from stores.domain_transitions import domain_transition
from stores.domains import domain_add, domain_set_primary
from stores.exceptions import AccountExists, InvalidStoreState, StoreNameTaken
from stores.lifecycle import store_create
from stores.models import Membership, Store, StoreDomain
from stores.services import user_signup
from stores.tests.factories import StoreFactory, TenantFactory, default_plan

pytestmark = pytest.mark.django_db(transaction=True)


def _race(callables):
    barrier = threading.Barrier(len(callables))
    results: list[object] = [None] * len(callables)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # the assertion below inspects every outcome
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(callables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_tenants_racing_for_one_name_end_with_exactly_one_store():
    first, second = TenantFactory(), TenantFactory()
    results = _race(
        [
            lambda: store_create(tenant=first, name="contested", engine="woocommerce"),
            lambda: store_create(tenant=second, name="contested", engine="woocommerce"),
        ]
    )
    assert Store.objects.filter(name="contested").count() == 1
    assert ProvisioningRun.objects.count() == 1
    winners = [r for r in results if isinstance(r, tuple)]
    losers = [r for r in results if isinstance(r, StoreNameTaken)]
    assert len(winners) == 1 and len(losers) == 1, results


def test_twenty_identical_creates_of_one_tenant_make_one_store():
    tenant = TenantFactory()
    results = _race([lambda: store_create(tenant=tenant, name="samename", engine="medusa")] * 20)
    assert all(isinstance(r, tuple) for r in results), [r for r in results if not isinstance(r, tuple)]
    assert sum(1 for _, created in results if created) == 1
    assert len({store.pk for store, _ in results}) == 1
    assert Store.objects.count() == 1 and ProvisioningRun.objects.count() == 1


def test_concurrent_signups_with_one_email_make_one_account_and_no_500():
    """Issue 15: on PostgreSQL both signups saw no account and the second insert escaped as an
    IntegrityError (a 500). The loser now gets AccountExists, like a signup after the fact."""
    from django.contrib.auth import get_user_model

    default_plan()  # a transactional test before this one flushed the seeded plan
    password = "correct horse battery staple"
    results = _race(
        [
            lambda n=n: user_signup(email="same@example.com", password=password, organisation=f"Org {n}")
            for n in range(8)
        ]
    )
    assert get_user_model().objects.filter(username="same@example.com").count() == 1, results
    assert Membership.objects.filter(user__username="same@example.com").count() == 1
    losers = [r for r in results if isinstance(r, Exception)]
    assert len(losers) == 7 and all(isinstance(r, AccountExists) for r in losers), losers


def test_a_signup_that_loses_the_race_after_its_check_is_account_exists(monkeypatch):
    """The interleaving that PostgreSQL produces, made deterministic on any database: the account
    appears between this signup's check and its insert."""
    from django.contrib.auth import get_user_model
    from django.db.models import QuerySet

    get_user_model().objects.create_user(username="same@example.com", email="same@example.com", password="x")
    real_exists = QuerySet.exists
    calls = []

    def exists_once_too_early(self):
        calls.append(1)
        return False if len(calls) == 1 else real_exists(self)

    monkeypatch.setattr(QuerySet, "exists", exists_once_too_early)
    with pytest.raises(AccountExists):
        user_signup(email="same@example.com", password="correct horse battery staple", organisation="Late")


def test_database_vendor_is_reported(record_property):
    record_property("database", connection.vendor)
    assert connection.vendor in {"sqlite", "postgresql"}


def test_two_owners_making_different_domains_primary_at_once_end_with_one_primary():
    store = StoreFactory(tenant=TenantFactory(), ready=True)
    domains = []
    for name in ("shop.example.com", "www.example.com"):
        domain = domain_add(store=store, domain=name)
        domain_transition(
            domain_id=domain.pk, to=DomainStatus.VERIFIED, fields={"verified_at": timezone.now()}
        )
        domain_transition(domain_id=domain.pk, to=DomainStatus.ISSUING)
        domain_transition(domain_id=domain.pk, to=DomainStatus.ACTIVE)
        domains.append(StoreDomain.objects.get(pk=domain.pk))

    results = _race([lambda d=d: domain_set_primary(domain=d) for d in domains])

    # The store row serialises them: the loser finds the store already re-installing and is refused,
    # with its change rolled back, rather than an IntegrityError or two primaries.
    assert StoreDomain.objects.filter(store=store, is_primary=True).count() == 1
    assert ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).count() == 1
    assert sorted(type(r).__name__ for r in results) == ["InvalidStoreState", "StoreDomain"], results
    assert any(isinstance(r, InvalidStoreState) for r in results)
