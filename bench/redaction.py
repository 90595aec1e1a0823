"""Log redaction at ~10k known secrets: the old per-call sort-and-scan against the Aho-Corasick
automaton of provisioning/redaction.py (issue 15). Needs no database: `python -m bench.redaction`,
or `python -m bench --only redaction`."""

from __future__ import annotations

import secrets
import time

from provisioning import redaction

LINE = (
    "2026-12-01 10:00:00 INFO provisioning.engine store acme-books: helm upgrade --install acme-books "
    "charts/woocommerce --namespace store-acme-books exited 0 after 41.2 s (release revision 3)"
)


def _before(text: str, known: set[str]) -> str:
    """The redaction of known secrets as it was before issue 15: sorted on every call, one scan each."""
    for secret in sorted(known, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, redaction.REDACTED)
    return text


def _per_call_ms(call, repeat: int) -> float:
    started = time.perf_counter()
    for _ in range(repeat):
        call()
    return round((time.perf_counter() - started) * 1000 / repeat, 3)


def run(secret_count: int = 10_000) -> dict[str, object]:
    values = [secrets.token_urlsafe(24) for _ in range(secret_count)]
    known = set(values)
    saved = (redaction._known_secrets.copy(), redaction._automaton)
    try:
        redaction._known_secrets.clear()
        for value in values:
            redaction.register_secret(value)
        started = time.perf_counter()
        redaction.redact("build")  # the one rebuild after the set changed
        rebuild_ms = round((time.perf_counter() - started) * 1000, 1)
        output = (LINE + f" {values[17]}\n") * 80  # a ~16k stored output with a secret in every line
        assert redaction.REDACTED in redaction.redact(output) and values[17] not in redaction.redact(output)
        return {
            "known secrets": secret_count,
            "before: ms per log line": _per_call_ms(lambda: _before(LINE, known), 20),
            "after: ms per log line": _per_call_ms(lambda: redaction.redact(LINE), 2000),
            "before: ms per 16k output": _per_call_ms(lambda: _before(output, known), 5),
            "after: ms per 16k output": _per_call_ms(lambda: redaction.redact(output), 200),
            "after: ms to rebuild the automaton": rebuild_ms,
        }
    finally:
        redaction._known_secrets.clear()
        redaction._known_secrets.update(saved[0])
        redaction._automaton = None


if __name__ == "__main__":
    for key, value in run().items():
        print(f"  {key:<38} {value}")
