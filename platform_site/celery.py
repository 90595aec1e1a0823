"""The platform's Celery application; configuration comes from Django settings (CELERY_*)."""

import os

from celery import Celery
from kombu.transport import TRANSPORT_ALIASES

# `filesystem://` means the platform's atomic variant (see platform_site/broker.py) in every process
# that imports this package: the web (through Django's settings module) and every worker.
TRANSPORT_ALIASES["filesystem"] = "platform_site.broker:Transport"

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "platform_site.settings")

app = Celery("platform_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
