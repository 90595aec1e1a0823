"""Connections a web worker opens before its first request (gunicorn's post_fork hook, see
platform_site/gunicorn_config.py). Opened after the fork, so no socket is shared between processes;
without them the first request of every worker paid its database, cache and broker handshakes."""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)


def connections_open() -> None:
    """Open the database, cache and broker connections of this process. A service that is down is
    logged and left to the first request to reach (which reports it as it always does)."""
    from django.core.cache import caches
    from django.db import connections

    from platform_site.celery import app as celery_app

    def database() -> None:
        for connection in connections.all():
            connection.ensure_connection()

    def cache() -> None:
        for each in caches.all():
            each.get("warmup:connect")  # any key: the point is the connection it opens

    def broker() -> None:
        with celery_app.producer_or_acquire() as producer:
            producer.connection.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=5)

    for name, step in (("database", database), ("cache", cache), ("broker", broker)):
        try:
            step()
        except Exception as exc:  # noqa: BLE001 - an optimisation must never stop a worker from booting
            logger.warning("warm-up: the %s connection was not opened: %s", name, exc)
