"""Backups end to end below the faces: request, the Job on the Kubernetes API double run natively
(testkit.backup_jobs) against real PostgreSQL and MariaDB and SeaweedFS's S3, restore with its
safety backup, retention and expiry, and every refusal."""

from __future__ import annotations

import base64
import hashlib
import logging
import socket
from datetime import timedelta

import pytest
from django.utils import timezone
from kubernetes import config

from provisioning.cluster_access import ClusterAccess
from provisioning.object_store import manifest_read
from stores.backup_transitions import backup_transition
from stores.backups import (
    BackupRefused,
    BackupsNotConfigured,
    RestoreConfirmationMismatch,
    RestoreRefused,
    backup_execute,
    backup_request,
    backup_restore,
    backups_apply_retention,
    backups_expire_due,
    backups_schedule_due,
    bucket_credentials,
    restore_execute,
)
from stores.choices import BackupKind, BackupStatus, Engine, StoreStatus
from stores.exceptions import InvalidStoreState
from stores.models import Store, StoreBackup, StoreBackupEvent, StoreEvent
from stores.release import store_backup_egress, store_helm_values
from stores.tests.factories import StoreFactory
from testkit.backup_jobs import JobExecutor

pytestmark = pytest.mark.django_db


@pytest.fixture
def bucket_settings(settings, object_store, backup_bucket):
    creds = object_store.credentials
    settings.BACKUP_S3_ENDPOINT = creds.endpoint
    settings.BACKUP_S3_BUCKET = backup_bucket
    settings.BACKUP_S3_REGION = creds.region
    settings.BACKUP_S3_ACCESS_KEY = creds.access_key
    settings.BACKUP_S3_SECRET_KEY = creds.secret_key
    settings.BACKUP_JOB_TIMEOUT = 60
    return settings


@pytest.fixture
def access(kube_api):
    return ClusterAccess(
        api_client_factory=lambda: config.new_client_from_config(config_file=str(kube_api.kubeconfig_path))
    )


# PostgreSQL trusts loopback here, so the Medusa tests' password is never checked.
LOOPBACK_PASSWORD = "unused-on-loopback"  # noqa: S105


def _store_namespace(kube_api, store, password: str = LOOPBACK_PASSWORD) -> None:
    kube_api.create(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": store.namespace}}
    )
    kube_api.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "store-credentials"},
            "data": {"database-password": base64.b64encode(password.encode()).decode()},
        },
        store.namespace,
    )


@pytest.fixture
def medusa_store(kube_api, tenant):
    store = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True)
    _store_namespace(kube_api, store)
    return store


def _pg_overrides(db) -> dict[str, str]:
    # In the cluster the database is `postgres:5432/medusa`; here it is the test's loopback database.
    return {"PGHOST": db.host, "PGPORT": str(db.port), "PGUSER": db.user, "PGDATABASE": db.name}


def test_a_backup_runs_as_a_job_and_records_what_the_bucket_holds(
    bucket_settings, kube_api, access, medusa_store, pg_database, object_store, owner
):
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 42);')
    backup = backup_request(store=medusa_store, actor=owner, dispatch=False)
    assert backup.status == BackupStatus.REQUESTED and backup.kind == BackupKind.MANUAL
    assert backup.object_key.startswith(f"tenants/{medusa_store.tenant_id}/stores/{medusa_store.pk}-")

    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)) as executor:
        done = backup_execute(backup_id=backup.pk, access=access)

    assert done.status == BackupStatus.COMPLETED, done.failure_reason
    manifest = object_store.client().get_object(
        Bucket=bucket_settings.BACKUP_S3_BUCKET, Key=f"{backup.object_key}/manifest"
    )
    assert done.checksum == hashlib.sha256(manifest["Body"].read()).hexdigest()
    assert done.size_bytes and done.size_bytes > 0 and done.started_at and done.finished_at
    [run] = executor.runs
    assert run["result"].startswith("BACKUP-RESULT ok")
    # The Job itself carries no secret value: the bucket key and the database password are Secret refs.
    assert kube_api.get("jobs", run["job"], medusa_store.namespace) is None  # deleted after the run
    job_env = [req for req in kube_api.requests() if req.method == "POST" and req.path.endswith("/jobs")]
    assert job_env and bucket_settings.BACKUP_S3_SECRET_KEY not in str(job_env[0].body)
    # Out of the namespace only through the charts' backup-to-object-store policy, never the internet's.
    assert "platform.example/backup-egress" in str(job_env[0].body)
    assert "platform.example/internet-egress" not in str(job_env[0].body)
    assert list(StoreBackupEvent.objects.filter(backup=backup).values_list("new_status", flat=True)) == [
        "",
        BackupStatus.RUNNING,
        BackupStatus.COMPLETED,
    ]


