"""Request-level security shared by every face of the platform: who the client is behind the ingress.

One rule for the client's address serves the sign-in lockout (django-axes), the page rate limits and
the API's per-IP throttle, so none of them can be fooled by a header the others ignore.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.http import HttpRequest


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
