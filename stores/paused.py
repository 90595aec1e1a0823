"""The "this store is paused" page, served by the platform's web pods to a suspended store's visitors.

A suspended store's Ingress sends its hosts to the platform's web Service (charts/*/templates/
paused.yaml), so the request arrives here with the store's Host. This middleware runs first: before
SecurityMiddleware and CommonMiddleware call `get_host()`, which would refuse a store's host as not
in ALLOWED_HOSTS. The Host is used only to look the store up, never to build a URL or a redirect.
"""

from __future__ import annotations

from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.template.loader import render_to_string

from stores.selectors import store_paused_for_host

# Paused is temporary: crawlers and caches are told to come back rather than drop the pages.
RETRY_AFTER_SECONDS = 3600


def _request_host(request: HttpRequest) -> str:
    raw = request.META.get("HTTP_HOST", "")
    host = raw.rsplit(":", 1)[0] if raw.count(":") == 1 else raw
    return host.strip().rstrip(".").lower()


class PausedStoreMiddleware:
    """Answer requests for a paused store's hosts with the paused page (503); pass the rest on."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        host = _request_host(request)
        # The dashboard's own hosts never belong to a store: no query for the platform's traffic.
        if not host or host == settings.DASHBOARD_HOST or host in settings.ALLOWED_HOSTS:
            return self.get_response(request)
        try:
            store = store_paused_for_host(host=host)
        except (OperationalError, InterfaceError):
            # The next middleware answers a lost database with its own clear 503.
            return self.get_response(request)
        if store is None:
            return self.get_response(request)
        body = render_to_string("stores/store_paused.html", {"title": store.name.replace("-", " ").title()})
        response = HttpResponse(body, status=503)
        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
        response["Cache-Control"] = "no-store"
        # The page has no script, style or image: nothing may load.
        response["Content-Security-Policy"] = "default-src 'none'"
        return response