def test_a_job_that_reports_success_but_stored_nothing_fails_the_backup(
    bucket_settings, kube_api, access, medusa_store
):
    backup = backup_request(store=medusa_store, dispatch=False)
    # The double's own controllers complete the Job without running anything: nothing is stored.
    done = backup_execute(backup_id=backup.pk, access=access)
    assert done.status == BackupStatus.FAILED
    assert done.failure_reason == "The backup Job finished but the backup is not in the storage."


def test_a_dump_failure_ends_the_backup_failed_with_the_scripts_reason(
    bucket_settings, kube_api, access, medusa_store, pg_database
):
    backup = backup_request(store=medusa_store, dispatch=False)
    with JobExecutor(kube_api, overrides={**_pg_overrides(pg_database), "PGDATABASE": "no_such_db"}):
        done = backup_execute(backup_id=backup.pk, access=access)
    assert done.status == BackupStatus.FAILED
    assert done.failure_reason.startswith("The database could not be dumped:")
    assert "no_such_db" in done.failure_reason


def test_an_unreachable_bucket_is_named_as_such(bucket_settings, kube_api, access, medusa_store, pg_database):
    bucket_settings.BACKUP_S3_ENDPOINT = "http://127.0.0.1:9"
    backup = backup_request(store=medusa_store, dispatch=False)
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)):
        done = backup_execute(backup_id=backup.pk, access=access)
    assert done.failure_reason == "The backup storage did not answer; nothing was stored. Try again later."


def test_a_second_execution_of_the_same_backup_does_nothing(bucket_settings, kube_api, access, medusa_store):
    backup = backup_request(store=medusa_store, dispatch=False)
    backup_transition(backup_id=backup.pk, to=BackupStatus.RUNNING)
    assert backup_execute(backup_id=backup.pk, access=access).status == BackupStatus.RUNNING
    assert kube_api.objects("jobs") == []


def test_refusals(bucket_settings, settings, tenant):
    failed = StoreFactory(tenant=tenant, status=StoreStatus.FAILED)
    with pytest.raises(InvalidStoreState):
        backup_request(store=failed)
    ready = StoreFactory(tenant=tenant, ready=True)
    backup_request(store=ready, dispatch=False)
    with pytest.raises(BackupRefused, match="already queued or running"):
        backup_request(store=ready, dispatch=False)
    settings.BACKUP_S3_ENDPOINT = ""
    with pytest.raises(BackupsNotConfigured):
        backup_request(store=StoreFactory(tenant=tenant, ready=True))


def _completed(store, **fields) -> StoreBackup:
    backup = backup_request(store=store, dispatch=False, kind=fields.pop("kind", BackupKind.MANUAL))
    assert backup_transition(backup_id=backup.pk, to=BackupStatus.RUNNING)
    assert backup_transition(
        backup_id=backup.pk, to=BackupStatus.COMPLETED, fields={"checksum": "0" * 64, "size_bytes": 1}
    )
    if fields:
        StoreBackup.objects.filter(pk=backup.pk).update(**fields)
    return StoreBackup.objects.get(pk=backup.pk)


