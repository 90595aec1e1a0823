"""Attempt counters for signup and login, kept in the Django cache (Redis when REDIS_URL is set, so
every web process shares one count).

A fixed window per key: the first attempt starts the window, and the counter expires with it.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from platform_site.errors import ApplicationError

logger = logging.getLogger(__name__)


class TooManyAttempts(ApplicationError):
    code = "rate_limited"
    http_status = 429

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def client_ip(request: HttpRequest) -> str:
    """The client's address: REMOTE_ADDR, or the entry TRUSTED_PROXY_COUNT hops from the right of
    X-Forwarded-For (entries further left can be forged by the client)."""
    hops = settings.TRUSTED_PROXY_COUNT
    forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
    if hops > 0 and len(forwarded) >= hops:
        return forwarded[-hops]
    return request.META.get("REMOTE_ADDR", "") or "unknown"


def _key(scope: str, value: str) -> str:
    # Hashing keeps emails out of cache keys and makes any input a valid memcached/Redis key.
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}"


def _retry_after(key: str) -> int:
    started = cache.get(f"{key}:start")
    window = settings.AUTH_RATE_LIMIT_WINDOW_SECONDS
    if started is None:
        return window
    return max(1, int(started + window - time.time()))


@contextmanager
def _skipped_while_cache_unreachable(scope: str) -> Iterator[None]:
    # Counting attempts must not lock everyone out while the cache's Redis is down: the limit is
    # skipped (and logged) until it is back, like the API throttles.
    try:
        yield
    except (RedisConnectionError, RedisTimeoutError) as exc:
        logger.warning("%s rate limit skipped, the cache is unreachable: %s", scope, exc)


def rate_limit_check(*, scope: str, values: list[str]) -> None:
    """Raise TooManyAttempts if any of `values` (an IP, an email) used up its attempts in `scope`."""
    with _skipped_while_cache_unreachable(scope):
        _check(scope, values)


def _check(scope: str, values: list[str]) -> None:
    limit = settings.AUTH_RATE_LIMIT_ATTEMPTS
    for value in filter(None, values):
        key = _key(scope, value)
        if (cache.get(key) or 0) >= limit:
            wait = _retry_after(key)
            minutes = max(1, round(wait / 60))
            raise TooManyAttempts(
                f"Too many attempts. For your security, please wait about {minutes} "
                f"minute{'s' if minutes != 1 else ''} and try again.",
                retry_after=wait,
            )


def rate_limit_hit(*, scope: str, values: list[str]) -> None:
    """Count one attempt for each of `values` in `scope`."""
    with _skipped_while_cache_unreachable(scope):
        _hit(scope, values)


def _hit(scope: str, values: list[str]) -> None:
    window = settings.AUTH_RATE_LIMIT_WINDOW_SECONDS
    for value in filter(None, values):
        key = _key(scope, value)
        # add() is atomic: only the attempt that opens the window sets the counter and its start.
        if cache.add(key, 1, window):
            cache.set(f"{key}:start", time.time(), window)
            continue
        try:
            cache.incr(key)
        except ValueError:
            # The window expired between add() and incr(); this attempt opens a new one.
            cache.set(key, 1, window)
            cache.set(f"{key}:start", time.time(), window)
