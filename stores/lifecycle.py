"""A store's lifecycle: every decision that moves `Store.status` lives here, next to its one writer
(`stores.transitions.store_transition`).

People ask through `store_create`, `store_request_teardown` and `store_retry` (pages, API, admin).
The worker executes a run through `store_run_execute`: claim (admitting the run for this store),
build the frozen spec, hand it to provisioning's executor, and settle the store from the result.
Failures from the executor and from the reaper go through one policy, `store_attempt_failed`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from provisioning.choices import ClusterHealth, RunKind
from provisioning.cluster_access import ClusterAccess
from provisioning.credential_box import SealedCredentialsUnreadable
from provisioning.executor import ExecutionResult, Outcome, StepCallback, release_install, release_teardown
from provisioning.failure_reasons import Failure
from provisioning.models import Cluster, ProvisioningRun
from provisioning.recording import RunRecorder, with_database_retry
from provisioning.retry_policy import automatic_retry
from provisioning.services import (
    Admission,
    ClaimResult,
    ClaimStatus,
    provisioning_run_active_exists,
    provisioning_run_attempts_in_a_row,
    provisioning_run_claim,
    provisioning_run_create,
    provisioning_run_finish,
    provisioning_run_message_superseded,
    provisioning_runs_cancel_queued,
    worker_identity,
)
from stores.backup_transitions import backup_record_event
from stores.backups import (
    RestoreRefused,
    backup_final_before_teardown,
    backup_restorable_require,
    backup_restore_into_new_store_start,
    bucket_credentials,
)
from stores.choices import STORE_RUNNING_STATUSES, BackupStatus, Engine, StoreEventKind, StoreStatus
from stores.domain_transitions import domains_release_for_store
from stores.exceptions import (
    EngineUnavailable,
    InvalidStoreState,
    PlanLimitReached,
    StoreNameInvalid,
    StoreNameTaken,
)
from stores.launch_guards import email_verification_require, platform_capacity_require
from stores.models import Store, StoreBackup, Tenant
from stores.placement import store_place
from stores.release import PlanMissesEngine, release_spec_for, teardown_spec_for
from stores.selectors import tenant_live_store_count
from stores.transitions import store_record_created, store_record_event, store_transition
from stores.upgrades import engine_version_default
from stores.validators import host_for_store, namespace_for_store, release_name_for_store, validate_store_name

logger = logging.getLogger(__name__)

# The statuses in which a provision run installs the store's release: provisioning proper, and the
# suspend and resume runs (the same helm upgrade with other values).
INSTALLING_STATUSES = frozenset({StoreStatus.PROVISIONING, StoreStatus.SUSPENDING, StoreStatus.RESUMING})


# ---- what people ask for ---------------------------------------------------------------------------


def store_create_check(*, tenant: Tenant, name: Any, engine: Any) -> Store | None:
    """Validate a store request without writing: raises what `store_create` would raise, and returns
    the tenant's existing live store of that name (the idempotent case), else None.

    The name is validated here and nowhere else on a request; the live name check of the launch
    page is the only other caller.
    """
    try:
        validate_store_name(name)
    except ValidationError as exc:
        raise StoreNameInvalid(exc.messages[0], fields={"name": exc.messages}) from exc
    if engine not in Engine.values:
        choices = ", ".join(sorted(Engine.values))
        raise EngineUnavailable(
            f"Unknown engine {engine!r}; choose one of: {choices}.",
            fields={"engine": [f"Choose one of: {choices}."]},
        )
    existing = _live_store_named(name)
    if existing is not None:
        return _existing_or_conflict(existing, tenant=tenant, engine=engine)
    platform_capacity_require()
    limit = tenant.plan.max_stores
    if tenant_live_store_count(tenant=tenant) >= limit:
        raise PlanLimitReached(
            f"Your plan “{tenant.plan.name}” allows {limit} store{'s' if limit != 1 else ''}; "
            "delete one or upgrade your plan.",
        )
    return None


def store_create(*, tenant: Tenant, name: Any, engine: Any, actor: Any = None) -> tuple[Store, bool]:
    """Request a new store; returns (store, created).

    Idempotent: the same tenant asking again for a live store of the same name gets that store back
    with created=False. Another tenant's live name is a conflict; the plan's store limit is enforced.
    """
    email_verification_require(user=actor)
    with transaction.atomic():
        # The tenant row lock serialises this tenant's creates, so the plan limit cannot be overrun by
        # two requests that both counted before either inserted.
        locked_tenant = Tenant.objects.select_for_update().select_related("plan").get(pk=tenant.pk)
        existing = store_create_check(tenant=locked_tenant, name=name, engine=engine)
        if existing is not None:
            return existing, False
        cluster = store_place(tenant=locked_tenant, engine=engine)
        try:
            with transaction.atomic():
                store = Store.objects.create(
                    tenant=locked_tenant,
                    cluster=cluster,
                    name=name,
                    engine=engine,
                    namespace=namespace_for_store(name),
                    release_name=release_name_for_store(name),
                    host=host_for_store(name, settings.STORE_BASE_DOMAIN),
                    status_reason="Queued: waiting for a worker to start provisioning.",
                    created_by=actor if getattr(actor, "pk", None) else None,
                    engine_version=engine_version_default(engine=engine),
                )
        except IntegrityError:
            # Another tenant inserted the same live name between our check and our insert.
            existing = _live_store_named(name)
            if existing is None:
                raise
            return _existing_or_conflict(existing, tenant=locked_tenant, engine=engine), False
        store_record_created(store=store, reason="Store requested.", actor=store.created_by)
        provisioning_run_create(
            store_id=store.pk, kind=RunKind.PROVISION, cluster_id=cluster.pk, requested_by=actor
        )
    return store, True


def store_create_from_backup(*, backup: StoreBackup, name: Any, actor: Any = None) -> Store:
    """A new store of the backup's tenant and engine that starts with the backup's data: provisioned
    like any store, then `restoring` while the backup loads, then ready. The way back for a deleted
    store's final backup. Refused (nothing written) for a backup that cannot be loaded or a name
    already in use."""
    bucket_credentials()
    backup_restorable_require(backup)
    with transaction.atomic():
        store, created = store_create(tenant=backup.tenant, name=name, engine=backup.engine, actor=actor)
        if not created:
            raise RestoreRefused(
                f"A store named {store.name} already exists; choose a new name, or restore into that store "
                "from its own page."
            )
        Store.objects.filter(pk=store.pk).update(restore_from=backup)
        taken = f"{backup.created_at:%Y-%m-%d %H:%M} UTC"
        store_record_event(
            store_id=store.pk,
            kind=StoreEventKind.STEP,
            step="restore-pending",
            reason=f"Starts with the backup of {backup.store.name} taken {taken}, loaded once it is provisioned.",
            actor=store.created_by,
        )
        backup_record_event(
            backup_id=backup.pk,
            reason=f"A new store {store.name} was created from this backup; it loads once provisioned.",
            actor=actor,
        )
    return store


def _live_store_named(name: str) -> Store | None:
    return Store.objects.exclude(status=StoreStatus.DELETED).filter(name=name).first()


def _existing_or_conflict(existing: Store, *, tenant: Tenant, engine: str) -> Store:
    if existing.tenant_id != tenant.pk:
        raise StoreNameTaken(
            f"The name “{existing.name}” is already taken. Choose another name.",
            fields={"name": [f"The name “{existing.name}” is already taken."]},
        )
    if existing.engine != engine:
        raise StoreNameTaken(
            f"You already have a {existing.get_engine_display()} store called “{existing.name}”.",
            fields={"name": [f"You already have a store called “{existing.name}”."]},
        )
    return existing


def store_request_teardown(*, store: Store, actor: Any = None) -> Store:
    """Ask for a store's teardown. Repeating it is harmless; a queued provision is cancelled, and a
    running one finishes first (the teardown run waits for it)."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status in {StoreStatus.DELETING, StoreStatus.DELETED}:
            return locked
        if not store_transition(
            store_id=locked.pk, to=StoreStatus.DELETING, reason="Teardown requested.", actor=actor
        ):
            raise InvalidStoreState(f"The store cannot be deleted while it is {locked.status}.")
        provisioning_runs_cancel_queued(
            store_id=locked.pk, kind=RunKind.PROVISION, reason="Cancelled: teardown was requested."
        )
        # The domains go with the namespace (Ingress, Certificates); their names are free for others.
        domains_release_for_store(store_id=locked.pk, reason="The store is being torn down.")
        if not provisioning_run_active_exists(store_id=locked.pk, kind=RunKind.TEARDOWN):
            provisioning_run_create(
                store_id=locked.pk, kind=RunKind.TEARDOWN, cluster_id=locked.cluster_id, requested_by=actor
            )
    locked.refresh_from_db()
    return locked