def test_restore_refusals(bucket_settings, tenant, other_tenant):
    store = StoreFactory(tenant=tenant, ready=True)
    backup = _completed(store)
    with pytest.raises(RestoreConfirmationMismatch):
        backup_restore(backup=backup, target=store, confirm_name="not-it", dispatch=False)
    with pytest.raises(RestoreRefused, match="same tenant"):
        other = StoreFactory(tenant=other_tenant, ready=True)
        backup_restore(backup=backup, target=other, confirm_name=other.name, dispatch=False)
    with pytest.raises(RestoreRefused, match="cannot be restored into"):
        medusa = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True)
        backup_restore(backup=backup, target=medusa, confirm_name=medusa.name, dispatch=False)
    StoreBackup.objects.filter(pk=backup.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(RestoreRefused, match="expired"):
        backup_restore(backup=StoreBackup.objects.get(pk=backup.pk), target=store, confirm_name=store.name)
    failed = backup_request(store=StoreFactory(tenant=tenant, ready=True), dispatch=False)
    with pytest.raises(RestoreRefused, match="only a completed backup"):
        backup_restore(backup=failed, target=failed.store, confirm_name=failed.store.name)
    assert StoreBackup.objects.filter(kind=BackupKind.SAFETY).count() == 0  # nothing taken on a refusal


def test_restore_into_the_same_store_takes_a_safety_backup_and_brings_the_data_back(
    bucket_settings, kube_api, access, medusa_store, pg_database, owner
):
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 30);')
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)) as executor:
        backup = backup_execute(
            backup_id=backup_request(store=medusa_store, dispatch=False).pk, access=access
        )
        pg_database.sql('DELETE FROM "order" WHERE id > 5;')

        safety = backup_restore(
            backup=backup, target=medusa_store, confirm_name=medusa_store.name, actor=owner, dispatch=False
        )
        medusa_store.refresh_from_db()
        assert medusa_store.status == StoreStatus.RESTORING and safety.kind == BackupKind.SAFETY
        assert (
            restore_execute(backup_id=backup.pk, store_id=medusa_store.pk, safety_id=safety.pk, access=access)
            == "ready"
        )

    assert pg_database.sql('SELECT COUNT(*) FROM "order"').strip() == "30"
    assert StoreBackup.objects.get(pk=safety.pk).status == BackupStatus.COMPLETED
    assert [run["env"]["BACKUP_PREFIX"] for run in executor.runs] == [
        backup.object_key,
        safety.object_key,
        backup.object_key,
    ]
    moves = list(StoreEvent.objects.filter(store=medusa_store).values_list("new_status", flat=True))
    assert moves[-2:] == [StoreStatus.RESTORING, StoreStatus.READY]
    # A duplicate delivery after the end is harmless.
    assert (
        restore_execute(backup_id=backup.pk, store_id=medusa_store.pk, safety_id=safety.pk, access=access)
        == "ready"
    )


def test_a_failed_restore_fails_the_store_with_the_reason_and_names_the_safety_backup(
    bucket_settings, kube_api, access, medusa_store, pg_database, object_store
):
    pg_database.sql("CREATE TABLE t (x int);")
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)):
        backup = backup_execute(
            backup_id=backup_request(store=medusa_store, dispatch=False).pk, access=access
        )
        object_store.client().put_object(
            Bucket=bucket_settings.BACKUP_S3_BUCKET, Key=f"{backup.object_key}/database.gz", Body=b"tampered"
        )
        safety = backup_restore(
            backup=backup, target=medusa_store, confirm_name=medusa_store.name, dispatch=False
        )
        assert (
            restore_execute(backup_id=backup.pk, store_id=medusa_store.pk, safety_id=safety.pk, access=access)
            == "failed"
        )
    medusa_store.refresh_from_db()
    assert "does not match its checksum" in medusa_store.status_reason
    assert f"#{safety.pk}" in medusa_store.status_reason


def test_a_failed_safety_backup_leaves_the_store_untouched_and_ready(
    bucket_settings, kube_api, access, medusa_store
):
    backup = _completed(medusa_store)
    safety = backup_restore(
        backup=backup, target=medusa_store, confirm_name=medusa_store.name, dispatch=False
    )
    # No executor: the Job "completes" with nothing stored, so the safety backup fails.
    assert (
        restore_execute(backup_id=backup.pk, store_id=medusa_store.pk, safety_id=safety.pk, access=access)
        == "ready"
    )
    medusa_store.refresh_from_db()
    assert medusa_store.status == StoreStatus.READY
    assert medusa_store.status_reason.startswith("Restore not started: the safety backup failed")
    assert [job["metadata"]["name"] for job in kube_api.objects("jobs")] == []  # no restore Job ran


