"""The backup API: list, back up now (202), restore with the typed confirmation, every refusal as a
4xx with the service's message; scoped to the caller's tenant (another tenant's backup is 404),
owners only for changes."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from stores.backup_transitions import backup_transition
from stores.backups import backup_request
from stores.choices import BackupKind, BackupStatus, Engine, MembershipRole, StoreStatus
from stores.models import Store, StoreBackup
from stores.tests.factories import MembershipFactory, StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def bucket(settings):
    # Requests are only queued here (the broker is the test's filesystem one); no Job runs.
    settings.BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"
    settings.BACKUP_S3_BUCKET = "backups"
    settings.BACKUP_S3_ACCESS_KEY = "AK"
    settings.BACKUP_S3_SECRET_KEY = "SK"


@pytest.fixture
def store(tenant):
    return StoreFactory(tenant=tenant, ready=True, name="coffee")


def completed(store) -> StoreBackup:
    backup = backup_request(store=store, dispatch=False)
    backup_transition(backup_id=backup.pk, to=BackupStatus.RUNNING)
    backup_transition(
        backup_id=backup.pk, to=BackupStatus.COMPLETED, fields={"checksum": "a" * 64, "size_bytes": 2048}
    )
    return StoreBackup.objects.get(pk=backup.pk)


def test_back_up_now_is_202_and_the_list_shows_it(api, store):
    response = api.post(f"/api/v1/stores/{store.name}/backups/")
    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["store"], body["kind"], body["status"], body["verified"]) == (
        "coffee",
        "manual",
        "requested",
        False,
    )
    listed = api.get(f"/api/v1/stores/{store.name}/backups/").json()["results"]
    assert [b["id"] for b in listed] == [body["id"]]
    assert api.get(f"/api/v1/backups/{body['id']}/").json()["status"] == "requested"


def test_back_up_refusals(api, store, tenant, settings):
    api.post(f"/api/v1/stores/{store.name}/backups/")
    second = api.post(f"/api/v1/stores/{store.name}/backups/")
    assert second.status_code == 409 and second.json()["error"]["code"] == "backup_refused"
    failed = StoreFactory(tenant=tenant, status=StoreStatus.FAILED, name="broken")
    refused = api.post(f"/api/v1/stores/{failed.name}/backups/")
    assert refused.status_code == 409 and "running store" in refused.json()["error"]["message"]
    settings.BACKUP_S3_ENDPOINT = ""
    off = api.post(f"/api/v1/stores/{StoreFactory(tenant=tenant, ready=True, name='tea').name}/backups/")
    assert off.status_code == 409 and off.json()["error"]["code"] == "backups_not_configured"


def test_restore_needs_the_typed_name_and_then_queues_a_safety_backup(api, store):
    backup = completed(store)
    wrong = api.post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm_name": "Coffee "}, format="json")
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "confirmation_mismatch"
    missing = api.post(f"/api/v1/backups/{backup.pk}/restore/", {}, format="json")
    assert missing.status_code == 400
    store.refresh_from_db()
    assert store.status == StoreStatus.READY

    done = api.post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm_name": "coffee"}, format="json")
    assert done.status_code == 202, done.content
    assert done.json()["kind"] == BackupKind.SAFETY
    store.refresh_from_db()
    assert store.status == StoreStatus.RESTORING
    again = api.post(f"/api/v1/backups/{backup.pk}/restore/", {"confirm_name": "coffee"}, format="json")
    assert again.status_code == 409  # restoring already


def test_a_deleted_stores_final_backup_restores_into_a_new_store(api, store, tenant):
    final = completed(store)
    StoreBackup.objects.filter(pk=final.pk).update(kind=BackupKind.FINAL)
    new = StoreFactory(tenant=tenant, ready=True, name="coffee-two")
    response = api.post(
        f"/api/v1/backups/{final.pk}/restore/",
        {"target_store": new.name, "confirm_name": new.name},
        format="json",
    )
    assert response.status_code == 202, response.content
    new.refresh_from_db()
    assert new.status == StoreStatus.RESTORING
    medusa = StoreFactory(tenant=tenant, ready=True, name="med", engine=Engine.MEDUSA)
    cross = api.post(
        f"/api/v1/backups/{final.pk}/restore/",
        {"target_store": medusa.name, "confirm_name": medusa.name},
        format="json",
    )
    assert cross.status_code == 409 and "cannot be restored into" in cross.json()["error"]["message"]


def test_a_final_backup_becomes_a_new_store_that_loads_it_once_provisioned(api, store, tenant):
    final = completed(store)
    StoreBackup.objects.filter(pk=final.pk).update(kind=BackupKind.FINAL)
    url = f"/api/v1/backups/{final.pk}/restore-into-new-store/"

    response = api.post(url, {"name": "coffee-again"}, format="json")

    assert response.status_code == 202, response.content
    body = response.json()
    assert (body["name"], body["engine"], body["status"]) == ("coffee-again", "woocommerce", "requested")
    assert body["latest_run"]["kind"] == "provision" and response["Location"] == body["url"]
    new = Store.objects.get(name="coffee-again")
    assert new.tenant == tenant and new.restore_from_id == final.pk
    # The same name again: it exists now, and nothing else is created.
    again = api.post(url, {"name": "coffee-again"}, format="json")
    assert again.status_code == 409 and "already exists" in again.json()["error"]["message"]
    bad = api.post(url, {"name": "Not A Name"}, format="json")
    assert bad.status_code == 400 and "name" in bad.json()["error"]["fields"]
    unknown = api.post(url, {"name": "coffee-three", "engine": "medusa"}, format="json")
    assert unknown.status_code == 400  # the engine is the backup's, not the caller's
    assert Store.objects.filter(tenant=tenant).count() == 2


def test_a_store_from_a_backup_that_cannot_be_loaded_is_refused(api, store, tenant):
    running = backup_request(store=store, dispatch=False)
    refused = api.post(
        f"/api/v1/backups/{running.pk}/restore-into-new-store/", {"name": "x-store"}, format="json"
    )
    assert refused.status_code == 409 and "only a completed backup" in refused.json()["error"]["message"]
    assert not Store.objects.filter(name="x-store").exists()


def test_another_tenants_backups_are_404_both_ways(api, other_api, store, other_tenant):
    backup = completed(store)
    assert other_api.get(f"/api/v1/backups/{backup.pk}/").status_code == 404
    assert other_api.get(f"/api/v1/stores/{store.name}/backups/").status_code == 404
    assert (
        other_api.post(
            f"/api/v1/backups/{backup.pk}/restore/", {"confirm_name": "coffee"}, format="json"
        ).status_code
        == 404
    )
    assert other_api.get("/api/v1/backups/").json()["results"] == []
    stolen = other_api.post(
        f"/api/v1/backups/{backup.pk}/restore-into-new-store/", {"name": "stolen"}, format="json"
    )
    assert stolen.status_code == 404 and not Store.objects.filter(name="stolen").exists()
    # Nor may a tenant restore its own backup into someone else's store: that store is not found.
    theirs = StoreFactory(tenant=other_tenant, ready=True, name="theirs")
    into = api.post(
        f"/api/v1/backups/{backup.pk}/restore/",
        {"target_store": theirs.name, "confirm_name": "theirs"},
        format="json",
    )
    assert into.status_code == 404
    theirs.refresh_from_db()
    assert theirs.status == StoreStatus.READY


def test_members_may_look_but_not_back_up_or_restore(store, tenant):
    backup = completed(store)
    member = MembershipFactory(tenant=tenant, role=MembershipRole.MEMBER).user
    client = APIClient()
    client.force_login(member)
    assert client.get(f"/api/v1/stores/{store.name}/backups/").status_code == 200
    assert client.post(f"/api/v1/stores/{store.name}/backups/").status_code == 403
    assert (
        client.post(
            f"/api/v1/backups/{backup.pk}/restore/", {"confirm_name": "coffee"}, format="json"
        ).status_code
        == 403
    )
    assert (
        client.post(
            f"/api/v1/backups/{backup.pk}/restore-into-new-store/", {"name": "by-member"}, format="json"
        ).status_code
        == 403
    )
    assert StoreBackup.objects.count() == 1


def test_status_is_not_writable(api, store):
    backup = completed(store)
    assert api.post(f"/api/v1/backups/{backup.pk}/", {"status": "verified"}, format="json").status_code == 405
    assert StoreBackup.objects.get(pk=backup.pk).status == BackupStatus.COMPLETED
