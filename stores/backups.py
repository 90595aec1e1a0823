"""Store backups: request, run, restore, schedule and expire (issue 20).

A backup is a Job in the store's namespace running deploy/backup/store-backup.sh, which streams the
database dump and the uploads to the backup bucket; the platform then reads the manifest back and
records its size and checksum itself. `stores.backup_transitions.backup_transition` is the one writer
of a backup's status; the store's own status moves only through `stores.transitions.store_transition`
(READY/DEGRADED -> RESTORING -> READY|FAILED for a restore).

Nothing is held across a Job: claim in a short transaction, create and wait for the Job outside any
transaction, re-fetch by id, finish in a short transaction.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from platform_site.errors import ApplicationError
from provisioning.backup_jobs import (
    BackupJobSpec,
    BucketCredentials,
    DatabaseTarget,
    JobOutcome,
    create_job,
    delete_job,
    ensure_backup_prerequisites,
    wait_job,
)
from provisioning.cluster import STORE_LABEL
from provisioning.cluster_access import ClusterAccess
from provisioning.executor import Outcome, release_install, release_teardown
from provisioning.helm import HelmInvocation
from provisioning.object_store import BucketUnreachable, ObjectMissing, manifest_read, prefix_delete
from provisioning.recording import RunRecorder
from provisioning.redaction import redact
from provisioning.specs import ReleaseSpec, TeardownSpec
from stores.backup_transitions import backup_record_event, backup_transition
from stores.choices import (
    BACKUP_RESTORABLE_STATUSES,
    STORE_RUNNING_STATUSES,
    BackupKind,
    BackupStatus,
    Engine,
    StoreStatus,
)
from stores.engines import CREDENTIALS_OBJECT_NAME
from stores.exceptions import InvalidStoreState
from stores.models import Store, StoreBackup
from stores.release import release_spec_for, store_labels
from stores.transitions import store_transition

logger = logging.getLogger(__name__)

RUN_BACKUP_TASK = "stores.tasks.run_backup"
RUN_RESTORE_TASK = "stores.tasks.run_restore"
# The restore task's safety backup id for a store created from a backup: there is none to take.
NO_SAFETY_BACKUP = 0
# On a drill namespace instead of the store label: the watcher and the drift checks follow stores.
DRILL_LABEL = "platform.example/backup-drill"

# What each machine reason from the script or the Job means to a merchant.
FAILURE_REASONS: dict[str, str] = {
    "bucket-unreachable": "The backup storage did not answer; nothing was stored. Try again later.",
    "bucket-refused": "The backup storage refused the upload (credentials, permissions or space).",
    "dump-failed": "The database could not be dumped",
    "checksum-mismatch": "The stored backup does not match its checksum; it was not loaded.",
    "restore-failed": "The backup could not be loaded into the database",
    "quota-refused": "The store's resource quota has no room for the backup Job",
    "admission-refused": "The cluster refused the backup Job",
    "deadline": "The backup Job ran out of time",
    "timeout": "The backup Job did not finish in time",
    "bad-input": "The backup Job was given bad input",
    "no-manifest": "The backup Job finished but the backup is not in the storage.",
    "job-failed": "The backup Job failed",
}


class BackupsNotConfigured(ApplicationError):
    code = "backups_not_configured"
    http_status = 409


class BackupRefused(ApplicationError):
    code = "backup_refused"
    http_status = 409


class RestoreRefused(ApplicationError):
    code = "restore_refused"
    http_status = 409


class RestoreConfirmationMismatch(ApplicationError):
    code = "confirmation_mismatch"
    http_status = 400


@dataclass(frozen=True)
class _EngineDatabase:
    host: str
    port: int
    name: str
    user: str
    image: str
    run_as_user: int
    uploads_claim: str
    uploads_subpath: str
    # The drill's readiness check: a known row count, recorded at backup time and read back from the
    # restored copy. WordPress always has wp_posts (WooCommerce orders live there without HPOS).
    check_query: str


# Where each chart's database answers and which image has its client tools (the same image the
# chart runs its database from, so dump and server versions match).
_DATABASES: dict[str, _EngineDatabase] = {
    # uid 33: the WordPress volume's owner, so a restore can write the uploads back.
    Engine.WOOCOMMERCE: _EngineDatabase(
        "mariadb",
        3306,
        "wordpress",
        "wordpress",
        "mariadb:11.4.7",
        33,
        "wordpress",
        "wp-content/uploads",
        "SELECT COUNT(*) FROM wp_posts",
    ),
    # Medusa keeps no uploads in the namespace (its file service is external).
    Engine.MEDUSA: _EngineDatabase(
        "postgres",
        5432,
        "medusa",
        "medusa",
        "postgres:16.9-bookworm",
        999,
        "",
        "",
        'SELECT COUNT(*) FROM "order"',
    ),
}


def bucket_credentials() -> BucketCredentials:
    """The configured bucket; BackupsNotConfigured (a plain sentence) without one."""
    if not (settings.BACKUP_S3_ENDPOINT and settings.BACKUP_S3_BUCKET and settings.BACKUP_S3_ACCESS_KEY):
        raise BackupsNotConfigured("Backups are not configured on this platform (no backup storage).")
    return BucketCredentials(
        endpoint=settings.BACKUP_S3_ENDPOINT,
        bucket=settings.BACKUP_S3_BUCKET,
        region=settings.BACKUP_S3_REGION,
        access_key=settings.BACKUP_S3_ACCESS_KEY,
        secret_key=settings.BACKUP_S3_SECRET_KEY,
    )


def _dispatch(task: str, *args: int) -> None:
    from platform_site.celery import app

    try:
        app.send_task(task, args=list(args))
    except Exception as exc:  # kombu raises many connection error types; all mean "not sent"
        logger.warning("%s%s not dispatched: %s", task, args, redact(str(exc)))


def _expiry(kind: str, now: datetime) -> datetime | None:
    if kind == BackupKind.FINAL:
        return now + timedelta(days=settings.BACKUP_FINAL_GRACE_DAYS)
    if kind in (BackupKind.MANUAL, BackupKind.SAFETY, BackupKind.UPGRADE):
        return now + timedelta(days=settings.BACKUP_MANUAL_RETENTION_DAYS)
    return None  # scheduled: retention by the plan's daily/weekly counts (backups_apply_retention)


def backup_request(
    *, store: Store, kind: str = BackupKind.MANUAL, actor: Any = None, dispatch: bool = True
) -> StoreBackup:
    """Ask for a backup of a running store; the Job runs in the worker. BackupRefused while another
    backup of the store is queued or running, InvalidStoreState unless the store is up."""
    bucket_credentials()
    if kind not in BackupKind.values:
        raise BackupRefused(f"Unknown backup kind {kind!r}.")
    store = Store.objects.select_related("engine_version").get(pk=store.pk)
    if store.status not in STORE_RUNNING_STATUSES and not (
        (kind == BackupKind.SAFETY and store.status == StoreStatus.RESTORING)
        or (kind == BackupKind.FINAL and store.status == StoreStatus.DELETING)
    ):
        raise InvalidStoreState(
            f"Only a running store can be backed up; this one is {store.get_status_display().lower()}."
        )
    now = timezone.now()
    backup = StoreBackup(
        store=store,
        tenant_id=store.tenant_id,
        engine=store.engine,
        kind=kind,
        engine_version=store.engine_version.name if store.engine_version else "",
        expires_at=_expiry(kind, now),
        created_by=actor if getattr(actor, "pk", None) else None,
        # Ids and a timestamp only: never anything a person typed.
        object_key=f"tenants/{store.tenant_id}/stores/{store.pk}-{store.name}/{now:%Y%m%dT%H%M%S%f}-{kind}",
    )
    backup.full_clean(exclude=["store", "tenant"])
    try:
        with transaction.atomic():
            backup.save()
            backup_record_event(
                backup_id=backup.pk, reason=f"{backup.get_kind_display()} backup requested.", actor=actor
            )
    except IntegrityError as exc:
        raise BackupRefused("A backup of this store is already queued or running.") from exc
    if dispatch:
        backup_id = backup.pk
        transaction.on_commit(lambda: _dispatch(RUN_BACKUP_TASK, backup_id))
    return backup


def _job_spec(
    store: Store,
    backup: StoreBackup,
    *,
    mode: str,
    job_name: str,
    namespace: str = "",
    deadline_seconds: int | None = None,
) -> BackupJobSpec:
    db = _DATABASES[Engine(store.engine)]
    return BackupJobSpec(
        namespace=namespace or store.namespace,
        job_name=job_name,
        mode=mode,
        prefix=backup.object_key,
        database=DatabaseTarget(
            engine=store.engine,
            host=db.host,
            port=db.port,
            name=db.name,
            user=db.user,
            password_secret=CREDENTIALS_OBJECT_NAME,
            password_key="database-password",  # noqa: S106 - a key name in the store's Secret
        ),
        image=db.image,
        run_as_user=db.run_as_user,
        expected_sha256=backup.checksum if mode == "restore" else "",
        check_query=db.check_query,
        uploads_claim=db.uploads_claim,
        uploads_subpath=db.uploads_subpath,
        labels=store_labels(store),
        deadline_seconds=deadline_seconds or settings.BACKUP_JOB_TIMEOUT,
    )


def _run_job(access: ClusterAccess, spec: BackupJobSpec, credentials: BucketCredentials) -> JobOutcome:
    """Create the Job (or find the one a redelivered task made), wait for it, delete it. Cluster
    errors become a failed outcome with the apiserver's words, never an exception past here."""
    api = access.api_client_factory()
    try:
        ensure_backup_prerequisites(api, namespace=spec.namespace, credentials=credentials)
        create_job(api, spec=spec)
        outcome = wait_job(
            api, namespace=spec.namespace, job_name=spec.job_name, timeout_seconds=spec.deadline_seconds + 60
        )
        delete_job(api, namespace=spec.namespace, job_name=spec.job_name)
        return outcome
    except ApiException as exc:
        return JobOutcome(
            succeeded=False, reason="job-failed", message=f"Kubernetes said {exc.status} {exc.reason}"
        )
    except HTTPError as exc:
        return JobOutcome(succeeded=False, reason="job-failed", message=f"the cluster did not answer: {exc}")
    finally:
        api.close()