def test_retention_keeps_n_daily_and_m_weekly_and_expiry_deletes_the_objects(
    bucket_settings, tenant, object_store
):
    store = StoreFactory(tenant=tenant, ready=True)
    now = timezone.now()
    made = []
    for days_ago in range(30):  # one scheduled backup a day for 30 days
        backup = _completed(store, kind=BackupKind.SCHEDULED, created_at=now - timedelta(days=days_ago))
        object_store.client().put_object(
            Bucket=bucket_settings.BACKUP_S3_BUCKET,
            Key=f"{backup.object_key}/manifest",
            Body=b"engine woocommerce\n",
        )
        made.append(backup)
    marked = backups_apply_retention(store_id=store.pk, keep_daily=7, keep_weekly=4, now=now)
    kept = set(StoreBackup.objects.filter(store=store, expires_at__isnull=True).values_list("pk", flat=True))
    assert {b.pk for b in made[:7]} <= kept
    weeks = {tuple(b.created_at.isocalendar())[:2] for b in StoreBackup.objects.filter(pk__in=kept)}
    assert len(weeks) == 4 and marked == 30 - len(kept)
    assert backups_expire_due(now=now) == marked
    listed = object_store.client().list_objects_v2(Bucket=bucket_settings.BACKUP_S3_BUCKET)
    assert {item["Key"].rsplit("/", 1)[0] for item in listed["Contents"]} == {
        b.object_key for b in StoreBackup.objects.filter(pk__in=kept)
    }
    assert StoreBackup.objects.filter(store=store, status=BackupStatus.EXPIRED).count() == marked


def test_the_schedule_requests_one_backup_a_day_for_running_stores_on_plans_with_backups(
    bucket_settings, tenant
):
    ready = StoreFactory(tenant=tenant, ready=True)
    StoreFactory(tenant=tenant, status=StoreStatus.FAILED)
    assert backups_schedule_due() == 1
    assert StoreBackup.objects.get().store == ready
    StoreBackup.objects.update(status=BackupStatus.FAILED)  # not running any more; still today's
    assert backups_schedule_due() == 0
    assert backups_schedule_due(now=timezone.now() + timedelta(days=1)) == 1
    tenant.plan.backups_enabled = False
    tenant.plan.save()
    assert backups_schedule_due(now=timezone.now() + timedelta(days=3)) == 0


def test_a_final_backup_expires_after_the_grace_period(bucket_settings, tenant):
    store = StoreFactory(tenant=tenant, ready=True)
    final = backup_request(store=store, kind=BackupKind.FINAL, dispatch=False)
    grace = final.expires_at - final.created_at
    assert (
        timedelta(days=bucket_settings.BACKUP_FINAL_GRACE_DAYS - 1)
        < grace
        <= timedelta(days=bucket_settings.BACKUP_FINAL_GRACE_DAYS)
    )


def test_uploads_reach_the_woocommerce_job_through_the_uploads_mount(
    bucket_settings, kube_api, access, tenant, mariadb_server, tmp_path
):
    store = StoreFactory(tenant=tenant, ready=True)
    _store_namespace(kube_api, store, password=mariadb_server.password)
    name = "wp_" + store.name.replace("-", "_")
    create = f"CREATE DATABASE {name}; USE {name}; CREATE TABLE wp_posts (id int);"
    mariadb_server.sql(create + "INSERT INTO wp_posts VALUES (1),(2);")  # noqa: S608 - a generated name
    uploads = tmp_path / "uploads"
    uploads.mkdir()
    (uploads / "a.jpg").write_bytes(b"jpeg")
    overrides = {
        "DB_HOST": mariadb_server.host,
        "DB_PORT": str(mariadb_server.port),
        "DB_NAME": name,
        "DB_USER": mariadb_server.user,
    }
    with JobExecutor(kube_api, overrides=overrides, mounts={"/uploads": str(uploads)}) as executor:
        done = backup_execute(backup_id=backup_request(store=store, dispatch=False).pk, access=access)
    assert done.status == BackupStatus.COMPLETED, done.failure_reason
    # The password came from the store's Secret through secretKeyRef, not from the test.
    assert executor.runs[0]["env"]["DB_PASSWORD"] == mariadb_server.password
    manifest = manifest_read(bucket_credentials(), prefix=done.object_key)
    assert set(manifest.parts) == {"database.gz", "uploads.tar.gz"} and manifest.sha256 == done.checksum


