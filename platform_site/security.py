"""Request-level security shared by every face of the platform: who the client is behind the ingress,
the Content-Security-Policy and the session idle timeout.

One rule for the client's address serves the sign-in lockout (django-axes), the page rate limits and
the API's per-IP throttle, so none of them can be fooled by a header the others ignore.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse


def _valid_ip(value: str) -> str | None:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError:
        return None


def client_ip(request: HttpRequest) -> str | None:
    """The client's address: REMOTE_ADDR, or the entry TRUSTED_PROXY_COUNT hops from the right of
    X-Forwarded-For (entries further left can be forged by the client). None when neither is an IP
    address (a request built in code, not received from a socket)."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if hops > 0 and len(forwarded) >= hops:
        chosen = _valid_ip(forwarded[-hops])
        if chosen is not None:
            return chosen
    return _valid_ip(request.META.get("REMOTE_ADDR", "") or "")


class ContentSecurityPolicyMiddleware:
    """Sends CONTENT_SECURITY_POLICY on every response (CONTENT_SECURITY_POLICY_API_DOCS on the Swagger
    UI page, whose template carries an inline <style>). The merchant pages and the admin need no
    inline script or style: htmx is configured without its injected indicator styles, and status
    colours live in static/css/status-colours.css."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if "Content-Security-Policy" not in response:
            docs = request.path.startswith(settings.CONTENT_SECURITY_POLICY_API_DOCS_PATH)
            response["Content-Security-Policy"] = (
                settings.CONTENT_SECURITY_POLICY_API_DOCS if docs else settings.CONTENT_SECURITY_POLICY
            )
        return response


SESSION_LAST_SEEN_KEY = "_platform_last_seen"
# The last-seen time is written at most this often, so polled fragments do not write the session on
# every request; an idle timeout is therefore exact to within this many seconds.
SESSION_LAST_SEEN_RESOLUTION_SECONDS = 60


class SessionIdleTimeoutMiddleware:
    """Signs out a session idle for longer than SESSION_IDLE_TIMEOUT_MERCHANT (staff:
    SESSION_IDLE_TIMEOUT_STAFF, shorter: the admin can tear down every store). Activity slides the
    session's expiry. Must come after AuthenticationMiddleware."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        try:
            self._enforce(request)
        except (OperationalError, InterfaceError):
            # The database is down: this middleware is the first to read the session. The view's own
            # query then turns into the 503 page (DatabaseUnavailableMiddleware), not a 500 here.
            pass
        return self.get_response(request)

    def _enforce(self, request: HttpRequest) -> None:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            timeout = (
                settings.SESSION_IDLE_TIMEOUT_STAFF
                if user.is_staff
                else settings.SESSION_IDLE_TIMEOUT_MERCHANT
            )
            now = int(time.time())
            last_seen = request.session.get(SESSION_LAST_SEEN_KEY)
            if last_seen is not None and now - last_seen > timeout:
                logout(request)  # the request goes on as anonymous: pages send it to the login
            elif last_seen is None or now - last_seen >= SESSION_LAST_SEEN_RESOLUTION_SECONDS:
                request.session[SESSION_LAST_SEEN_KEY] = now
                request.session.set_expiry(timeout)
