"""The backups admin: read-only list with filters and events, "Back up now" through the service."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from stores.backup_transitions import backup_transition
from stores.backups import backup_request
from stores.choices import BackupStatus, StoreStatus
from stores.models import StoreBackup
from stores.tests.factories import StoreFactory, UserFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff_client(client, settings):
    settings.BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"
    settings.BACKUP_S3_BUCKET = "backups"
    settings.BACKUP_S3_ACCESS_KEY = "AK"
    client.force_login(UserFactory(username="staff@example.com", is_staff=True, is_superuser=True))
    return client


def test_list_filters_and_a_read_only_change_page(staff_client, tenant):
    store = StoreFactory(tenant=tenant, ready=True, name="cafe")
    backup = backup_request(store=store, dispatch=False)
    backup_transition(backup_id=backup.pk, to=BackupStatus.FAILED, reason="The backup storage did not answer")
    listed = staff_client.get(reverse("admin:stores_storebackup_changelist") + "?status__exact=failed")
    assert listed.status_code == 200 and b'data-status-colour="backup-failed"' in listed.content
    assert b"cafe" in listed.content
    empty = staff_client.get(reverse("admin:stores_storebackup_changelist") + "?status__exact=verified")
    assert b"cafe" not in empty.content
    page = staff_client.get(reverse("admin:stores_storebackup_change", args=[backup.pk]))
    assert b'name="status"' not in page.content and b"The backup storage did not answer" in page.content
    assert staff_client.get(reverse("admin:stores_storebackup_add")).status_code == 403


def test_back_up_now_queues_through_the_service_and_reports_refusals(staff_client, tenant):
    ready = StoreFactory(tenant=tenant, ready=True, name="ready-one")
    done = backup_request(store=ready, dispatch=False)
    backup_transition(backup_id=done.pk, to=BackupStatus.FAILED)
    broken = StoreFactory(tenant=tenant, ready=True, name="broken-one")
    old = backup_request(store=broken, dispatch=False)
    backup_transition(backup_id=old.pk, to=BackupStatus.FAILED)
    store_transition(store_id=broken.pk, to=StoreStatus.DELETING)
    response = staff_client.post(
        reverse("admin:stores_storebackup_changelist"),
        {"action": "back_up_now", ACTION_CHECKBOX_NAME: [done.pk, old.pk]},
        follow=True,
    )
    assert StoreBackup.objects.filter(store=ready, status=BackupStatus.REQUESTED).count() == 1
    reported = [str(message) for message in response.context["messages"]]
    assert any(text.startswith("ready-one: backup #") for text in reported)
    assert any(text.startswith("broken-one: Only a running store can be backed up") for text in reported)