def store_retry(*, store: Store, actor: Any = None) -> ProvisioningRun:
    """Retry the operation that failed: provisioning again, or a teardown that did not finish."""
    with transaction.atomic():
        locked = Store.objects.select_for_update().get(pk=store.pk)
        if locked.status != StoreStatus.FAILED:
            raise InvalidStoreState(f"Only a failed store can be retried; this one is {locked.status}.")
        last_run = ProvisioningRun.objects.filter(store=locked).order_by("-created_at", "-id").first()
        kind = (
            RunKind.TEARDOWN
            if last_run is not None and last_run.kind == RunKind.TEARDOWN
            else RunKind.PROVISION
        )
        target, reason = (
            (StoreStatus.DELETING, "Teardown retried.")
            if kind == RunKind.TEARDOWN
            else (StoreStatus.REQUESTED, "Provisioning retried.")
        )
        store_transition(store_id=locked.pk, to=target, reason=reason, actor=actor)
        return provisioning_run_create(
            store_id=locked.pk, kind=kind, cluster_id=locked.cluster_id, requested_by=actor
        )


# ---- what the worker does --------------------------------------------------------------------------


class RunOutcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    SKIPPED = "skipped"  # already handled, or refused because the store moved on
    BUSY = "busy"  # another run of the store or the concurrency cap: the task asks again shortly
    WAITING_FOR_CLUSTER = "waiting-for-cluster"  # nothing to reach: not an attempt, no retry used