def test_deleting_a_store_keeps_a_final_backup_restorable_into_a_new_store(
    bucket_settings, kube_api, access, medusa_store, pg_database, tenant
):
    from stores.backups import backup_final_before_teardown
    from stores.lifecycle import store_request_teardown

    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 12);')
    store_request_teardown(store=medusa_store)
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)):
        final = backup_final_before_teardown(store_id=medusa_store.pk, access=access)
        assert final is not None and final.status == BackupStatus.COMPLETED, final and final.failure_reason
        assert final.kind == BackupKind.FINAL and final.expires_at > timezone.now() + timedelta(days=29)
        # A retried teardown does not take a second one.
        assert backup_final_before_teardown(store_id=medusa_store.pk, access=access) is None

        pg_database.sql('DROP TABLE "order";')  # the namespace (and its database) went with the store
        new = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True)
        _store_namespace(kube_api, new)
        safety = backup_restore(backup=final, target=new, confirm_name=new.name, dispatch=False)
        assert (
            restore_execute(backup_id=final.pk, store_id=new.pk, safety_id=safety.pk, access=access)
            == "ready"
        )
    assert pg_database.sql('SELECT COUNT(*) FROM "order"').strip() == "12"


def test_a_new_store_created_from_a_final_backup_is_provisioned_then_loaded_without_a_safety_backup(
    bucket_settings, kube_api, access, drill_access, medusa_store, pg_database, tenant, owner,
    django_capture_on_commit_callbacks,
):  # fmt: skip
    from stores.backups import NO_SAFETY_BACKUP, backup_final_before_teardown
    from stores.lifecycle import store_create_from_backup, store_request_teardown, store_run_execute

    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 7);')
    store_request_teardown(store=medusa_store)
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)):
        final = backup_final_before_teardown(store_id=medusa_store.pk, access=access)
    assert final is not None and final.status == BackupStatus.COMPLETED, final and final.failure_reason
    pg_database.sql('DROP TABLE "order";')  # the namespace (and its database) went with the store

    reborn = store_create_from_backup(backup=final, name="reborn-shop", actor=owner)
    assert (reborn.status, reborn.engine, reborn.tenant_id) == (
        StoreStatus.REQUESTED,
        Engine.MEDUSA,
        tenant.pk,
    )
    assert Store.objects.get(pk=reborn.pk).restore_from_id == final.pk
    assert reborn.events.filter(step="restore-pending").exists()

    # Its first provision (real helm against the API double) lands in restoring, never ready before
    # its data, with the restore queued in the same transaction: no safety backup of an empty store.
    with django_capture_on_commit_callbacks() as callbacks:
        store_run_execute(run_id=reborn.runs.get().pk, access=drill_access)
    reborn.refresh_from_db()
    assert reborn.status == StoreStatus.RESTORING and reborn.restore_from_id is None
    assert reborn.status_reason.endswith("Loading the backup it was created from.")
    assert list(reborn.events.filter(kind="transition").values_list("new_status", flat=True)) == [
        "requested",
        "provisioning",
        "restoring",
    ]
    assert callbacks  # the dispatch of stores.tasks.run_restore
    assert not StoreBackup.objects.filter(store=reborn).exists()

    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)):
        status = restore_execute(
            backup_id=final.pk, store_id=reborn.pk, safety_id=NO_SAFETY_BACKUP, access=access
        )
    assert status == StoreStatus.READY
    assert pg_database.sql('SELECT COUNT(*) FROM "order"').strip() == "7"
    assert Store.objects.get(pk=reborn.pk).status_reason.startswith("Restored from the backup of")
    # A later install of the store (an upgrade, a re-provision) lands ready and loads nothing again.
    from stores.lifecycle import _installed_status

    reborn.refresh_from_db()
    reborn.status = StoreStatus.PROVISIONING
    assert _installed_status(reborn) == StoreStatus.READY


def test_a_store_from_a_backup_is_refused_for_a_taken_name_or_an_unloadable_backup(
    bucket_settings, tenant, medusa_store
):
    from stores.lifecycle import store_create_from_backup

    backup = StoreBackup.objects.create(
        store=medusa_store, tenant=tenant, engine=Engine.MEDUSA, kind=BackupKind.MANUAL,
        status=BackupStatus.VERIFIED, object_key="k",
    )  # fmt: skip
    stores_before = Store.objects.count()
    with pytest.raises(RestoreRefused, match=f"A store named {medusa_store.name} already exists"):
        store_create_from_backup(backup=backup, name=medusa_store.name)
    backup.expires_at = timezone.now() - timedelta(minutes=1)
    backup.save()
    with pytest.raises(RestoreRefused, match="expired"):
        store_create_from_backup(backup=backup, name="fresh-name")
    backup.expires_at, backup.status = None, BackupStatus.FAILED
    backup.save()
    with pytest.raises(RestoreRefused, match="only a completed backup"):
        store_create_from_backup(backup=backup, name="fresh-name")
    assert Store.objects.count() == stores_before


