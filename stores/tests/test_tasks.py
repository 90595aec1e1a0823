"""The Celery tasks' own rules: how often a waiting run asks again by itself."""

from django.conf import settings

from stores.tasks import BUSY_MAX_RETRIES, busy_backoff


def test_a_waiting_run_polls_seldom_with_jitter(settings):
    settings.PROVISIONING_WAITING_POLL_SECONDS = 60
    delays = [busy_backoff() for _ in range(200)]
    assert all(60 <= delay <= 75 for delay in delays)
    assert len({round(delay, 3) for delay in delays}) > 100  # spread out, not in step


def test_a_waiting_run_outwaits_the_longest_provision():
    # Even if every hand-off were lost, its polls last far longer than any run it waits for.
    assert (
        BUSY_MAX_RETRIES * settings.PROVISIONING_WAITING_POLL_SECONDS
        > 10 * settings.PROVISIONING_TASK_TIME_LIMIT
    )
