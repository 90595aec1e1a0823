"""The Backups section of the store page: list with status, size, verified and expiry; Back up now;
Restore with the typed name; refusals as messages; another tenant's backups are 404."""

from __future__ import annotations

import html
import re

import pytest
from django.urls import reverse

from stores.backup_transitions import backup_transition
from stores.backups import backup_request
from stores.choices import BackupKind, BackupStatus, MembershipRole, StoreStatus
from stores.models import Store, StoreBackup
from stores.tests.factories import MembershipFactory, StoreFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bucket(settings):
    settings.BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"
    settings.BACKUP_S3_BUCKET = "backups"
    settings.BACKUP_S3_ACCESS_KEY = "AK"


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, status=StoreStatus.READY, name="coffee")


@pytest.fixture
def signed_in(client, owner):
    client.force_login(owner)
    return client


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def _verified(store) -> StoreBackup:
    backup = backup_request(store=store, dispatch=False)
    backup_transition(backup_id=backup.pk, to=BackupStatus.RUNNING)
    backup_transition(
        backup_id=backup.pk,
        to=BackupStatus.COMPLETED,
        fields={"size_bytes": 3 * 1024 * 1024, "checksum": "b" * 64},
    )
    backup_transition(
        backup_id=backup.pk,
        to=BackupStatus.VERIFIED,
        fields={"drill_passed": True, "drill_seconds": 41.6, "drill_result": "12 orders"},
    )
    return StoreBackup.objects.get(pk=backup.pk)


def test_the_section_lists_backups_with_size_verification_and_expiry(signed_in, store):
    backup = _verified(store)
    failed = backup_request(store=store, dispatch=False)
    backup_transition(
        backup_id=failed.pk,
        to=BackupStatus.FAILED,
        fields={"failure_reason": "The backup storage did not answer."},
    )
    text = _text(signed_in.get(reverse("stores:detail", args=[store.name])))
    assert "Backups" in text and "3.0 MB" in text and "Yes (42 s)" in text
    assert f"{backup.expires_at:%b} " in text and "The backup storage did not answer." in text
    assert "Back up now" in text and text.count("Restore this backup") == 1  # the failed one offers none


def test_back_up_now_queues_a_backup_and_says_so(signed_in, store):
    response = signed_in.post(reverse("stores:backup_create", args=[store.name]), follow=True)
    assert "Backup queued" in _text(response)
    assert StoreBackup.objects.get().kind == BackupKind.MANUAL
    again = signed_in.post(reverse("stores:backup_create", args=[store.name]), follow=True)
    assert "already queued or running" in _text(again) and StoreBackup.objects.count() == 1


def test_restore_needs_the_typed_name(signed_in, store):
    backup = _verified(store)
    url = reverse("stores:backup_restore", args=[store.name, backup.pk])
    wrong = signed_in.post(url, {"confirm_name": "Coffee"}, follow=True)
    assert "Type the store's name (coffee) to confirm" in _text(wrong)
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    done = signed_in.post(url, {"confirm_name": "coffee"}, follow=True)
    assert "Restore into coffee started" in _text(done)
    store.refresh_from_db()
    assert store.status == StoreStatus.RESTORING
    assert StoreBackup.objects.filter(store=store, kind=BackupKind.SAFETY).count() == 1


def test_a_deleted_stores_final_backup_is_listed_and_restores_into_another_store(signed_in, store, tenant):
    backup = _verified(store)
    StoreBackup.objects.filter(pk=backup.pk).update(kind=BackupKind.FINAL)
    store_transition(store_id=store.pk, to=StoreStatus.DELETING)
    store_transition(store_id=store.pk, to=StoreStatus.DELETED)
    new = StoreFactory(tenant=tenant, status=StoreStatus.READY, name="coffee-again")
    page = _text(signed_in.get(reverse("stores:detail", args=[store.name])))
    assert "Final" in page and "coffee-again" in page and "Back up now" not in page
    response = signed_in.post(
        reverse("stores:backup_restore", args=[store.name, backup.pk]),
        {"target_store": new.name, "confirm_name": new.name},
        follow=True,
    )
    assert "Restore into coffee-again started" in _text(response)
    new.refresh_from_db()
    assert new.status == StoreStatus.RESTORING


def test_a_final_backup_launches_a_new_store_that_loads_it(signed_in, store, tenant):
    backup = _verified(store)
    StoreBackup.objects.filter(pk=backup.pk).update(kind=BackupKind.FINAL)
    store_transition(store_id=store.pk, to=StoreStatus.DELETING)
    store_transition(store_id=store.pk, to=StoreStatus.DELETED)
    page = _text(signed_in.get(reverse("stores:detail", args=[store.name])))
    assert "Restore into a new store" in page
    url = reverse("stores:backup_new_store", args=[store.name, backup.pk])

    response = signed_in.post(url, {"name": "coffee-reborn"}, follow=True)

    assert response.redirect_chain[-1][0] == reverse("stores:detail", args=["coffee-reborn"])
    assert "the backup is loaded into it once it is provisioned" in _text(response)
    new = Store.objects.get(name="coffee-reborn")
    assert (new.status, new.restore_from_id, new.tenant_id) == (StoreStatus.REQUESTED, backup.pk, tenant.pk)
    # The store page's timeline says what it starts with.
    assert "Starts with the backup of coffee" in _text(response)
    taken = signed_in.post(url, {"name": "coffee-reborn"}, follow=True)
    assert "A store named coffee-reborn already exists" in _text(taken)
    invalid = signed_in.post(url, {"name": "Bad Name!"}, follow=True)
    assert Store.objects.filter(tenant=tenant).count() == 2, _text(invalid)


def test_members_see_backups_but_cannot_back_up_or_restore(client, store, tenant):
    backup = _verified(store)
    client.force_login(MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user)
    page = _text(client.get(reverse("stores:detail", args=[store.name])))
    assert "Only the organisation's owners can back up or restore stores." in page
    assert client.post(reverse("stores:backup_create", args=[store.name])).status_code == 403
    assert (
        client.post(
            reverse("stores:backup_restore", args=[store.name, backup.pk]), {"confirm_name": "coffee"}
        ).status_code
        == 403
    )
    assert (
        client.post(
            reverse("stores:backup_new_store", args=[store.name, backup.pk]), {"name": "m-s"}
        ).status_code
        == 403
    )


def test_another_tenants_backups_are_404(client, store, other_owner):
    backup = _verified(store)
    client.force_login(other_owner)
    mine = StoreFactory(tenant=other_owner.memberships.get().tenant, status=StoreStatus.READY, name="theirs")
    # Their own store's URL with someone else's backup id: not found, nothing restored.
    assert (
        client.post(
            reverse("stores:backup_restore", args=[mine.name, backup.pk]), {"confirm_name": "theirs"}
        ).status_code
        == 404
    )
    assert client.post(reverse("stores:backup_create", args=[store.name])).status_code == 404
    mine.refresh_from_db()
    assert mine.status == StoreStatus.READY
