"""Staged engine upgrades: versions as data, new stores on the default, and a rollout's batches, its
pause, its self-stop on a failed batch with the failed stores rolled back, and staff commands.

The worker's side (a provision run moving a store to ready or failed) is played by the status writer,
as a worker's outcome would; tests/real_cluster covers helm itself."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from provisioning.services import run_transition
from stores.choices import EngineVersionState, RolloutItemStatus, RolloutSelection, RolloutStatus, StoreStatus
from stores.lifecycle import store_create
from stores.models import EngineVersion, Rollout, RolloutItem, Store
from stores.release import store_helm_values
from stores.tests.factories import StoreFactory
from stores.transitions import store_transition
from stores.upgrades import (
    RolloutInvalid,
    RolloutStateInvalid,
    rollout_advance,
    rollout_cancel,
    rollout_create,
    rollout_pause,
    rollout_start,
    rollouts_advance_all,
)

pytestmark = pytest.mark.django_db


def version(name: str, *, tag: str, state: str = EngineVersionState.AVAILABLE) -> EngineVersion:
    return EngineVersion.objects.create(
        engine="woocommerce",
        name=name,
        chart_version="0.1.0",
        values={"images": {"wordpress": {"tag": tag}}},
        state=state,
    )


@pytest.fixture
def a():
    return version("6.8.2-1", tag="6.8.2-php8.3-apache", state=EngineVersionState.DEFAULT)


@pytest.fixture
def b():
    return version("6.9.0-1", tag="6.9.0-php8.3-apache")


def stores_on(version_, count, tenant=None):
    stores = [StoreFactory(ready=True, **({"tenant": tenant} if tenant else {})) for _ in range(count)]
    Store.objects.filter(pk__in=[s.pk for s in stores]).update(engine_version=version_)
    return stores


def worker_finishes(stores, *, ready=True, reason="helm: timed out waiting for the condition"):
    """What a worker's provision run does to a store and its run: provisioning, then ready or failed."""
    for store in stores:
        run = ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).get()
        run_transition(run_id=run.pk, to=RunStatus.RUNNING, started_at=timezone.now(), worker="test:1")
        run_transition(
            run_id=run.pk,
            to=RunStatus.SUCCEEDED if ready else RunStatus.FAILED,
            error="" if ready else reason,
        )
        assert store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING)
        assert store_transition(
            store_id=store.pk,
            to=StoreStatus.READY if ready else StoreStatus.FAILED,
            reason="" if ready else reason,
        )


def status_of(store):
    return Store.objects.values_list("status", "engine_version__name").get(pk=store.pk)


def test_new_stores_get_the_default_version_and_its_images(tenant, owner, a):
    store, _ = store_create(tenant=tenant, name="versioned", engine="woocommerce", actor=owner)
    assert store.engine_version == a
    values = store_helm_values(store)
    assert values["images"] == {"wordpress": {"tag": "6.8.2-php8.3-apache"}}
    assert values["existingSecret"] == "store-credentials"  # the platform's own values are untouched


def test_a_version_may_set_images_only():
    bad = EngineVersion(
        engine="woocommerce", name="x", chart_version="0.1.0", values={"quota": {"cpu": "99"}}
    )
    with pytest.raises(ValidationError, match="may set only image, images"):
        bad.full_clean()


