"""API tokens for the partner API (django-rest-knox): stored as hashes, expiring, revocable.

The token string exists only in the return value of `api_token_create`; afterwards only its first
characters (`token_key`) identify it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db.models import QuerySet
from knox.models import AuthToken

from platform_site.errors import ApplicationError


class TokenNotFound(ApplicationError):
    code = "not_found"
    http_status = 404


def api_token_create(*, user: Any, ttl_days: int | None = None) -> tuple[AuthToken, str]:
    """Create a token for `user`; returns (row, token string). The string is never retrievable again."""
    days = settings.API_TOKEN_TTL_DAYS if ttl_days is None else ttl_days
    return AuthToken.objects.create(user=user, expiry=timedelta(days=days))


def api_token_list(*, user: Any) -> QuerySet[AuthToken]:
    """The user's tokens, newest first (expired ones too, until knox removes them)."""
    return AuthToken.objects.filter(user=user).order_by("-created")


def api_token_revoke(*, user: Any, token_key: str) -> None:
    """Delete the user's token whose key is `token_key`; another user's key is not found."""
    deleted, _ = AuthToken.objects.filter(user=user, token_key=token_key).delete()
    if not deleted:
        raise TokenNotFound("That token does not exist or was already revoked.")
