"""The one base class for errors that services raise and interfaces turn into 4xx or form errors."""

from __future__ import annotations


class ApplicationError(Exception):
    """A failure a person can act on: a stable code, a plain message and optional per-field messages."""

    code = "error"
    http_status = 400

    def __init__(self, message: str, *, fields: dict[str, list[str]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.fields = fields or {}