def test_a_rollout_goes_batch_by_batch_with_a_pause_and_stops_at_a_failed_batch_rolling_it_back(a, b):
    stores = stores_on(a, 7)
    rollout = rollout_create(target=b, batch_size=3, pause_seconds=60)
    assert list(rollout.items.values_list("batch", flat=True)) == [1, 1, 1, 2, 2, 2, 3]
    now = timezone.now()
    assert rollout_advance(rollout_id=rollout.pk, now=now).started == 0  # pending: nothing happens

    rollout_start(rollout=rollout)
    first = rollout_advance(rollout_id=rollout.pk, now=now)
    assert (first.batch, first.started) == (1, 3)
    assert [status_of(s) for s in stores[:3]] == [(StoreStatus.REQUESTED, "6.9.0-1")] * 3
    assert [status_of(s) for s in stores[3:]] == [(StoreStatus.READY, "6.8.2-1")] * 4
    # Each store upgrade is an ordinary provision run (helm upgrade --install) with events.
    assert ProvisioningRun.objects.filter(store__in=stores[:3], kind=RunKind.PROVISION).count() == 6
    assert rollout_advance(rollout_id=rollout.pk, now=now).started == 0  # the batch is still in flight

    worker_finishes(stores[:3])
    rollout_advance(rollout_id=rollout.pk, now=now)  # batch 1 settles; the pause starts
    assert rollout_advance(rollout_id=rollout.pk, now=now + timedelta(seconds=30)).started == 0
    second = rollout_advance(rollout_id=rollout.pk, now=now + timedelta(seconds=61))
    assert (second.batch, second.started) == (2, 3)

    worker_finishes(stores[3:5])
    worker_finishes(stores[5:6], ready=False)
    stopped = rollout_advance(rollout_id=rollout.pk, now=now + timedelta(seconds=90))
    assert stopped.status == RolloutStatus.STOPPED
    rollout.refresh_from_db()
    assert stores[5].name in rollout.status_reason and "timed out waiting" in rollout.status_reason
    # The failed store goes back to its previous version; the third batch is never touched.
    assert status_of(stores[5]) == (StoreStatus.REQUESTED, "6.8.2-1")
    assert status_of(stores[6]) == (StoreStatus.READY, "6.8.2-1")
    assert RolloutItem.objects.get(rollout=rollout, store=stores[6]).status == RolloutItemStatus.PENDING

    worker_finishes(stores[5:6])
    assert rollouts_advance_all(now=now + timedelta(seconds=120)) == 1
    items = dict(rollout.items.values_list("store_id", "status"))
    assert [items[s.pk] for s in stores] == [
        *[RolloutItemStatus.SUCCEEDED] * 5,
        RolloutItemStatus.ROLLED_BACK,
        RolloutItemStatus.PENDING,
    ]
    assert rollouts_advance_all(now=now + timedelta(seconds=200)) == 0  # nothing moves any more


def test_a_rollout_that_stays_within_the_threshold_reaches_every_store(a, b):
    stores = stores_on(a, 4)
    rollout = rollout_start(rollout=rollout_create(target=b, batch_size=2, pause_seconds=0, max_failures=1))
    now = timezone.now()
    rollout_advance(rollout_id=rollout.pk, now=now)
    worker_finishes(stores[:1])
    worker_finishes(stores[1:2], ready=False)
    for _ in range(2):
        rollout_advance(rollout_id=rollout.pk, now=now)
    worker_finishes(stores[2:])
    for _ in range(3):
        rollout_advance(rollout_id=rollout.pk, now=now)
    rollout.refresh_from_db()
    assert rollout.status == RolloutStatus.SUCCEEDED
    assert [status_of(s)[1] for s in stores] == ["6.9.0-1"] * 4


def test_selection_pause_resume_and_cancel(a, b, tenant, other_tenant):
    mine = stores_on(a, 2, tenant=tenant)
    stores_on(a, 2, tenant=other_tenant)
    rollout = rollout_create(
        target=b, selection=RolloutSelection.TENANT, tenant=tenant, batch_size=1, pause_seconds=0
    )
    assert set(rollout.items.values_list("store_id", flat=True)) == {s.pk for s in mine}
    rollout_start(rollout=rollout)
    rollout_advance(rollout_id=rollout.pk)
    rollout_pause(rollout=rollout)
    worker_finishes(mine[:1])
    assert rollout_advance(rollout_id=rollout.pk).started == 0  # paused: the batch settles, none starts
    assert RolloutItem.objects.get(rollout=rollout, store=mine[0]).status == RolloutItemStatus.SUCCEEDED
    rollout_start(rollout=Rollout.objects.get(pk=rollout.pk))  # resume
    rollout_cancel(rollout=Rollout.objects.get(pk=rollout.pk))
    assert RolloutItem.objects.get(rollout=rollout, store=mine[1]).status == RolloutItemStatus.SKIPPED
    with pytest.raises(RolloutStateInvalid, match="cancelled"):
        rollout_start(rollout=Rollout.objects.get(pk=rollout.pk))


def test_bad_rollouts_are_refused(a, b):
    with pytest.raises(RolloutInvalid, match="No ready store"):
        rollout_create(target=b)
    stores_on(a, 1)
    with pytest.raises(RolloutInvalid, match="Pick the plan"):
        rollout_create(target=b, selection=RolloutSelection.PLAN)
    EngineVersion.objects.filter(pk=b.pk).update(state=EngineVersionState.RETIRED)
    with pytest.raises(RolloutInvalid, match="retired"):
        rollout_create(target=EngineVersion.objects.get(pk=b.pk))
    assert not Rollout.objects.exists()