def _reason(outcome: JobOutcome) -> str:
    words = FAILURE_REASONS.get(outcome.reason, FAILURE_REASONS["job-failed"])
    return f"{words}: {outcome.message}" if outcome.message and not words.endswith(".") else words


def backup_execute(
    *, backup_id: int, access: ClusterAccess | None = None, deadline_seconds: int | None = None
) -> StoreBackup:
    """Run one requested backup to completed or failed (its Job limited to `deadline_seconds`, by
    default BACKUP_JOB_TIMEOUT). A backup that is not requested any more was taken by another worker:
    returned as it is."""
    job_name = f"backup-{backup_id}"
    if not backup_transition(
        backup_id=backup_id,
        to=BackupStatus.RUNNING,
        reason="The backup Job runs in the store's namespace.",
        actor_label="worker",
        only_from=[BackupStatus.REQUESTED],
        fields={"started_at": timezone.now(), "job_name": job_name},
    ):
        return StoreBackup.objects.get(pk=backup_id)
    backup = StoreBackup.objects.select_related("store", "store__cluster").get(pk=backup_id)
    try:
        credentials = bucket_credentials()
    except BackupsNotConfigured as exc:
        _fail(backup_id, exc.message)
        return StoreBackup.objects.get(pk=backup_id)
    access = access or ClusterAccess.for_cluster(backup.store.cluster)
    spec = _job_spec(
        backup.store, backup, mode="backup", job_name=job_name, deadline_seconds=deadline_seconds
    )
    outcome = _run_job(access, spec, credentials)
    if not outcome.succeeded:
        _fail(backup_id, _reason(outcome))
        return StoreBackup.objects.get(pk=backup_id)
    try:
        manifest = manifest_read(credentials, prefix=backup.object_key)
    except ObjectMissing:
        _fail(backup_id, FAILURE_REASONS["no-manifest"])
        return StoreBackup.objects.get(pk=backup_id)
    except BucketUnreachable:
        _fail(backup_id, FAILURE_REASONS["bucket-unreachable"])
        return StoreBackup.objects.get(pk=backup_id)
    if manifest.engine != backup.engine or "database.gz" not in manifest.parts:
        _fail(backup_id, "The stored backup is incomplete (no database dump in its manifest).")
        return StoreBackup.objects.get(pk=backup_id)
    backup_transition(
        backup_id=backup_id,
        to=BackupStatus.COMPLETED,
        reason="Stored and checksummed.",
        actor_label="worker",
        only_from=[BackupStatus.RUNNING],
        fields={
            "finished_at": timezone.now(),
            "size_bytes": manifest.size_bytes,
            "checksum": manifest.sha256,
        },
    )
    return StoreBackup.objects.get(pk=backup_id)


