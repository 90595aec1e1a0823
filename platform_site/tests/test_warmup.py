"""The web worker's post_fork warm-up: it opens this process's database connection, and a service
that does not answer is logged, never raised (the worker must boot and report the outage itself)."""

from __future__ import annotations

import logging

import pytest
from django.db import connection

from platform_site import gunicorn_config
from platform_site.celery import app as celery_app
from platform_site.warmup import connections_open


@pytest.mark.django_db(transaction=True)
def test_the_hook_opens_the_database_connection_before_any_request():
    connection.close()
    assert connection.connection is None
    gunicorn_config.post_fork(server=None, worker=None)
    assert connection.connection is not None


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_does_not_answer_is_logged_and_the_rest_still_opens(monkeypatch, caplog):
    def refuse(*args, **kwargs):
        raise ConnectionRefusedError("connection refused")

    monkeypatch.setattr(celery_app, "producer_or_acquire", refuse)
    connection.close()
    with caplog.at_level(logging.WARNING, logger="platform_site.warmup"):
        connections_open()
    assert "warm-up: the broker connection was not opened: connection refused" in caplog.text
    assert connection.connection is not None
