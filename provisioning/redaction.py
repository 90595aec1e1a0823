"""One redaction function for everything that leaves a process: logs, stored argv and output.

Secrets the process has generated or read are registered here, and every occurrence is masked;
patterns catch the common shapes (password=..., bearer tokens) of values never registered.
"""

from __future__ import annotations

import logging
import re
import threading

REDACTED = "[REDACTED]"
MAX_STORED_OUTPUT = 16_000

_known_secrets: set[str] = set()
_lock = threading.Lock()

_PATTERNS = [
    re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)(\S+)"),
    re.compile(r"(?i)(postgres(?:ql)?://[^:/\s]+:)([^@\s]+)(@)"),
]


def register_secret(value: str) -> None:
    """Mask `value` wherever it appears from now on in this process (values under 6 chars are ignored)."""
    if value and len(value) >= 6:
        with _lock:
            _known_secrets.add(value)


def redact(text: str) -> str:
    """Return `text` with registered secrets and secret-looking assignments masked."""
    if not text:
        return text
    with _lock:
        secrets_now = sorted(_known_secrets, key=len, reverse=True)
    for secret in secrets_now:
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _PATTERNS[0].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
    text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{REDACTED}", text)
    text = _PATTERNS[2].sub(lambda m: f"{m.group(1)}{REDACTED}{m.group(3)}", text)
    return text


def clean_output(text: str, limit: int = MAX_STORED_OUTPUT) -> str:
    """Redact, strip NUL bytes (PostgreSQL text cannot hold them) and cap to `limit` characters."""
    text = redact(text.replace("\x00", ""))
    if len(text) > limit:
        half = limit // 2
        text = f"{text[:half]}\n… [{len(text) - limit} characters cut] …\n{text[-half:]}"
    return text


class RedactingFilter(logging.Filter):
    """A logging filter that redacts the final message (args included) of every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
