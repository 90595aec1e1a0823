"""Backups on a real control plane (kwok nodes), with only the platform worker's token: the backup,
restore and drill Jobs are created in store namespaces under the chart's RBAC and admission policy,
admitted by the store's ResourceQuota and Pod Security `restricted`, scheduled and run to completion
(kwok completes Job pods; no container runs), and every failure ends with a reason.

kwok runs no containers, so nothing a Job would write reaches the bucket by itself. Where a test needs
the container's effect it runs deploy/backup/store-backup.sh natively for the same object prefix
before the platform looks (the same script, bucket and credentials the Job gets), and says so.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from provisioning.models import ProvisioningRun
from stores.backups import (
    NO_SAFETY_BACKUP,
    backup_drill,
    backup_execute,
    backup_request,
    backup_restore,
    drill_namespace,
    restore_execute,
)
from stores.choices import BackupStatus, Engine, StoreStatus
from stores.lifecycle import store_create, store_create_from_backup, store_run_execute
from stores.models import Store
from stores.tests.real_cluster.support import install_platform_identity, unique_name
from testkit.helm import HELM_BINARIES, access_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]

SCRIPT = Path(__file__).resolve().parents[3] / "deploy" / "backup" / "store-backup.sh"


class _TokenCluster:
    def __init__(self, kubeconfig):
        self.kubeconfig_path = kubeconfig


@pytest.fixture
def worker_access(cluster, tmp_path, settings):
    identity = install_platform_identity(cluster, tmp_path)
    # The worker binds its own store-deployer role in every namespace it creates (drills included).
    settings.PLATFORM_SERVICE_ACCOUNT = identity.setting
    return access_for(_TokenCluster(identity.kubeconfig), HELM_BINARIES["helm4"], tmp_path / "helm")


@pytest.fixture
def bucket_settings(settings, object_store, backup_bucket):
    creds = object_store.credentials
    settings.BACKUP_S3_ENDPOINT = creds.endpoint
    settings.BACKUP_S3_BUCKET = backup_bucket
    settings.BACKUP_S3_REGION = creds.region
    settings.BACKUP_S3_ACCESS_KEY = creds.access_key
    settings.BACKUP_S3_SECRET_KEY = creds.secret_key
    settings.BACKUP_JOB_TIMEOUT = 90
    return settings


@pytest.fixture
def medusa_store(tenant, worker_access) -> Store:
    store, _ = store_create(tenant=tenant, name=unique_name("bak"), engine=Engine.MEDUSA)
    run = ProvisioningRun.objects.filter(store=store).order_by("-id").first()
    result = store_run_execute(run_id=run.pk, access=worker_access)
    assert result.outcome == "succeeded", result.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    return store


def _stand_in_for_the_container(mode: str, prefix: str, settings, db, expected: str = "") -> None:
    env = {
        "PATH": os.environ["PATH"],
        "BACKUP_ENGINE": "medusa",
        "BACKUP_PREFIX": prefix,
        "BACKUP_SHA256": expected,
        "S3_ENDPOINT": settings.BACKUP_S3_ENDPOINT,
        "S3_BUCKET": settings.BACKUP_S3_BUCKET,
        "S3_REGION": settings.BACKUP_S3_REGION,
        "AWS_ACCESS_KEY_ID": settings.BACKUP_S3_ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": settings.BACKUP_S3_SECRET_KEY,
        "PGHOST": db.host,
        "PGPORT": str(db.port),
        "PGUSER": db.user,
        "PGDATABASE": db.name,
        "BACKUP_CHECK_QUERY": 'SELECT COUNT(*) FROM "order"',
    }
    done = subprocess.run(["bash", str(SCRIPT), mode], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def _pod_events(cluster, namespace: str, job: str) -> list[dict]:
    return [e for e in cluster.objects("events", namespace) if e["involvedObject"]["name"].startswith(job)]


def test_the_backup_job_is_admitted_runs_to_completion_and_the_result_is_read_back(
    cluster, worker_access, bucket_settings, medusa_store, pg_database
):
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 9);')
    backup = backup_request(store=medusa_store, dispatch=False)
    _stand_in_for_the_container("backup", backup.object_key, bucket_settings, pg_database)

    done = backup_execute(backup_id=backup.pk, access=worker_access)

    assert done.status == BackupStatus.COMPLETED, done.failure_reason
    assert done.size_bytes and len(done.checksum) == 64
    # The Job ran (a pod was scheduled onto a kwok node and completed) and was deleted after.
    scheduled = [
        e
        for e in _pod_events(cluster, medusa_store.namespace, f"backup-{backup.pk}")
        if e["reason"] == "Scheduled"
    ]
    assert scheduled, "the backup pod was never scheduled"
    assert cluster.get("jobs", f"backup-{backup.pk}", medusa_store.namespace, api="batch/v1") is None
    secret = cluster.get("secrets", "store-backup-credentials", medusa_store.namespace)
    assert secret["type"] == "Opaque" and "AWS_SECRET_ACCESS_KEY" in secret["data"]


def test_a_job_that_completes_without_storing_anything_fails_with_that_reason(
    cluster, worker_access, bucket_settings, medusa_store
):
    done = backup_execute(
        backup_id=backup_request(store=medusa_store, dispatch=False).pk, access=worker_access
    )
    assert done.status == BackupStatus.FAILED
    assert done.failure_reason == "The backup Job finished but the backup is not in the storage."


def test_a_full_resource_quota_refuses_the_job_and_the_backup_says_so(
    cluster, worker_access, bucket_settings, medusa_store
):
    quota = cluster.get("resourcequotas", "store-quota", medusa_store.namespace)
    quota["spec"]["hard"]["pods"] = "0"  # every pod slot taken
    quota["metadata"].pop("managedFields", None)
    cluster.request("PUT", f"/api/v1/namespaces/{medusa_store.namespace}/resourcequotas/store-quota", quota)
    done = backup_execute(
        backup_id=backup_request(store=medusa_store, dispatch=False).pk, access=worker_access
    )
    assert done.status == BackupStatus.FAILED
    assert done.failure_reason.startswith("The store's resource quota has no room for the backup Job: ")
    assert "exceeded quota" in done.failure_reason


def test_restore_and_drill_jobs_run_under_the_worker_token(
    cluster, worker_access, bucket_settings, medusa_store, pg_database
):
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 4);')
    backup = backup_request(store=medusa_store, dispatch=False)
    _stand_in_for_the_container("backup", backup.object_key, bucket_settings, pg_database)
    backup = backup_execute(backup_id=backup.pk, access=worker_access)
    assert backup.status == BackupStatus.COMPLETED, backup.failure_reason

    # The drill: the chart installed in store-drill-<id> with the worker's token (admission policy:
    # store-* names, Pod Security labels), restore and check Jobs completed there, all torn down.
    drilled = backup_drill(backup_id=backup.pk, access=worker_access)
    assert drilled.status == BackupStatus.VERIFIED, drilled.drill_result
    assert drilled.drill_seconds > 0
    assert cluster.get("namespaces", drill_namespace(drilled)) is None

    # A restore into the store itself: its safety backup Job, then the restore Job.
    safety = backup_restore(
        backup=drilled, target=medusa_store, confirm_name=medusa_store.name, dispatch=False
    )
    _stand_in_for_the_container("backup", safety.object_key, bucket_settings, pg_database)
    status = restore_execute(
        backup_id=drilled.pk, store_id=medusa_store.pk, safety_id=safety.pk, access=worker_access
    )
    assert status == StoreStatus.READY, Store.objects.get(pk=medusa_store.pk).status_reason
    for job in (f"backup-{safety.pk}", f"restore-{drilled.pk}-{safety.pk}"):
        assert any(e["reason"] == "Scheduled" for e in _pod_events(cluster, medusa_store.namespace, job)), job


def test_a_new_store_created_from_a_backup_is_provisioned_then_its_restore_job_runs(
    cluster, worker_access, bucket_settings, medusa_store, pg_database
):
    pg_database.sql('CREATE TABLE "order" (id int); INSERT INTO "order" SELECT generate_series(1, 3);')
    backup = backup_request(store=medusa_store, dispatch=False)
    _stand_in_for_the_container("backup", backup.object_key, bucket_settings, pg_database)
    backup = backup_execute(backup_id=backup.pk, access=worker_access)
    assert backup.status == BackupStatus.COMPLETED, backup.failure_reason

    reborn = store_create_from_backup(backup=backup, name=unique_name("reborn"))
    run = ProvisioningRun.objects.get(store=reborn)
    # Provisioned like any store under the worker's token; the success lands it in restoring.
    assert store_run_execute(run_id=run.pk, access=worker_access).outcome == "succeeded"
    assert Store.objects.get(pk=reborn.pk).status == StoreStatus.RESTORING
    status = restore_execute(
        backup_id=backup.pk, store_id=reborn.pk, safety_id=NO_SAFETY_BACKUP, access=worker_access
    )
    assert status == StoreStatus.READY, Store.objects.get(pk=reborn.pk).status_reason
    # The restore Job ran in the new store's namespace (admitted by its quota and Pod Security), and no
    # safety backup Job was made for a store that held nothing.
    assert any(
        e["reason"] == "Scheduled" for e in _pod_events(cluster, reborn.namespace, f"restore-{backup.pk}-0")
    )
    assert not [
        e for e in cluster.objects("events", reborn.namespace) if "backup-" in e["involvedObject"]["name"]
    ]
    moves = list(reborn.events.filter(kind="transition").values_list("new_status", flat=True))
    assert moves == ["requested", "provisioning", "restoring", "ready"]  # never ready without its data


def test_a_woocommerce_backup_job_mounting_the_uploads_volume_is_admitted_and_runs(
    cluster, worker_access, bucket_settings, tenant
):
    store, _ = store_create(tenant=tenant, name=unique_name("wbak"), engine=Engine.WOOCOMMERCE)
    run = ProvisioningRun.objects.filter(store=store).order_by("-id").first()
    assert store_run_execute(run_id=run.pk, access=worker_access).outcome == "succeeded"
    backup = backup_request(store=store, dispatch=False)
    # No stand-in here: the point is the Job (uid 33, the WordPress volume read-only at /uploads)
    # passing admission next to the running store and its pod completing on a kwok node.
    done = backup_execute(backup_id=backup.pk, access=worker_access)
    assert done.failure_reason == "The backup Job finished but the backup is not in the storage."
    events = _pod_events(cluster, store.namespace, f"backup-{backup.pk}")
    assert any(e["reason"] == "Scheduled" for e in events), [e["reason"] for e in events]
    assert not any(e["reason"] == "FailedCreate" for e in events)