@dataclass(frozen=True)
class RunResult:
    """What one task delivery did."""

    outcome: RunOutcome
    detail: str = ""


def store_run_execute(
    *, run_id: int, access: ClusterAccess | None = None, dispatch: int | None = None
) -> RunResult:
    """Claim and execute one run. Safe to call twice for the same run: the second call is a no-op, and
    so is a message (`dispatch`, its number) that a later dispatch of the run superseded."""
    if provisioning_run_message_superseded(run_id=run_id, dispatch=dispatch):
        return RunResult(RunOutcome.SKIPPED, "ended, or sent again since this message")
    cluster = Cluster.objects.filter(runs__pk=run_id).first()
    if access is None:
        if cluster is not None and cluster.health == ClusterHealth.UNREACHABLE:
            # Its cluster does not answer: the run waits, spending no attempt and no helm slot, so
            # work on the other clusters goes on.
            return RunResult(RunOutcome.WAITING_FOR_CLUSTER, f"cluster {cluster.name} is unreachable")
        try:
            access = ClusterAccess.for_cluster(cluster) if cluster is not None else ClusterAccess()
        except SealedCredentialsUnreadable as exc:
            return _fail_unreachable_credentials(run_id, exc.message)
    if not access.configured():
        # No kubeconfig and no in-cluster account: the store stays requested, with no attempt spent
        # and no event written, until a cluster is configured.
        return RunResult(RunOutcome.WAITING_FOR_CLUSTER, "no Kubernetes cluster is configured")
    claim = store_run_claim(run_id=run_id, worker=worker_identity())
    if claim.status is ClaimStatus.BUSY:
        return RunResult(RunOutcome.BUSY, claim.reason)
    if claim.status is not ClaimStatus.CLAIMED or claim.run is None:
        logger.info("run %s not started: %s", run_id, claim.reason)
        return RunResult(RunOutcome.SKIPPED, claim.reason)
    run = claim.run
    store = Store.objects.select_related("tenant__plan", "created_by").get(pk=run.store_id)
    recorder = RunRecorder(run.pk)
    if run.kind == RunKind.PROVISION:
        try:
            spec = release_spec_for(store)
        except PlanMissesEngine as exc:
            return store_attempt_failed(
                run=run, failure=Failure(exc.message, transient=False), recorder=recorder
            )
        result = release_install(spec=spec, access=access, recorder=recorder, on_step=_timeline(store.pk))
        # The same install serves provisioning, suspending and resuming (only the values differ); the
        # status the claim found says which, and so where a success lands.
        from_status = StoreStatus(store.status)
        return _settle(
            run, result, recorder, succeeded_status=_installed_status(store), from_status=from_status
        )
    # Before anything is removed: the deleted store's data stays restorable for the grace period.
    final = backup_final_before_teardown(store_id=store.pk, access=access)
    if final is not None:
        kept = final.status == BackupStatus.COMPLETED and final.expires_at is not None
        _timeline(store.pk)(
            "final-backup",
            f"Final backup kept until {final.expires_at:%Y-%m-%d}."
            if kept
            else f"Final backup failed: {final.failure_reason}",
        )
    result = release_teardown(
        spec=teardown_spec_for(store), access=access, recorder=recorder, on_step=_timeline(store.pk)
    )
    return _settle(
        run, result, recorder, succeeded_status=StoreStatus.DELETED, from_status=StoreStatus.DELETING
    )