def test_a_store_that_never_ran_gets_no_final_backup(bucket_settings, access, tenant):
    from stores.backups import backup_final_before_teardown
    from stores.lifecycle import store_request_teardown

    store = StoreFactory(tenant=tenant, status=StoreStatus.FAILED)
    store_request_teardown(store=store)
    assert backup_final_before_teardown(store_id=store.pk, access=access) is None
    assert not StoreBackup.objects.filter(store=store).exists()


@pytest.fixture
def drill_access(kube_api, tmp_path):
    from testkit.helm import HELM_BINARIES, access_for

    helm = HELM_BINARIES["helm4"]
    if not helm.exists():
        pytest.skip("run deploy/tools/install-helm.sh")
    return access_for(kube_api, helm, tmp_path / "helm")


def test_a_backup_is_verified_by_a_restore_drill_in_a_throwaway_namespace(
    bucket_settings, kube_api, drill_access, tenant, pg_database
):
    from stores.backups import backup_execute_and_verify, drill_namespace

    store = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True)
    _store_namespace(kube_api, store)
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 17);')
    backup = backup_request(store=store, dispatch=False)
    with JobExecutor(kube_api, overrides=_pg_overrides(pg_database)) as executor:
        done = backup_execute_and_verify(backup_id=backup.pk, access=drill_access)

    assert done.status == BackupStatus.VERIFIED, (done.failure_reason, done.drill_result)
    assert done.drill_passed is True and done.drill_seconds > 0
    assert done.drill_result == "Restored into a throwaway copy; the order count matched."
    namespace = drill_namespace(done)
    assert [run["job"] for run in executor.runs] == [
        f"backup-{done.pk}",
        f"drill-restore-{done.pk}",
        f"drill-check-{done.pk}",
    ]
    assert kube_api.get("namespaces", namespace) is None  # torn down
    assert kube_api.get("namespaces", store.namespace) is not None  # the store itself untouched
    installs = [
        r for r in kube_api.requests() if r.method == "POST" and f"/namespaces/{namespace}/" in r.path
    ]
    assert installs, "nothing was installed in the drill namespace"


def test_a_drill_whose_check_fails_leaves_the_backup_completed_and_not_verified(
    bucket_settings, kube_api, drill_access, tenant, pg_database
):
    from stores.backups import backup_execute_and_verify

    store = StoreFactory(tenant=tenant, engine=Engine.MEDUSA, ready=True)
    _store_namespace(kube_api, store)
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 5);')
    backup = backup_request(store=store, dispatch=False)
    # The drill's check reads a database the restore did not fill (in the cluster: a broken dump).
    executor = JobExecutor(kube_api, overrides=_pg_overrides(pg_database))
    original = executor._execute

    def spoil(job):
        if job["metadata"]["name"].startswith("drill-check-"):
            pg_database.sql('DELETE FROM "order" WHERE id = 1;')
        original(job)

    executor._execute = spoil
    with executor:
        done = backup_execute_and_verify(backup_id=backup.pk, access=drill_access)
    assert done.status == BackupStatus.COMPLETED and done.drill_passed is False
    assert done.drill_result.startswith(
        "The restored copy failed its check: expected 5, the restored copy has 4"
    )


def test_the_reaper_fails_a_backup_and_a_restore_whose_worker_was_lost(bucket_settings, tenant):
    from stores.backups import backups_housekeeping

    store = StoreFactory(tenant=tenant, ready=True)
    running = backup_request(store=store, dispatch=False)
    backup_transition(backup_id=running.pk, to=BackupStatus.RUNNING, fields={"started_at": timezone.now()})
    restoring = StoreFactory(tenant=tenant, ready=True)
    from stores.transitions import store_transition

    store_transition(store_id=restoring.pk, to=StoreStatus.RESTORING)
    assert backups_housekeeping()["reaped"] == 0  # still within their deadlines
    later = timezone.now() + timedelta(days=1)
    assert backups_housekeeping(now=later)["reaped"] == 2
    running.refresh_from_db()
    restoring.refresh_from_db()
    assert running.status == BackupStatus.FAILED and "worker stopped" in running.failure_reason
    assert restoring.status == StoreStatus.FAILED and "safety backup" in restoring.status_reason


