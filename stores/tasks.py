"""Celery tasks: thin interfaces that load by id and call one service.

They keep their registered names (`provisioning.tasks.*`) from before they moved here, so messages
already queued under those names still route; provisioning dispatches runs by that name.
"""

from __future__ import annotations

import secrets

from celery import shared_task
from celery.utils.log import get_task_logger
from django.conf import settings

from stores.backups import backup_execute_and_verify, backups_housekeeping, restore_execute
from stores.domains import domains_recheck_due
from stores.lifecycle import RunOutcome, store_run_execute
from stores.reconcile import fleet_reconcile
from stores.suspension import tenants_enforce_payment
from stores.upgrades import rollouts_advance_all
from stores.webhooks import DELIVER_TIME_LIMIT_SECONDS, webhook_deliveries_send_due, webhook_delivery_attempt

logger = get_task_logger(__name__)

# A run waiting for a free helm slot (or for its store's other run) is handed the slot by the run that
# frees it (provisioning_runs_hand_off); its own message asks again only every
# PROVISIONING_WAITING_POLL_SECONDS, in case a hand-off was lost, so a thousand waiting runs cost the
# worker little. Enough retries to outwait the longest provision many times over; after them the
# reconciler sends the run again.
BUSY_MAX_RETRIES = 2000
# With no cluster configured a run asks again this often; the reconciler re-sends it if the message
# outlives its retries.
NO_CLUSTER_RETRY_SECONDS = 30


def busy_backoff() -> float:
    """Seconds before a waiting run asks again: the safety poll, with jitter so that runs told busy
    together do not all ask again together."""
    return settings.PROVISIONING_WAITING_POLL_SECONDS * secrets.SystemRandom().uniform(1.0, 1.25)


@shared_task(bind=True, name="provisioning.tasks.execute_run", max_retries=BUSY_MAX_RETRIES)
def execute_run(self, run_id: int, dispatch: int | None = None) -> str:
    """Execute one provisioning or teardown run; a duplicate or superseded delivery is a no-op."""
    result = store_run_execute(run_id=run_id, dispatch=dispatch)
    if result.outcome is RunOutcome.BUSY:
        raise self.retry(countdown=busy_backoff())
    if result.outcome is RunOutcome.WAITING_FOR_CLUSTER:
        raise self.retry(countdown=NO_CLUSTER_RETRY_SECONDS)
    return result.outcome.value


@shared_task(name="provisioning.tasks.reconcile", ignore_result=True, soft_time_limit=300, time_limit=360)
def reconcile() -> None:
    """Periodic reaper and reconciler (Celery beat)."""
    report = fleet_reconcile()
    if report.errors:
        logger.info("reconcile skipped parts: %s", "; ".join(report.errors))


@shared_task(name="stores.tasks.domains_recheck", ignore_result=True)
def domains_recheck() -> int:
    """The periodic pass over custom domains (due ownership checks, routing verified ones)."""
    return domains_recheck_due()


@shared_task(
    name="stores.tasks.deliver_webhook",
    ignore_result=True,
    soft_time_limit=DELIVER_TIME_LIMIT_SECONDS - 10,
    time_limit=DELIVER_TIME_LIMIT_SECONDS,
)
def deliver_webhook(delivery_id: int) -> str:
    """One attempt of a webhook delivery; a duplicate or early message is a no-op (the claim decides)."""
    return webhook_delivery_attempt(delivery_id=delivery_id).outcome.value


@shared_task(name="stores.tasks.send_due_webhooks", ignore_result=True, soft_time_limit=60, time_limit=90)
def send_due_webhooks() -> None:
    """Periodic (Celery beat): dispatch webhook deliveries whose next attempt is due."""
    sent = webhook_deliveries_send_due()
    if sent:
        logger.info("dispatched %d due webhook deliveries", sent)


@shared_task(name="stores.tasks.advance_rollouts", ignore_result=True, soft_time_limit=60, time_limit=90)
def advance_rollouts() -> None:
    """Periodic (Celery beat): one step of every moving rollout (settle, stop, pause or next batch)."""
    moved = rollouts_advance_all()
    if moved:
        logger.info("advanced %d rollouts", moved)


@shared_task(name="stores.tasks.enforce_payment", ignore_result=True, soft_time_limit=120, time_limit=150)
def enforce_payment() -> None:
    """Periodic (Celery beat): suspend unpaid tenants' stores, resume those whose tenant has paid."""
    report = tenants_enforce_payment()
    if report.suspended or report.resumed or report.refused:
        logger.info("payment rule: %s", report)


# A backup Job may run BACKUP_JOB_TIMEOUT; the task's limits sit above it (the wait itself gives up at
# the timeout + 60 s and fails the backup with "did not finish in time").
_BACKUP_SOFT_LIMIT = settings.BACKUP_JOB_TIMEOUT + 120
_BACKUP_HARD_LIMIT = settings.BACKUP_JOB_TIMEOUT + 240


@shared_task(
    name="stores.tasks.run_backup",
    ignore_result=True,
    # The backup, then the drill: a helm install and two more Jobs.
    soft_time_limit=3 * _BACKUP_SOFT_LIMIT + settings.PROVISIONING_TIMEOUT,
    time_limit=3 * _BACKUP_HARD_LIMIT + settings.PROVISIONING_TIMEOUT,
)
def run_backup(backup_id: int) -> str:
    """Run one requested backup and its restore drill; a duplicate delivery finds it claimed."""
    return backup_execute_and_verify(backup_id=backup_id).status


@shared_task(
    name="stores.tasks.run_restore",
    ignore_result=True,
    # A safety backup and then the restore: two Jobs.
    soft_time_limit=2 * _BACKUP_SOFT_LIMIT,
    time_limit=2 * _BACKUP_HARD_LIMIT,
)
def run_restore(backup_id: int, store_id: int, safety_id: int) -> str:
    """The safety backup, then the restore Job; a duplicate delivery after the end does nothing."""
    return restore_execute(backup_id=backup_id, store_id=store_id, safety_id=safety_id)


@shared_task(
    name="stores.tasks.backups_housekeeping", ignore_result=True, soft_time_limit=300, time_limit=360
)
def housekeep_backups() -> None:
    """Periodic (Celery beat): retention, expiry (objects deleted from the bucket), due scheduled backups."""
    counts = backups_housekeeping()
    if any(counts.values()):
        logger.info("backups: %s", counts)
