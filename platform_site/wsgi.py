"""WSGI entry point for gunicorn.

Everything a first request would otherwise import is imported here, at boot: the URLconf and with it
every view, serializer and the Kubernetes client they reach, and Celery's broker transport. Without it the first request on each
gunicorn worker paid ~1.5 s of imports (bench/api_burst.py). With `--preload` (the chart's setting)
this runs once in the master and every forked worker starts warm. Nothing here opens a database or
broker connection, so none is shared across the fork.
"""

import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.urls import get_resolver  # noqa: E402

application = get_wsgi_application()

from platform_site.celery import app as celery_app  # noqa: E402

# A create's commit hook sends a task: the first send imported the broker transport and the result
# backend (~130 ms). Resolving them here opens no connection (kombu connects on first use).
with celery_app.connection_for_write():
    celery_app.backend  # noqa: B018
# Evaluated for their side effects: the imports of every URL module, then the reverse lookup table
# that each API response's links are built from.
get_resolver().url_patterns  # noqa: B018
get_resolver().reverse_dict  # noqa: B018
