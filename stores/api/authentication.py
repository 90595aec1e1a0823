"""Token authentication for the partner API: knox's, plus the tenant and role the token is bound to.

A token whose scope is missing, whose password fingerprint is stale (the password changed) or whose
user left its tenant is refused with 401, as a revoked token is; the API never falls back to "the
user's first membership" for a token.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.contrib.knox_auth_token import KnoxTokenScheme
from knox.auth import TokenAuthentication
from rest_framework.exceptions import AuthenticationFailed

from stores.tokens import api_token_access


class ScopedTokenAuthentication(TokenAuthentication):
    """knox's `Token` scheme; `request.auth.access` is the TenantAccess the token acts with."""

    def authenticate_credentials(self, token: bytes) -> tuple[Any, Any]:
        user, auth_token = super().authenticate_credentials(token)
        access = api_token_access(token=auth_token)
        if access is None:
            raise AuthenticationFailed("The token is invalid, expired or revoked.")
        auth_token.access = access
        return user, auth_token


class ScopedTokenScheme(KnoxTokenScheme):
    """The OpenAPI security scheme: the same `Token` header as knox's."""

    target_class = "stores.api.authentication.ScopedTokenAuthentication"
