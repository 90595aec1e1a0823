"""One redaction function for everything that leaves a process: logs, stored argv and output.

Secrets the process has generated or read are registered here, and every occurrence is masked;
patterns catch the common shapes (password=..., bearer tokens) of values never registered.

The registered set is bounded (MAX_KNOWN_SECRETS, oldest forgotten first: a long-running worker that
provisioned 10k stores needs the recent ones) and searched with one Aho-Corasick automaton, rebuilt
only when the set has changed, so masking costs O(length of the text), not O(number of secrets):
issue 15 measured 175 ms per log line at ~10k stores when the set was re-sorted and scanned per call
(bench/redaction.py prints both).
"""

from __future__ import annotations

import logging
import re
import threading
from collections import OrderedDict

import ahocorasick

REDACTED = "[REDACTED]"
MAX_STORED_OUTPUT = 16_000
MAX_KNOWN_SECRETS = 10_000

_known_secrets: OrderedDict[str, None] = OrderedDict()
_automaton: ahocorasick.Automaton | None = None  # None: rebuild before the next search
_lock = threading.Lock()

_PATTERNS = [
    re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"),
    re.compile(r"(?i)(authorization:\s*bearer\s+)(\S+)"),
    re.compile(r"(?i)(postgres(?:ql)?://[^:/\s]+:)([^@\s]+)(@)"),
]


def register_secret(value: str) -> None:
    """Mask `value` wherever it appears from now on in this process (values under 6 chars are ignored).
    Past MAX_KNOWN_SECRETS the least recently registered one is forgotten."""
    global _automaton
    if not value or len(value) < 6:
        return
    with _lock:
        if value in _known_secrets:
            _known_secrets.move_to_end(value)
            return
        _known_secrets[value] = None
        while len(_known_secrets) > MAX_KNOWN_SECRETS:
            _known_secrets.popitem(last=False)
        _automaton = None


def _current_automaton() -> ahocorasick.Automaton | None:
    global _automaton
    with _lock:
        if _automaton is None and _known_secrets:
            automaton = ahocorasick.Automaton()
            for secret in _known_secrets:
                automaton.add_word(secret, len(secret))
            automaton.make_automaton()
            _automaton = automaton
        return _automaton


def _mask_known(text: str, automaton: ahocorasick.Automaton) -> str:
    # iter_long: leftmost-longest, non-overlapping matches (a secret containing another is masked whole).
    pieces, done = [], 0
    for end, length in automaton.iter_long(text):
        start = end - length + 1
        pieces += [text[done:start], REDACTED]
        done = end + 1
    if not pieces:
        return text
    pieces.append(text[done:])
    return "".join(pieces)


def redact(text: str) -> str:
    """Return `text` with registered secrets and secret-looking assignments masked."""
    if not text:
        return text
    automaton = _current_automaton()
    if automaton is not None:
        text = _mask_known(text, automaton)
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
