"""The primary domain: only an active domain, one per store, applied (and undone) by re-installing
the store; the helm values carry it only while the domain is active."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from provisioning.certificates import CertificateState
from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import DomainStatus, StoreStatus
from stores.domain_transitions import domain_transition
from stores.domains import (
    domain_add,
    domain_remove,
    domain_set_primary,
    domain_unset_primary,
    domains_follow_certificates,
)
from stores.exceptions import InvalidDomainState, InvalidStoreState
from stores.lifecycle import store_request_teardown
from stores.models import StoreDomain
from stores.release import store_helm_values
from stores.tests.factories import StoreFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, ready=True)


def _to(domain: StoreDomain, *statuses: DomainStatus) -> StoreDomain:
    for status in statuses:
        fields = {"verified_at": timezone.now()} if status == DomainStatus.VERIFIED else None
        assert domain_transition(domain_id=domain.pk, to=status, fields=fields)
    domain.refresh_from_db()
    return domain


def _active(store, name: str) -> StoreDomain:
    return _to(
        domain_add(store=store, domain=name), DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.ACTIVE
    )


def _installed(store) -> None:
    """The queued re-install ran and the store is ready again."""
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    store.refresh_from_db()
    for status in (StoreStatus.PROVISIONING, StoreStatus.READY):
        assert store_transition(store_id=store.pk, to=status)


def _queued(store) -> int:
    return ProvisioningRun.objects.filter(
        store=store, kind=RunKind.PROVISION, status=RunStatus.QUEUED
    ).count()


def test_setting_an_active_domain_primary_reinstalls_with_it(store, owner):
    domain = _active(store, "shop.example.com")
    assert store_helm_values(store)["domains"]["primary"] == ""

    result = domain_set_primary(domain=domain, actor=owner)

    assert result.is_primary
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert store.status_reason == "Making shop.example.com the primary domain."
    assert store.events.last().actor == owner
    assert _queued(store) == 1
    values = store_helm_values(store)["domains"]
    assert values["primary"] == "shop.example.com"
    assert values["primary"] in values["hosts"]


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ((), "pending verification"),
        ((DomainStatus.VERIFIED,), "verified"),
        ((DomainStatus.VERIFIED, DomainStatus.ISSUING), "issuing certificate"),
        ((DomainStatus.VERIFIED, DomainStatus.ISSUING, DomainStatus.FAILED), "failed"),
    ],
)
def test_only_an_active_domain_can_be_primary(store, path, label):
    domain = _to(domain_add(store=store, domain="shop.example.com"), *path)
    with pytest.raises(InvalidDomainState, match=f"shop.example.com is {label}; only an active domain"):
        domain_set_primary(domain=domain)
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary
    assert _queued(store) == 0


def test_a_domain_that_failed_after_it_was_read_is_refused(store):
    domain = _active(store, "shop.example.com")
    stale = StoreDomain.objects.get(pk=domain.pk)
    _to(domain, DomainStatus.FAILED)
    with pytest.raises(InvalidDomainState, match="failed"):
        domain_set_primary(domain=stale)
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_new_primary_replaces_the_old_one(store):
    first = _active(store, "shop.example.com")
    second = _active(store, "www.example.com")
    domain_set_primary(domain=first)
    _installed(store)

    domain_set_primary(domain=second)

    assert list(
        StoreDomain.objects.filter(store=store, is_primary=True).values_list("domain", flat=True)
    ) == ["www.example.com"]
    assert store_helm_values(store)["domains"]["primary"] == "www.example.com"


def test_the_database_allows_one_primary_per_store(store, tenant):
    first = _active(store, "shop.example.com")
    second = _active(store, "www.example.com")
    StoreDomain.objects.filter(pk=first.pk).update(is_primary=True)
    with pytest.raises(IntegrityError), transaction.atomic():
        StoreDomain.objects.filter(pk=second.pk).update(is_primary=True)
    other = _active(StoreFactory(tenant=tenant, ready=True), "other.example.com")
    StoreDomain.objects.filter(pk=other.pk).update(is_primary=True)


def test_a_busy_store_refuses_and_keeps_the_old_primary(store):
    first = _active(store, "shop.example.com")
    second = _active(store, "www.example.com")
    domain_set_primary(domain=first)
    # The re-install is queued and the store is requested: a second change must not be lost silently.
    with pytest.raises(InvalidStoreState, match="once it is ready"):
        domain_set_primary(domain=second)
    assert StoreDomain.objects.get(pk=first.pk).is_primary
    assert not StoreDomain.objects.get(pk=second.pk).is_primary
    assert _queued(store) == 1


def test_setting_the_same_primary_again_changes_nothing(store):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _installed(store)
    assert domain_set_primary(domain=domain).is_primary
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    assert _queued(store) == 0


def test_unsetting_reinstalls_with_the_platform_host(store, owner):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _installed(store)

    result = domain_unset_primary(domain=domain, actor=owner)

    assert not result.is_primary
    assert result.status == DomainStatus.ACTIVE
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert "no longer the primary domain" in store.status_reason
    values = store_helm_values(store)["domains"]
    assert values["primary"] == ""
    assert values["hosts"] == ["shop.example.com"]


def test_unsetting_a_domain_that_is_not_primary_changes_nothing(store):
    domain = _active(store, "shop.example.com")
    assert not domain_unset_primary(domain=domain).is_primary
    assert _queued(store) == 0


def test_unsetting_while_busy_is_refused(store):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    with pytest.raises(InvalidStoreState):
        domain_unset_primary(domain=domain)
    assert StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_failed_primary_falls_back_to_the_platform_host_in_the_values(store):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _to(domain, DomainStatus.FAILED)
    values = store_helm_values(store)["domains"]
    assert values["primary"] == ""
    assert values["hosts"] == []


def test_a_removed_primary_is_no_longer_primary_and_the_store_reinstalls(store):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _installed(store)
    domain_remove(domain=domain)
    assert not StoreDomain.objects.get(pk=domain.pk).is_primary
    assert store_helm_values(store)["domains"]["primary"] == ""
    assert _queued(store) == 1
    # The name can come back and be made primary again: the removed row holds no primary slot.
    _installed(store)
    again = _active(store, "shop.example.com")
    assert domain_set_primary(domain=again).is_primary


def test_teardown_clears_the_primary(store):
    domain = _active(store, "shop.example.com")
    StoreDomain.objects.filter(pk=domain.pk).update(is_primary=True)
    store_request_teardown(store=store)
    assert not StoreDomain.objects.filter(store=store, is_primary=True).exists()


class _Access:
    def api_client_factory(self):
        return SimpleNamespace(close=lambda: None)


def _certificate(
    domain: str, *, ready: bool, failed: bool = False, reason: str = "", message: str = ""
) -> CertificateState:
    return CertificateState(
        name="c",
        domain=domain,
        ready=ready,
        reason=reason or ("Failed" if failed else "Ready"),
        message=message or ("refused" if failed else ""),
        issuance_failed=failed,
        not_after=None,
    )


def test_an_active_domain_whose_certificate_is_being_issued_again_shows_issuing(store, monkeypatch):
    domain = _active(store, "shop.example.com")
    lost = _certificate(
        "shop.example.com",
        ready=False,
        reason="DoesNotExist",
        message="Issuing certificate as Secret does not exist",
    )
    monkeypatch.setattr("stores.domains.read_certificates", lambda api, namespace: [lost])
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    reissuing = StoreDomain.objects.get(pk=domain.pk)
    assert reissuing.status == DomainStatus.ISSUING
    assert reissuing.status_reason == (
        "The certificate is being issued again (DoesNotExist): Issuing certificate as Secret does not exist"
    )
    store.refresh_from_db()
    assert store.status == StoreStatus.READY  # not the primary: nothing to re-install
    # Ready again: active again.
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=True)],
    )
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    assert StoreDomain.objects.get(pk=domain.pk).status == DomainStatus.ACTIVE


def test_a_primary_whose_certificate_is_being_issued_again_falls_back_meanwhile(store, monkeypatch):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _installed(store)
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=False, reason="Expired")],
    )
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED and "no valid certificate right now" in store.status_reason
    assert store_helm_values(store)["domains"]["primary"] == ""
    assert StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_primary_whose_certificate_fails_reinstalls_to_fall_back(store, monkeypatch):
    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    _installed(store)
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=False, failed=True)],
    )
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert "using the platform address" in store.status_reason
    assert store_helm_values(store)["domains"]["primary"] == ""
    # The merchant's choice stays: the domain is primary again once it is active.
    assert StoreDomain.objects.get(pk=domain.pk).is_primary


def test_a_primary_that_becomes_active_again_reinstalls_to_use_it(store, monkeypatch):
    domain = _active(store, "shop.example.com")
    StoreDomain.objects.filter(pk=domain.pk).update(is_primary=True)
    _to(domain, DomainStatus.ISSUING)
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=True)],
    )
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert store_helm_values(store)["domains"]["primary"] == "shop.example.com"


def test_a_non_primary_domain_becoming_active_reinstalls_nothing(store, monkeypatch):
    domain = _to(
        domain_add(store=store, domain="shop.example.com"), DomainStatus.VERIFIED, DomainStatus.ISSUING
    )
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=True)],
    )
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    assert StoreDomain.objects.get(pk=domain.pk).status == DomainStatus.ACTIVE
    store.refresh_from_db()
    assert store.status == StoreStatus.READY


def test_a_primary_that_fails_while_the_store_is_busy_is_reapplied_by_the_pass(store, monkeypatch):
    from datetime import timedelta

    from stores.domains import domains_reapply_stale_primaries
    from stores.tests.factories import ProvisioningRunFactory

    domain = _active(store, "shop.example.com")
    domain_set_primary(domain=domain)
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(
        status=RunStatus.SUCCEEDED, started_at=timezone.now() - timedelta(minutes=5)
    )
    for step in (StoreStatus.PROVISIONING, StoreStatus.READY):
        assert store_transition(store_id=store.pk, to=step)
    # Installed after it became active (its status moved before that install began): current.
    StoreDomain.objects.filter(pk=domain.pk).update(status_changed_at=timezone.now() - timedelta(minutes=6))
    assert domains_reapply_stale_primaries() == 0
    busy = ProvisioningRunFactory(store=store, running=True)
    monkeypatch.setattr(
        "stores.domains.read_certificates",
        lambda api, namespace: [_certificate("shop.example.com", ready=False, failed=True)],
    )
    # The certificate fails while an install runs: the fallback cannot be asked for now.
    assert domains_follow_certificates(store_id=store.pk, access=_Access()) == 1
    assert domains_reapply_stale_primaries() == 0
    # That install started before the failure, so it rendered the old primary: the pass re-installs.
    ProvisioningRun.objects.filter(pk=busy.pk).update(
        status=RunStatus.SUCCEEDED, started_at=timezone.now() - timedelta(minutes=1)
    )
    assert domains_reapply_stale_primaries() == 1
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED and "using the platform address" in store.status_reason
    assert store_helm_values(store)["domains"]["primary"] == ""
    # Once that re-install has run, the store is current and nothing more is asked.
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(
        status=RunStatus.SUCCEEDED, started_at=timezone.now()
    )
    for step in (StoreStatus.PROVISIONING, StoreStatus.READY):
        assert store_transition(store_id=store.pk, to=step)
    assert domains_reapply_stale_primaries() == 0


def test_the_solver_value_follows_the_setting(store, settings):
    settings.DOMAIN_ACME_HTTP01 = True
    assert store_helm_values(store)["domains"]["acmeHttp01Solver"] is True
    settings.DOMAIN_ACME_HTTP01 = False
    assert store_helm_values(store)["domains"]["acmeHttp01Solver"] is False
