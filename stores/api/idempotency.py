"""`Idempotency-Key` for API commands: the same key with the same request replays the first response.

A key is claimed (a row with no response yet) before the command runs and completed with the response
afterwards, each in its own short transaction. The unique (tenant, key) constraint decides which of two
simultaneous requests runs the command; the other is told the first is still in progress. A command
that fails releases its key, so only a command that took effect is ever replayed. Keys live
`API_IDEMPOTENCY_TTL_HOURS`; expired ones are purged whenever a new key is claimed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from platform_site.errors import ApplicationError
from stores.models import IdempotencyKey, Tenant

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
KEY_MAX_LENGTH = 255
# A claim with no response after this long belongs to a request that died; its key may be claimed again.
ABANDONED_CLAIM_AFTER = timedelta(minutes=2)


class IdempotencyKeyInvalid(ApplicationError):
    code = "invalid_idempotency_key"
    http_status = 400


class IdempotencyKeyReused(ApplicationError):
    code = "idempotency_key_reused"
    http_status = 422


class IdempotencyKeyInProgress(ApplicationError):
    code = "idempotency_key_in_progress"
    http_status = 409


def request_fingerprint(*, method: str, path: str, body: Any) -> str:
    """sha256 over the method, the path and the body as canonical JSON (key order and spacing ignored)."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(f"{method.upper()}\n{path}\n{canonical}".encode()).hexdigest()


def idempotency_keys_purge(*, now: Any = None) -> int:
    """Delete expired keys and abandoned claims; returns how many rows went."""
    now = now or timezone.now()
    expired = IdempotencyKey.objects.filter(
        created_at__lt=now - timedelta(hours=settings.API_IDEMPOTENCY_TTL_HOURS)
    )
    count, _ = expired.delete()
    abandoned = IdempotencyKey.objects.filter(
        response_status__isnull=True, created_at__lt=now - ABANDONED_CLAIM_AFTER
    )
    abandoned_count, _ = abandoned.delete()
    return count + abandoned_count


def idempotency_key_claim(*, tenant: Tenant, key: str, fingerprint: str) -> tuple[IdempotencyKey, bool]:
    """Claim `key` for a request; returns (row, claimed). claimed=False: the row holds a replayable response.

    Raises IdempotencyKeyReused when the key came with a different request, IdempotencyKeyInProgress
    while the first request with this key has not finished.
    """
    if not key or len(key) > KEY_MAX_LENGTH or not key.isascii() or not key.isprintable():
        raise IdempotencyKeyInvalid(
            f"The {IDEMPOTENCY_HEADER} header must be 1 to {KEY_MAX_LENGTH} printable ASCII characters.",
            fields={IDEMPOTENCY_HEADER: ["Use a random value such as a UUID."]},
        )
    idempotency_keys_purge()
    try:
        with transaction.atomic():
            return IdempotencyKey.objects.create(tenant=tenant, key=key, fingerprint=fingerprint), True
    except IntegrityError:
        existing = IdempotencyKey.objects.filter(tenant=tenant, key=key).first()
        if existing is None:  # released by its first request between our insert and this read
            return idempotency_key_claim(tenant=tenant, key=key, fingerprint=fingerprint)
    if existing.fingerprint != fingerprint:
        raise IdempotencyKeyReused(
            f"This {IDEMPOTENCY_HEADER} was already used with a different request; use a new key "
            "for a new request.",
        )
    if existing.response_status is None:
        raise IdempotencyKeyInProgress(
            f"A request with this {IDEMPOTENCY_HEADER} is still being handled; retry in a moment."
        )
    return existing, False


def idempotency_key_complete(*, record: IdempotencyKey, status: int, body: Any) -> None:
    """Store the response the claimed request got, for replays."""
    IdempotencyKey.objects.filter(pk=record.pk).update(response_status=status, response_body=body)


def idempotency_key_release(*, record: IdempotencyKey) -> None:
    """Forget a claim whose request had no effect, so the key may be used again."""
    IdempotencyKey.objects.filter(pk=record.pk, response_status__isnull=True).delete()


def respond_idempotently(request: Request, *, tenant: Tenant, handler: Callable[[], Response]) -> Response:
    """Run `handler` once per Idempotency-Key (if the request has one) and replay its response after."""
    key = request.headers.get(IDEMPOTENCY_HEADER)
    if key is None:
        return handler()
    fingerprint = request_fingerprint(method=request.method or "", path=request.path, body=request.data)
    record, claimed = idempotency_key_claim(tenant=tenant, key=key, fingerprint=fingerprint)
    if not claimed:
        return Response(
            record.response_body, status=record.response_status, headers={REPLAYED_HEADER: "true"}
        )
    try:
        response = handler()
    except BaseException:
        idempotency_key_release(record=record)
        raise
    if 200 <= response.status_code < 300:
        # Stored as rendered JSON so a replay is byte-for-byte what the first caller parsed.
        body = json.loads(JSONRenderer().render(response.data) or b"null")
        idempotency_key_complete(record=record, status=response.status_code, body=body)
    else:
        idempotency_key_release(record=record)
    return response
