"""One JSON error shape for the whole API: `{"error": {"code", "message", "fields"}}`.

DRF's own handler runs first so its headers survive (`WWW-Authenticate` on 401, `Retry-After` on 429);
only the body is rewritten. Service errors (`ApplicationError`) carry their own code and status.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler

from platform_site.errors import ApplicationError


class NoTenant(ApplicationError):
    """The signed-in account is not a member of any organisation, so it owns nothing to act on."""

    code = "no_tenant"
    http_status = 403


# Plain sentences for DRF's stock errors, keyed by their default code.
_MESSAGES = {
    "not_authenticated": "Authentication required: send `Authorization: Token <token>`.",
    "authentication_failed": "The token is invalid, expired or revoked.",
    "not_found": "Not found.",
    "throttled": "Too many requests.",
    "invalid": "The request is not valid; see `fields`.",
}


def error_body(code: str, message: str, fields: dict[str, list[str]] | None = None) -> dict[str, Any]:
    """The one error body every API response uses."""
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def _flatten(detail: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error detail as `{"field": ["message", ...]}` (nested keys joined with dots)."""
    if isinstance(detail, dict):
        fields: dict[str, list[str]] = {}
        for key, value in detail.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            fields.update(_flatten(value, name))
        return fields
    if isinstance(detail, list) and any(isinstance(item, dict | list) for item in detail):
        fields = {}
        for index, item in enumerate(detail):
            fields.update(_flatten(item, f"{prefix}.{index}" if prefix else str(index)))
        return fields
    messages = [str(item) for item in detail] if isinstance(detail, list) else [str(detail)]
    return {prefix or "non_field_errors": messages}


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """Map service, validation, auth, not-found and throttling errors to the one error shape."""
    if isinstance(exc, ApplicationError):
        # A service's rate limit (stores.ratelimit) says when to come back, as DRF's throttles do.
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
        return Response(
            error_body(exc.code, exc.message, exc.fields), status=exc.http_status, headers=headers
        )
    if isinstance(exc, DjangoValidationError):
        # A model's full_clean() inside a service: report it like a serializer error.
        fields = exc.message_dict if hasattr(exc, "error_dict") else {"non_field_errors": exc.messages}
        return Response(
            error_body("invalid", _MESSAGES["invalid"], fields), status=status.HTTP_400_BAD_REQUEST
        )
    if isinstance(exc, Http404 | DjangoPermissionDenied):
        exc = exceptions.NotFound() if isinstance(exc, Http404) else exceptions.PermissionDenied()

    response = exception_handler(exc, context)
    if response is None or not isinstance(exc, exceptions.APIException):
        return response  # an unexpected error: Django's 500 handling, logged with the traceback

    if isinstance(exc, exceptions.ValidationError):
        response.data = error_body("invalid", _MESSAGES["invalid"], _flatten(exc.detail))
        return response
    code = exc.get_codes() if isinstance(exc.get_codes(), str) else exc.default_code
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        message = f"Too many requests; retry in {int(exc.wait) + 1} seconds."
    elif code == "authentication_failed" or str(exc.detail) == str(exc.default_detail):
        # knox says only "Invalid token."; the default details are terse. A specific detail
        # (e.g. "Invalid page.", a CSRF failure) is kept as it is.
        message = _MESSAGES.get(str(code), str(exc.detail))
    else:
        message = str(exc.detail)
    response.data = error_body(str(code), message)
    return response
