"""Request rates per API token and per client IP, counted in the default cache (Redis when configured).

Rates are read on each request rather than at import (DRF's `THROTTLE_RATES` class attribute), so a
changed `REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]` takes effect without a restart of the class.
"""

from __future__ import annotations

import logging
from typing import Any

from knox.models import AuthToken
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from rest_framework.settings import api_settings
from rest_framework.throttling import SimpleRateThrottle

from platform_site.security import client_ip

logger = logging.getLogger(__name__)


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str | None:
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)

    def allow_request(self, request: Any, view: Any) -> bool:
        # Throttles share fairness, they guard nothing: while the cache's Redis is down a create must
        # still be stored (and dispatched when the broker returns), not turned into a 500.
        try:
            return super().allow_request(request, view)
        except (RedisConnectionError, RedisTimeoutError) as exc:
            logger.warning("%s throttle skipped, the cache is unreachable: %s", self.scope, exc)
            return True


class TokenRateThrottle(_SettingsRateThrottle):
    """One budget per token (per user for session auth), so one noisy integration cannot starve others."""

    scope = "token"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        if isinstance(request.auth, AuthToken):
            # token_key is the token's public prefix: never the secret, and unique per token.
            ident = f"token-{request.auth.token_key}"
        elif request.user and request.user.is_authenticated:
            ident = f"user-{request.user.pk}"
        else:
            return None  # anonymous requests are counted by IPRateThrottle alone
        return self.cache_format % {"scope": self.scope, "ident": ident}


class IPRateThrottle(_SettingsRateThrottle):
    """One budget per client IP, shared by all tokens and sessions behind it (a client cannot multiply
    its rate by minting tokens)."""

    scope = "ip"

    def get_cache_key(self, request: Any, view: Any) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def get_ident(self, request: Any) -> str:
        # The sign-in lockout's rule for the client address (TRUSTED_PROXY_COUNT hops), not DRF's
        # default, which trusts every X-Forwarded-For entry a client sends.
        return client_ip(request) or "unknown"