def backup_final_before_teardown(*, store_id: int, access: ClusterAccess) -> StoreBackup | None:
    """The teardown run's first step: a final backup, kept BACKUP_FINAL_GRACE_DAYS and restorable
    into a new store of the tenant until then. None when backups are off or the store never ran
    (nothing to keep), or one was taken by an earlier attempt. A failed final backup does not stop
    the teardown the merchant asked for; the failed row says why."""
    store = Store.objects.get(pk=store_id)
    if store.ready_at is None or store.status != StoreStatus.DELETING:
        return None
    try:
        bucket_credentials()
    except BackupsNotConfigured:
        return None
    done = StoreBackup.objects.filter(
        store_id=store_id, kind=BackupKind.FINAL, status__in=BACKUP_RESTORABLE_STATUSES
    )
    if done.exists():
        return None
    pending = StoreBackup.objects.filter(
        store_id=store_id, kind=BackupKind.FINAL, status=BackupStatus.REQUESTED
    ).first()
    try:
        backup = pending or backup_request(store=store, kind=BackupKind.FINAL, actor=None, dispatch=False)
    except BackupRefused:
        return None  # another backup runs right now; the teardown does not wait on it
    # It runs inside the teardown task, whose soft limit is PROVISIONING_TIMEOUT: half of that for the
    # Job leaves the uninstall and the namespace deletion their time.
    deadline = min(settings.BACKUP_JOB_TIMEOUT, max(60, settings.PROVISIONING_TIMEOUT // 2))
    return backup_execute(backup_id=backup.pk, access=access, deadline_seconds=deadline)


def backup_execute_and_verify(*, backup_id: int, access: ClusterAccess | None = None) -> StoreBackup:
    """The backup task's service: the backup, then its restore drill when it completed."""
    backup = backup_execute(backup_id=backup_id, access=access)
    if backup.status == BackupStatus.COMPLETED:
        backup = backup_drill(backup_id=backup_id, access=access)
    return backup


def _fail(backup_id: int, reason: str) -> None:
    backup_transition(
        backup_id=backup_id,
        to=BackupStatus.FAILED,
        reason=reason,
        actor_label="worker",
        fields={"finished_at": timezone.now(), "failure_reason": reason},
    )


def backup_restore(
    *, backup: StoreBackup, target: Store, confirm_name: str, actor: Any = None, dispatch: bool = True
) -> StoreBackup:
    """Restore `backup` into `target` (its own store, or another store of the same tenant and engine,
    e.g. a new one after the original was deleted). The merchant confirms by typing the target's name;
    a safety backup of the target is taken first; the target is `restoring` until the load ends.
    Returns the safety backup."""
    bucket_credentials()
    if (confirm_name or "").strip() != target.name:
        raise RestoreConfirmationMismatch(
            f"Type the store's name ({target.name}) to confirm: its current data will be replaced.",
            fields={"confirm_name": ["Does not match the store's name."]},
        )
    if target.tenant_id != backup.tenant_id:
        # Interfaces scope both to the caller's tenant already; this is the service's own guard.
        raise RestoreRefused("A backup can only be restored into a store of the same tenant.")
    backup_restorable_require(backup)
    if target.engine != backup.engine:
        raise RestoreRefused(f"A {backup.engine} backup cannot be restored into a {target.engine} store.")
    if not store_transition(
        store_id=target.pk,
        to=StoreStatus.RESTORING,
        reason=f"Restoring the backup of {backup.created_at:%Y-%m-%d %H:%M} UTC; a safety backup is taken first.",
        actor=actor,
        only_from=STORE_RUNNING_STATUSES,
    ):
        raise InvalidStoreState("Only a running store can be restored into.")
    try:
        safety = backup_request(store=target, kind=BackupKind.SAFETY, actor=actor, dispatch=False)
    except BackupRefused:
        store_transition(
            store_id=target.pk,
            to=StoreStatus.READY,
            reason="Restore not started: another backup of this store is running; try again when it ends.",
            actor=actor,
            only_from=[StoreStatus.RESTORING],
        )
        raise
    backup_record_event(
        backup_id=backup.pk,
        reason=f"Restore into {target.name} requested (safety backup #{safety.pk}).",
        actor=actor,
    )
    if dispatch:
        ids = (backup.pk, target.pk, safety.pk)
        transaction.on_commit(lambda: _dispatch(RUN_RESTORE_TASK, *ids))
    return safety


def backup_restorable_require(backup: StoreBackup) -> None:
    """Raise RestoreRefused unless `backup` can be loaded now (completed or verified, not expired)."""
    if backup.status not in BACKUP_RESTORABLE_STATUSES:
        raise RestoreRefused(
            f"This backup is {backup.get_status_display().lower()}; only a completed backup can be restored."
        )
    if backup.expires_at is not None and backup.expires_at <= timezone.now():
        raise RestoreRefused("This backup has expired.")


def backup_restore_into_new_store_start(*, store_id: int) -> bool:
    """In the transaction that moved a store created from a backup (Store.restore_from) from its first
    provision to `restoring`: take the backup off the store and queue the restore, without a safety
    backup (a new store holds nothing to keep). False when there was nothing to load (the store then
    goes on to ready)."""
    backup_id = Store.objects.filter(pk=store_id).values_list("restore_from_id", flat=True).first()
    if backup_id is None or not Store.objects.filter(pk=store_id, restore_from_id=backup_id).update(
        restore_from=None
    ):
        store_transition(
            store_id=store_id,
            to=StoreStatus.READY,
            reason="Provisioned; there was no backup left to load.",
            actor_label="worker",
            only_from=[StoreStatus.RESTORING],
        )
        return False
    transaction.on_commit(lambda: _dispatch(RUN_RESTORE_TASK, backup_id, store_id, NO_SAFETY_BACKUP))
    return True


def restore_execute(
    *, backup_id: int, store_id: int, safety_id: int, access: ClusterAccess | None = None
) -> str:
    """The worker's half of a restore: the safety backup (none for a store created from the backup:
    safety_id NO_SAFETY_BACKUP), then the restore Job; the store ends ready (loaded, or untouched when
    the safety backup failed) or failed with the reason. Returns the store's status."""
    store = Store.objects.select_related("cluster").get(pk=store_id)
    if store.status != StoreStatus.RESTORING:
        return store.status  # a duplicate delivery after the restore ended
    if safety_id != NO_SAFETY_BACKUP:
        safety = backup_execute(backup_id=safety_id, access=access)
        if safety.status == BackupStatus.RUNNING:
            return store.status  # another worker runs it; it finishes the restore
        if safety.status != BackupStatus.COMPLETED:
            store_transition(
                store_id=store_id,
                to=StoreStatus.READY,
                reason=f"Restore not started: the safety backup failed ({safety.failure_reason}). "
                "Nothing was changed.",
                actor_label="worker",
                only_from=[StoreStatus.RESTORING],
            )
            return StoreStatus.READY
    backup = StoreBackup.objects.get(pk=backup_id)
    access = access or ClusterAccess.for_cluster(store.cluster)
    outcome = _run_job(
        access,
        _job_spec(store, backup, mode="restore", job_name=f"restore-{backup_id}-{safety_id}"),
        bucket_credentials(),
    )
    if outcome.succeeded:
        backup_record_event(backup_id=backup_id, reason=f"Restored into {store.name}.", actor_label="worker")
        store_transition(
            store_id=store_id,
            to=StoreStatus.READY,
            reason=f"Restored from the backup of {backup.created_at:%Y-%m-%d %H:%M} UTC.",
            actor_label="worker",
            only_from=[StoreStatus.RESTORING],
        )
        return StoreStatus.READY
    reason = _reason(outcome).replace("backup Job", "restore Job")
    backup_record_event(
        backup_id=backup_id, reason=f"Restore into {store.name} failed: {reason}", actor_label="worker"
    )
    before = (
        f"The safety backup #{safety_id} holds the data from before."
        if safety_id != NO_SAFETY_BACKUP
        else "The store was created for this restore and held no data of its own."
    )
    store_transition(
        store_id=store_id,
        to=StoreStatus.FAILED,
        reason=f"The restore failed: {reason} {before}",
        actor_label="worker",
        only_from=[StoreStatus.RESTORING],
    )
    return StoreStatus.FAILED


# --- Schedule and retention -------------------------------------------------------------------------


def backups_schedule_due(*, now: datetime | None = None) -> int:
    """Request a scheduled backup of every running store whose plan has backups on and whose last
    scheduled backup is a day old or more. Returns how many were requested."""
    now = now or timezone.now()
    since = now - timedelta(hours=23)  # an hourly beat never drifts a daily backup to every 25 h
    requested = 0
    stores = Store.objects.filter(
        status__in=STORE_RUNNING_STATUSES, tenant__plan__backups_enabled=True
    ).exclude(backups__kind=BackupKind.SCHEDULED, backups__created_at__gte=since)
    for store in stores.distinct():
        try:
            backup_request(store=store, kind=BackupKind.SCHEDULED)
        except (BackupRefused, InvalidStoreState):
            continue  # a backup is running already, or the store moved meanwhile: next pass
        requested += 1
    return requested


def backups_apply_retention(
    *, store_id: int, keep_daily: int, keep_weekly: int, now: datetime | None = None
) -> int:
    """Mark the store's scheduled backups beyond retention to expire now: keep the newest
    `keep_daily`, plus the newest of each of the `keep_weekly` most recent ISO weeks. Returns how many."""
    now = now or timezone.now()
    scheduled = list(
        StoreBackup.objects.filter(
            store_id=store_id, kind=BackupKind.SCHEDULED, status__in=BACKUP_RESTORABLE_STATUSES
        ).order_by("-created_at", "-id")
    )
    keep = {backup.pk for backup in scheduled[:keep_daily]}
    weeks: dict[tuple[int, int], int] = {}
    for backup in scheduled:
        week = tuple(backup.created_at.isocalendar())[:2]
        if week not in weeks and len(weeks) < keep_weekly:
            weeks[week] = backup.pk  # type: ignore[index]
    keep |= set(weeks.values())
    expire = [backup.pk for backup in scheduled if backup.pk not in keep]
    return StoreBackup.objects.filter(pk__in=expire, expires_at__isnull=True).update(expires_at=now) + (
        StoreBackup.objects.filter(pk__in=expire, expires_at__gt=now).update(expires_at=now)
    )


def backups_expire_due(*, now: datetime | None = None, limit: int = 200) -> int:
    """Delete the objects of every backup past its expiry and mark it expired. A bucket that does not
    answer leaves them for the next pass. Returns how many expired."""
    now = now or timezone.now()
    try:
        credentials = bucket_credentials()
    except BackupsNotConfigured:
        return 0
    expired = 0
    due = StoreBackup.objects.filter(
        expires_at__lte=now, status__in=[BackupStatus.COMPLETED, BackupStatus.VERIFIED, BackupStatus.FAILED]
    ).order_by("expires_at")[:limit]
    for backup in due:
        try:
            deleted = prefix_delete(credentials, prefix=backup.object_key)
        except BucketUnreachable:
            logger.warning("backup storage unreachable; expiry waits for the next pass")
            break
        expired += backup_transition(
            backup_id=backup.pk,
            to=BackupStatus.EXPIRED,
            reason=f"Past retention; {deleted} objects deleted from the backup storage.",
            actor_label="retention",
        )
    return expired


def backups_reap_stuck(*, now: datetime | None = None) -> int:
    """Fail what a lost worker left behind: a backup running, or a store restoring, past the longest
    its task may run (the task's hard limit has killed it by then). Returns how many were moved."""
    now = now or timezone.now()
    job_deadline = timedelta(seconds=3 * (settings.BACKUP_JOB_TIMEOUT + 240) + settings.PROVISIONING_TIMEOUT)
    reaped = 0
    for backup_id in StoreBackup.objects.filter(
        status=BackupStatus.RUNNING, started_at__lt=now - job_deadline
    ).values_list("pk", flat=True):
        reason = "The backup did not finish (its worker stopped); take a new one."
        reaped += backup_transition(
            backup_id=backup_id,
            to=BackupStatus.FAILED,
            reason=reason,
            actor_label="reaper",
            only_from=[BackupStatus.RUNNING],
            fields={"finished_at": now, "failure_reason": reason},
        )
    restore_deadline = timedelta(seconds=2 * (settings.BACKUP_JOB_TIMEOUT + 240))
    for store_id in Store.objects.filter(
        status=StoreStatus.RESTORING, status_changed_at__lt=now - restore_deadline
    ).values_list("pk", flat=True):
        reaped += store_transition(
            store_id=store_id,
            to=StoreStatus.FAILED,
            reason="The restore did not finish (its worker stopped). The safety backup, if one was "
            "taken, holds the data from before; restore it or retry.",
            actor_label="reaper",
            only_from=[StoreStatus.RESTORING],
        )
    return reaped


def backups_housekeeping(*, now: datetime | None = None) -> dict[str, int]:
    """The periodic pass (Celery beat): stuck work reaped, retention per plan, expiry, then due
    scheduled backups."""
    now = now or timezone.now()
    reaped = backups_reap_stuck(now=now)
    marked = 0
    for store in (
        Store.objects.filter(backups__kind=BackupKind.SCHEDULED).select_related("tenant__plan").distinct()
    ):
        plan = store.tenant.plan
        marked += backups_apply_retention(
            store_id=store.pk, keep_daily=plan.backup_keep_daily, keep_weekly=plan.backup_keep_weekly, now=now
        )
    return {
        "reaped": reaped,
        "marked": marked,
        "expired": backups_expire_due(now=now),
        "requested": backups_schedule_due(now=now),
    }


# --- Restore drills -----------------------------------------------------------------------------------


class DrillRecorder(RunRecorder):
    """The drill's record of every change-making call, as events on the backup (a drill is not a
    provisioning run of the store, so it has no run row): argv redacted, exit code, duration."""

    def __init__(self, backup_id: int) -> None:
        super().__init__(run_id=0)
        self.backup_id = backup_id

    def kube(
        self, argv: list[str], exit_code: int, started_at: datetime, duration: float, output: str
    ) -> None:
        backup_record_event(
            backup_id=self.backup_id,
            reason=redact(f"drill: {' '.join(argv)} -> {exit_code} in {duration:.1f} s {output}".strip()),
            actor_label="drill",
        )

    def helm(self, invocation: HelmInvocation) -> None:
        self.helm_seconds += invocation.duration_seconds
        backup_record_event(
            backup_id=self.backup_id,
            reason=redact(
                f"drill: helm {' '.join(invocation.argv[1:4])} -> {invocation.exit_code} "
                f"in {invocation.duration_seconds:.1f} s"
            ),
            actor_label="drill",
        )


def drill_namespace(backup: StoreBackup) -> str:
    # store-*: the platform's admission policy only lets the worker write namespaces of that form.
    return f"store-drill-{backup.pk}"


def _drill_spec(store: Store, backup: StoreBackup) -> ReleaseSpec:
    """The store's own release (same chart, values and version) in a throwaway namespace, reachable
    at a host of its own and routing none of the store's custom domains."""
    spec = release_spec_for(store)
    namespace = drill_namespace(backup)
    values = copy.deepcopy(dict(spec.values))
    values["store"] = {**values["store"], "host": f"drill-{backup.pk}.{settings.STORE_BASE_DOMAIN}"}
    values["domains"] = {**values.get("domains", {}), "hosts": []}
    labels = {k: v for k, v in spec.namespace_labels.items() if k != STORE_LABEL}
    labels[DRILL_LABEL] = str(backup.pk)
    return dataclasses.replace(spec, namespace=namespace, values=values, namespace_labels=labels)


def backup_drill(*, backup_id: int, access: ClusterAccess | None = None) -> StoreBackup:
    """Prove a completed backup restores: install the store's chart in a throwaway namespace, restore
    the backup into it, read the known row count back, tear it all down. `verified` only if every
    step passed; otherwise the backup stays completed with the drill's reason shown."""
    backup = StoreBackup.objects.select_related(
        "store__cluster", "store__tenant__plan", "store__engine_version"
    ).get(pk=backup_id)
    if backup.status != BackupStatus.COMPLETED:
        return backup
    store = backup.store
    access = access or ClusterAccess.for_cluster(store.cluster)
    credentials = bucket_credentials()
    started = time.monotonic()
    backup_record_event(backup_id=backup_id, reason="Restore drill started.", actor_label="drill")
    recorder = DrillRecorder(backup_id)
    spec = _drill_spec(store, backup)
    passed, result = False, ""
    try:
        installed = release_install(spec=spec, access=access, recorder=recorder, on_step=lambda _n, _r: None)
        if installed.outcome != Outcome.SUCCEEDED:
            result = f"The drill copy could not be installed: {installed.summary}"
        else:
            restored = _run_job(
                access,
                _job_spec(
                    store,
                    backup,
                    mode="restore",
                    job_name=f"drill-restore-{backup_id}",
                    namespace=spec.namespace,
                ),
                credentials,
            )
            if not restored.succeeded:
                result = _reason(restored).replace("backup Job", "drill's restore Job")
            else:
                checked = _run_job(
                    access,
                    _job_spec(
                        store,
                        backup,
                        mode="verify",
                        job_name=f"drill-check-{backup_id}",
                        namespace=spec.namespace,
                    ),
                    credentials,
                )
                passed = checked.succeeded
                result = (
                    "Restored into a throwaway copy; the order count matched."
                    if passed
                    else f"The restored copy failed its check: {checked.message or checked.reason}"
                )
    finally:
        torn = release_teardown(
            spec=TeardownSpec(
                namespace=spec.namespace,
                release=spec.release,
                helm_timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
                namespace_timeout_seconds=settings.TEARDOWN_NAMESPACE_TIMEOUT,
            ),
            access=access,
            recorder=recorder,
            on_step=lambda _n, _r: None,
        )
    seconds = time.monotonic() - started
    if torn.outcome != Outcome.SUCCEEDED:
        result = f"{result} (the drill namespace was not removed: {torn.summary})"
    fields = {"drill_passed": passed, "drill_result": result, "drill_seconds": seconds}
    if passed:
        backup_transition(
            backup_id=backup_id,
            to=BackupStatus.VERIFIED,
            reason=f"Restore drill passed in {seconds:.0f} s.",
            actor_label="drill",
            only_from=[BackupStatus.COMPLETED],
            fields=fields,
        )
    else:
        # Not a status change: the objects are there and restorable by hand; the page says "not verified".
        StoreBackup.objects.filter(pk=backup_id).update(**fields)
        backup_record_event(
            backup_id=backup_id, reason=f"Restore drill failed: {result}", actor_label="drill"
        )
    return StoreBackup.objects.get(pk=backup_id)
