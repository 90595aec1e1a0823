"""Probes for load balancers and Kubernetes: no auth, no details beyond ok/fail per dependency."""

from __future__ import annotations

from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_GET

from platform_site.celery import app as celery_app
from provisioning.selectors import cluster_status


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is up and serving."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True
    except Exception:  # any driver error means "not ready"; details stay out of the response
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=0, timeout=2)
        return True
    except Exception:  # kombu raises many transport-specific errors; all mean "not ready"
        return False


@require_GET
def readyz(request: HttpRequest) -> JsonResponse:
    """Ready when this process and its database answer (503 otherwise). The broker and the cluster are
    reported but not gated on: when either blips the dashboard must stay in rotation to show its
    banner, and a create is still stored and dispatched later."""
    checks = {
        "database": _database_ok(),
        "broker": _broker_ok(),
        "cluster": cluster_status().reachable,
    }
    ready = checks["database"]
    body = {
        "status": "ok" if ready else "fail",
        "checks": {k: "ok" if v else "fail" for k, v in checks.items()},
    }
    return JsonResponse(body, status=200 if ready else 503)