def test_staff_plan_and_start_a_rollout_in_the_admin(admin_client, a, b):
    stores = stores_on(a, 3)
    refused = admin_client.post(
        "/admin/stores/rollout/add/",
        {
            "target": b.pk,
            "selection": "plan",
            "batch_size": 2,
            "pause_seconds": 0,
            "max_failures": 0,
            "store_names": "[]",
        },
    )
    assert refused.status_code == 200 and "Pick the plan" in refused.content.decode()
    assert not Rollout.objects.exists()
    created = admin_client.post(
        "/admin/stores/rollout/add/",
        {
            "target": b.pk,
            "selection": "all",
            "batch_size": 2,
            "pause_seconds": 0,
            "max_failures": 0,
            "store_names": "[]",
        },
    )
    assert created.status_code == 302
    rollout = Rollout.objects.get()
    assert rollout.items.count() == 3 and rollout.status == RolloutStatus.PENDING
    admin_client.post(
        "/admin/stores/rollout/", {"action": "start_or_resume", "_selected_action": [rollout.pk]}, follow=True
    )
    assert Rollout.objects.get().status == RolloutStatus.RUNNING
    assert rollout_advance(rollout_id=rollout.pk).started == 2
    page = admin_client.get(f"/admin/stores/rollout/{rollout.pk}/change/").content.decode()
    assert stores[0].name in page and "Upgrading" in page


@pytest.fixture
def backups_configured(settings):
    settings.BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"  # never reached: no backup Job runs here
    settings.BACKUP_S3_BUCKET = "backups"
    settings.BACKUP_S3_ACCESS_KEY = "key"
    settings.BACKUP_S3_SECRET_KEY = "secret"


def test_with_backups_each_store_is_upgraded_only_after_its_backup_is_verified(a, b, backups_configured):
    from stores.backup_transitions import backup_transition
    from stores.choices import BackupKind, BackupStatus
    from stores.models import StoreBackup

    stores = stores_on(a, 3)
    rollout = rollout_start(rollout=rollout_create(target=b, batch_size=2, pause_seconds=0))
    now = timezone.now()
    assert rollout_advance(rollout_id=rollout.pk, now=now).started == 2
    items = {item.store_id: item for item in rollout.items.select_related("backup")}
    assert {items[s.pk].status for s in stores[:2]} == {RolloutItemStatus.BACKING_UP}
    assert {items[s.pk].backup.kind for s in stores[:2]} == {BackupKind.UPGRADE}
    # Nothing is upgraded before its backup is verified.
    assert [status_of(s) for s in stores] == [(StoreStatus.READY, "6.8.2-1")] * 3
    assert not ProvisioningRun.objects.filter(store__in=stores, status=RunStatus.QUEUED).exists()

    good, bad = items[stores[0].pk].backup, items[stores[1].pk].backup
    for backup in (good, bad):
        backup_transition(backup_id=backup.pk, to=BackupStatus.RUNNING)
    backup_transition(backup_id=good.pk, to=BackupStatus.COMPLETED)
    rollout_advance(rollout_id=rollout.pk, now=now)
    assert status_of(stores[0]) == (StoreStatus.READY, "6.8.2-1")  # completed is not verified yet
    backup_transition(backup_id=good.pk, to=BackupStatus.VERIFIED)
    backup_transition(
        backup_id=bad.pk,
        to=BackupStatus.FAILED,
        fields={"failure_reason": "The backup bucket did not answer."},
    )
    rollout_advance(rollout_id=rollout.pk, now=now)
    assert status_of(stores[0]) == (StoreStatus.REQUESTED, "6.9.0-1")
    bad_item = RolloutItem.objects.get(rollout=rollout, store=stores[1])
    assert bad_item.status == RolloutItemStatus.FAILED
    assert "backup bucket did not answer" in bad_item.reason and "not upgraded" in bad_item.reason
    assert status_of(stores[1]) == (StoreStatus.READY, "6.8.2-1")  # untouched

    worker_finishes(stores[:1])
    assert rollout_advance(rollout_id=rollout.pk, now=now).status == RolloutStatus.STOPPED
    assert status_of(stores[1]) == (StoreStatus.READY, "6.8.2-1")  # nothing to roll back
    assert status_of(stores[2]) == (StoreStatus.READY, "6.8.2-1")  # the next batch never started
    assert StoreBackup.objects.filter(store=stores[2]).count() == 0


def test_without_backups_configured_a_rollout_upgrades_at_once(a, b):
    stores = stores_on(a, 1)
    rollout = rollout_start(rollout=rollout_create(target=b, batch_size=1, pause_seconds=0))
    assert rollout_advance(rollout_id=rollout.pk).started == 1
    assert RolloutItem.objects.get(rollout=rollout).status == RolloutItemStatus.UPGRADING
    assert status_of(stores[0]) == (StoreStatus.REQUESTED, "6.9.0-1")
