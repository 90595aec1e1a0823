"""Attempt counters for what django-axes does not cover (it limits sign-ins): signup, password reset,
credential reveals and token creation. Kept in the Django cache (Redis when REDIS_URL is set, so every
web process shares one count).

A fixed window per key: the first attempt starts the window, and the counter expires with it. An
attempt is counted before it is judged (one atomic increment), so concurrent requests can never get
more attempts through than the limit.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.core.cache import cache
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


def _key(scope: str, value: str) -> str:
    # Hashing keeps emails out of cache keys and makes any input a valid memcached/Redis key.
    digest = hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]
    return f"ratelimit:{scope}:{digest}"


def _retry_after(key: str, window: int) -> int:
    started = cache.get(f"{key}:start")
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


def rate_limit_consume(
    *, scope: str, values: list[str | None], limit: int | None = None, window: int | None = None
) -> None:
    """Count one attempt for each of `values` (an IP, an email, a user id) in `scope`; raise
    TooManyAttempts if any of them is now over `limit` (AUTH_RATE_LIMIT_ATTEMPTS by default) within
    `window` seconds (AUTH_RATE_LIMIT_WINDOW_SECONDS by default)."""
    limit = settings.AUTH_RATE_LIMIT_ATTEMPTS if limit is None else limit
    window = settings.AUTH_RATE_LIMIT_WINDOW_SECONDS if window is None else window
    over: str | None = None
    with _skipped_while_cache_unreachable(scope):
        for value in filter(None, values):
            key = _key(scope, value)
            if _count(key, window) > limit and over is None:
                over = key
    if over is not None:
        wait = _retry_after(over, window)
        minutes = max(1, round(wait / 60))
        raise TooManyAttempts(
            f"Too many attempts. For your security, please wait about {minutes} "
            f"minute{'s' if minutes != 1 else ''} and try again.",
            retry_after=wait,
        )


def _count(key: str, window: int) -> int:
    # add() is atomic: only the attempt that opens the window sets the counter and its start.
    if cache.add(key, 1, window):
        cache.set(f"{key}:start", time.time(), window)
        return 1
    try:
        return int(cache.incr(key))
    except ValueError:
        # The window expired between add() and incr(); this attempt opens a new one.
        cache.set(key, 1, window)
        cache.set(f"{key}:start", time.time(), window)
        return 1
