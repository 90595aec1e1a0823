"""Standard Webhooks signatures (https://www.standardwebhooks.com/, spec/standard-webhooks.md).

The signed content is `<webhook-id>.<webhook-timestamp>.<body>`; the signature is HMAC-SHA256 with the
base64-decoded part of the `whsec_...` secret, sent as `v1,<base64>`. Several signatures are separated
by spaces, which is how a rotated secret keeps working for a while.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Iterable

SECRET_PREFIX = "whsec_"  # noqa: S105 - the spec's fixed prefix, not a secret
# 24 random bytes, as the spec's reference libraries generate; between its 24 and 64 byte bounds.
SECRET_BYTES = 24


def webhook_secret_generate() -> str:
    """A new endpoint secret, `whsec_` and the base64 of random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def webhook_signature(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of `msg_id.timestamp.body` under `secret`."""
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def webhook_headers(*, secrets: Iterable[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers, one signature per secret (current first)."""
    signatures = " ".join(
        webhook_signature(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body) for secret in secrets
    )
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signatures,
        "Content-Type": "application/json",
    }
