"""The Celery tasks' own rules: how busy runs ask again."""

from django.conf import settings

from stores.tasks import BUSY_MAX_RETRIES, busy_backoff


def test_busy_retries_come_back_quickly_with_jitter():
    delays = [busy_backoff(retry) for retry in range(10)]
    assert all(0.25 <= delay <= 2.25 for delay in delays)
    assert busy_backoff(0) < 0.6 and min(busy_backoff(9) for _ in range(20)) >= 2.0
    # Long enough to outwait the longest provision a teardown may have to wait for.
    assert BUSY_MAX_RETRIES * 2.0 > settings.PROVISIONING_TASK_TIME_LIMIT
