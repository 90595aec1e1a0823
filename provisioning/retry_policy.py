"""The one automatic-retry policy, applied to failed provision and teardown attempts alike, whether
the executor saw the failure or the reaper found the attempt interrupted."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

# Automatic new attempts after a transient failure (cluster unreachable, release busy, interrupted).
AUTO_RETRY_LIMIT = 3
MAX_BACKOFF_SECONDS = 60.0


@dataclass(frozen=True)
class RetryDecision:
    """Whether to queue another attempt on its own, and after how long."""

    retry: bool
    delay_seconds: float = 0.0


def automatic_retry(*, attempts_so_far: int, transient: bool) -> RetryDecision:
    """Retry transient failures up to AUTO_RETRY_LIMIT times, with exponential backoff and jitter so a
    flapping cluster is not hammered by every store at once. Permanent failures wait for a person."""
    if not transient or attempts_so_far > AUTO_RETRY_LIMIT:
        return RetryDecision(False)
    delay = min(MAX_BACKOFF_SECONDS, 2.0**attempts_so_far) + secrets.SystemRandom().uniform(0, 1)
    return RetryDecision(True, delay)