def _installed_status(store: Store) -> StoreStatus:
    """Where a store lands once its release is installed: suspended if it is to stay suspended (its
    values said `suspended: true`), restoring if it was created from a backup that is still to load,
    else ready."""
    if store.status == StoreStatus.RESUMING:
        return StoreStatus.READY
    if store.status == StoreStatus.PROVISIONING and store.restore_from_id is not None:
        return StoreStatus.RESTORING
    if store.status == StoreStatus.SUSPENDING or store.suspension_source:
        return StoreStatus.SUSPENDED
    return StoreStatus.READY


def _fail_unreachable_credentials(run_id: int, reason: str) -> RunResult:
    # Staff must paste the kubeconfig again: a permanent failure of this attempt, with that reason.
    claim = store_run_claim(run_id=run_id, worker=worker_identity())
    if claim.status is not ClaimStatus.CLAIMED or claim.run is None:
        return RunResult(
            RunOutcome.BUSY if claim.status is ClaimStatus.BUSY else RunOutcome.SKIPPED, claim.reason
        )
    return store_attempt_failed(
        run=claim.run, failure=Failure(reason, transient=False), recorder=RunRecorder(claim.run.pk)
    )


def store_run_claim(*, run_id: int, worker: str) -> ClaimResult:
    """Claim a run for `worker`; a provision run moves its store from requested to provisioning in the
    same short transaction, and a run whose store moved on (deleted meanwhile) is cancelled."""
    return provisioning_run_claim(run_id=run_id, worker=worker, admit=lambda run: _admit(run, worker))


def _admit(run: ProvisioningRun, worker: str) -> Admission:
    """At claim time, with the store row locked: may this run start for this store now?"""
    store = Store.objects.select_for_update().get(pk=run.store_id)
    if run.kind == RunKind.PROVISION:
        if store.status == StoreStatus.REQUESTED:
            store_transition(
                store_id=store.pk,
                to=StoreStatus.PROVISIONING,
                reason=f"Provisioning attempt {run.attempt} started.",
                actor_label=worker,
                only_from=[StoreStatus.REQUESTED],
            )
            return Admission(True)
        # A suspend or resume run: the service already moved the store; the claim only admits it.
        if store.status in INSTALLING_STATUSES:
            return Admission(True)
    elif store.status == StoreStatus.DELETING:
        return Admission(True)
    return Admission(False, f"the store is {store.status}.")


def _timeline(store_id: int) -> StepCallback:
    """Provisioning milestones as step events on the store's timeline."""

    def step(name: str, reason: str) -> None:
        with_database_retry(
            lambda: store_record_event(
                store_id=store_id, kind=StoreEventKind.STEP, step=name, reason=reason, actor_label="worker"
            )
        )

    return step


def _settle(
    run: ProvisioningRun,
    result: ExecutionResult,
    recorder: RunRecorder,
    *,
    succeeded_status: StoreStatus,
    from_status: StoreStatus,
) -> RunResult:
    if result.outcome is not Outcome.SUCCEEDED or result.failure is not None:
        assert result.failure is not None
        return store_attempt_failed(run=run, failure=result.failure, recorder=recorder)

    loads_backup = succeeded_status == StoreStatus.RESTORING
    reason = f"{result.summary} Loading the backup it was created from." if loads_backup else result.summary

    def finish() -> bool:
        with transaction.atomic():
            moved = store_transition(
                store_id=run.store_id,
                to=succeeded_status,
                reason=reason,
                actor_label="worker",
                only_from=[from_status],
            )
            provisioning_run_finish(run_id=run.pk, succeeded=True, helm_seconds=recorder.helm_seconds)
            if moved and loads_backup:
                backup_restore_into_new_store_start(store_id=run.store_id)
        return moved

    if not with_database_retry(finish):
        logger.info("store %s moved on while its run %s ran", run.store_id, run.pk)
    detail = f"revision {result.revision}" if result.revision is not None else result.summary
    return RunResult(RunOutcome.SUCCEEDED, detail)


