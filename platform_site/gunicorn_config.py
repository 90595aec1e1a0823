"""gunicorn settings the platform's web tier runs with (`gunicorn -c python:platform_site.gunicorn_config`);
the command line adds the bind address, workers and timeouts."""

from __future__ import annotations

from typing import Any


def post_fork(server: Any, worker: Any) -> None:
    # platform_site.wsgi, preloaded in the master, imported everything; each forked worker now opens
    # its own connections, so that its first request is served like the rest.
    from platform_site.warmup import connections_open

    connections_open()
