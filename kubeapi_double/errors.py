"""API errors rendered as ``meta/v1.Status`` bodies, with the apiserver's wording."""

from __future__ import annotations

from typing import Any

from kubeapi_double.resources import ResourceType


class ApiError(Exception):
    """An error the double answers with a ``Status`` body and an HTTP code."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details

    def status(self) -> dict[str, Any]:
        """The JSON ``Status`` body for this error."""
        body: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            body["details"] = self.details
        return body


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    details: dict[str, Any] = {"name": name, "kind": rt.plural}
    if rt.group:
        details["group"] = rt.group
    return details


def not_found(rt: ResourceType, name: str) -> ApiError:
    """404 ``secrets "x" not found`` / ``deployments.apps "x" not found``."""
    return ApiError(404, "NotFound", f'{rt.qualified} "{name}" not found', _details(rt, name))


def namespace_not_found(namespace: str) -> ApiError:
    """404 for content created in a namespace that does not exist."""
    return ApiError(
        404, "NotFound", f'namespaces "{namespace}" not found', {"name": namespace, "kind": "namespaces"}
    )


def already_exists(rt: ResourceType, name: str) -> ApiError:
    """409 AlreadyExists on a duplicate create."""
    return ApiError(409, "AlreadyExists", f'{rt.qualified} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str | None = None) -> ApiError:
    """409 Conflict on a stale resourceVersion or a failed precondition."""
    why = why or "the object has been modified; please apply your changes to the latest version and try again"
    return ApiError(
        409,
        "Conflict",
        f'Operation cannot be fulfilled on {rt.qualified} "{name}": {why}',
        _details(rt, name),
    )


def terminating(rt: ResourceType, name: str, namespace: str) -> ApiError:
    """403 for new content in a namespace that is being deleted."""
    return ApiError(
        403,
        "Forbidden",
        f'{rt.qualified} "{name}" is forbidden: unable to create new content in namespace {namespace} '
        "because it is being terminated",
        _details(rt, name),
    )


def invalid(
    rt: ResourceType,
    name: str,
    field: str,
    detail: str,
    value: Any = None,
    *,
    cause: str = "FieldValueInvalid",
) -> ApiError:
    """422 Invalid with one field cause, worded like apimachinery's field errors."""
    if cause == "FieldValueRequired":
        cause_message = f"Required value: {detail}"
    elif cause == "FieldValueNotSupported":
        cause_message = detail
    else:
        shown = f'"{value}"' if isinstance(value, str) else repr(value)
        cause_message = f"Invalid value: {shown}: {detail}"
    kind = f"{rt.kind}.{rt.group}" if rt.group else rt.kind
    details = {
        "name": name,
        "kind": rt.kind,
        "causes": [{"reason": cause, "message": cause_message, "field": field}],
    }
    if rt.group:
        details["group"] = rt.group
    return ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {field}: {cause_message}', details)


def bad_request(message: str) -> ApiError:
    """400 BadRequest (malformed body, bad selector, namespace mismatch)."""
    return ApiError(400, "BadRequest", message)


def method_not_allowed(message: str) -> ApiError:
    """405 for verbs a path does not support."""
    return ApiError(405, "MethodNotAllowed", message)