def test_the_final_backup_fits_inside_the_teardown_budget(bucket_settings, kube_api, access, medusa_store):
    from stores.backups import backup_final_before_teardown
    from stores.lifecycle import store_request_teardown

    bucket_settings.BACKUP_JOB_TIMEOUT = 1800
    bucket_settings.PROVISIONING_TIMEOUT = 600
    store_request_teardown(store=medusa_store)
    backup_final_before_teardown(store_id=medusa_store.pk, access=access)
    [post] = [r for r in kube_api.requests() if r.method == "POST" and r.path.endswith("/jobs")]
    assert b'"activeDeadlineSeconds": 300' in post.body or b'"activeDeadlineSeconds":300' in post.body


# --- The backup Jobs' egress, as the store charts get it ------------------------------------------------


def test_configured_object_store_addresses_reach_the_store_values(settings, tenant):
    settings.BACKUP_S3_ENDPOINT = "https://s3.example.com"
    settings.BACKUP_S3_EGRESS = ["10.43.12.7/32", "203.0.113.0/24"]
    settings.BACKUP_S3_EGRESS_PORT = 0
    store = StoreFactory(tenant=tenant)

    assert store_helm_values(store)["backup"] == {
        "egress": {"cidrs": ["10.43.12.7/32", "203.0.113.0/24"], "port": 443}
    }


@pytest.mark.parametrize(
    ("endpoint", "port_setting", "port"),
    [
        ("https://s3.example.com", 0, 443),
        ("http://minio.example.com", 0, 80),
        ("http://minio.example.com:9000", 0, 9000),
        ("https://s3.example.com:8443/", 0, 8443),
        # An in-cluster store behind a Service on 80 whose pods listen on 9000: the pods' port counts.
        ("http://minio.minio.svc:80", 9000, 9000),
    ],
)
def test_the_port_comes_from_the_setting_else_the_endpoint(settings, endpoint, port_setting, port):
    settings.BACKUP_S3_ENDPOINT = endpoint
    settings.BACKUP_S3_EGRESS = ["203.0.113.0/24"]
    settings.BACKUP_S3_EGRESS_PORT = port_setting

    assert store_backup_egress() == {"cidrs": ["203.0.113.0/24"], "port": port}


def test_backups_off_give_the_jobs_no_way_out(settings):
    settings.BACKUP_S3_ENDPOINT = ""
    settings.BACKUP_S3_EGRESS = []

    assert store_backup_egress()["cidrs"] == []


def test_without_addresses_the_endpoint_is_resolved_and_the_log_says_so(settings, monkeypatch, caplog):
    settings.BACKUP_S3_ENDPOINT = "https://s3.example.com"
    settings.BACKUP_S3_EGRESS = []
    settings.BACKUP_S3_EGRESS_PORT = 0
    asked = []

    def getaddrinfo(host, port, family=0, type=0):
        asked.append((host, family))
        return [
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.9", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("198.51.100.4", 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("203.0.113.9", 0)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with caplog.at_level(logging.WARNING, logger="stores.release"):
        egress = store_backup_egress()

    assert egress == {"cidrs": ["198.51.100.4/32", "203.0.113.9/32"], "port": 443}
    assert asked == [("s3.example.com", socket.AF_INET)]
    assert "BACKUP_S3_EGRESS is empty" in caplog.text and "198.51.100.4/32" in caplog.text


def test_an_endpoint_that_does_not_resolve_gives_no_addresses_and_an_error(settings, monkeypatch, caplog):
    settings.BACKUP_S3_ENDPOINT = "https://nowhere.invalid"
    settings.BACKUP_S3_EGRESS = []

    def getaddrinfo(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    with caplog.at_level(logging.ERROR, logger="stores.release"):
        assert store_backup_egress()["cidrs"] == []

    assert "did not resolve" in caplog.text and "Set BACKUP_S3_EGRESS" in caplog.text


def test_an_ip_endpoint_is_its_own_address(settings, monkeypatch):
    settings.BACKUP_S3_ENDPOINT = "http://192.0.2.10:8333"
    settings.BACKUP_S3_EGRESS = []
    settings.BACKUP_S3_EGRESS_PORT = 0
    monkeypatch.setattr(socket, "getaddrinfo", lambda *a, **k: pytest.fail("an address needs no lookup"))

    assert store_backup_egress() == {"cidrs": ["192.0.2.10/32"], "port": 8333}