def store_attempt_failed(
    *,
    run: ProvisioningRun,
    failure: Failure,
    recorder: RunRecorder | None = None,
    actor_label: str = "worker",
) -> RunResult:
    """The one fail-and-retry policy: close the run (unless the reaper already did), move the store to
    failed with the reason and, for a transient failure within AUTO_RETRY_LIMIT, queue a new attempt
    with backoff. The same for provisioning and teardown, from the executor and from the reaper."""
    if recorder is not None:
        with_database_retry(
            lambda: provisioning_run_finish(
                run_id=run.pk, succeeded=False, error=failure.reason, helm_seconds=recorder.helm_seconds
            )
        )
    provision = run.kind == RunKind.PROVISION
    attempts = provisioning_run_attempts_in_a_row(store_id=run.store_id, kind=RunKind(run.kind))
    decision = automatic_retry(attempts_so_far=attempts, transient=failure.transient)
    if decision.retry:
        suffix = f" Retrying automatically (attempt {attempts + 1})."
    elif failure.transient:
        suffix = " Retry when the cluster is healthy."
    else:
        suffix = ""

    def move() -> None:
        with transaction.atomic():
            moved = store_transition(
                store_id=run.store_id,
                to=StoreStatus.FAILED,
                reason=f"{failure.reason}{suffix}",
                actor_label=actor_label,
                only_from=INSTALLING_STATUSES if provision else [StoreStatus.DELETING],
            )
            if (
                moved
                and decision.retry
                and store_transition(
                    store_id=run.store_id,
                    to=StoreStatus.REQUESTED if provision else StoreStatus.DELETING,
                    reason="Automatic retry.",
                    actor_label=actor_label,
                )
            ):
                # A new run row per attempt: history is never reset.
                provisioning_run_create(
                    store_id=run.store_id,
                    kind=RunKind(run.kind),
                    cluster_id=run.cluster_id,
                    countdown=decision.delay_seconds,
                )

    with_database_retry(move)
    logger.warning("%s of store %s failed: %s", run.get_kind_display(), run.store_id, failure.reason)
    return RunResult(RunOutcome.FAILED, failure.reason)


def store_run_interrupted(*, run: ProvisioningRun) -> None:
    """The reaper failed this run (deadline passed or worker gone): an interruption is transient."""
    store_attempt_failed(run=run, failure=Failure(run.error, transient=True), actor_label="reaper")


def store_drifted(*, store_id: int, missing: str, actor_label: str = "reconciler") -> bool:
    """A running store whose `missing` (namespace, helm release) vanished is provisioned again."""
    with transaction.atomic():
        if store_transition(
            store_id=store_id,
            to=StoreStatus.REQUESTED,
            reason=f"The store's {missing} vanished from the cluster; re-provisioning.",
            actor_label=actor_label,
            only_from=STORE_RUNNING_STATUSES,
        ):
            cluster_id = Store.objects.filter(pk=store_id).values_list("cluster_id", flat=True).first()
            provisioning_run_create(store_id=store_id, kind=RunKind.PROVISION, cluster_id=cluster_id)
            return True
    return False


def store_degraded(*, store_id: int, reason: str) -> bool:
    """A ready store one of whose workloads stopped being ready: degraded, with the cluster's words.
    Kubernetes restarts what it can; the store is not re-provisioned for this."""
    return store_transition(
        store_id=store_id,
        to=StoreStatus.DEGRADED,
        reason=f"Not all of the store's workloads are ready: {reason}",
        actor_label="watcher",
        only_from=[StoreStatus.READY],
    )


def store_recovered(*, store_id: int) -> bool:
    """A degraded store whose workloads are all ready again."""
    return store_transition(
        store_id=store_id,
        to=StoreStatus.READY,
        reason="All of the store's workloads are ready again.",
        actor_label="watcher",
        only_from=[StoreStatus.DEGRADED],
    )


def store_reconfigure(*, store_id: int, reason: str, actor: Any = None, actor_label: str = "") -> bool:
    """Install a running store's release again because its values changed (a custom domain was
    verified or removed): the same provision path, so the upgrade is recorded, retried and reaped
    like any other. False when the store is not running; the caller asks again once it is."""
    with transaction.atomic():
        if provisioning_run_active_exists(store_id=store_id, kind=RunKind.PROVISION):
            return False
        if store_transition(
            store_id=store_id,
            to=StoreStatus.REQUESTED,
            reason=reason,
            actor=actor,
            actor_label=actor_label,
            only_from=STORE_RUNNING_STATUSES,
        ):
            cluster_id = Store.objects.filter(pk=store_id).values_list("cluster_id", flat=True).first()
            provisioning_run_create(
                store_id=store_id, kind=RunKind.PROVISION, cluster_id=cluster_id, requested_by=actor
            )
            return True
    return False
