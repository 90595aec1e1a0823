"""Redaction (issue 15, low item): the known-secret set is bounded and searched in one pass whose
cost does not grow with the set (figures: bench/redaction.py, not a timed test)."""

from __future__ import annotations

import pytest

from provisioning import redaction
from provisioning.redaction import REDACTED, redact, register_secret


@pytest.fixture(autouse=True)
def _empty_registry(monkeypatch):
    monkeypatch.setattr(redaction, "_known_secrets", type(redaction._known_secrets)())
    monkeypatch.setattr(redaction, "_automaton", None, raising=False)  # absent before issue 15


def test_every_occurrence_of_a_registered_secret_is_masked():
    register_secret("s3cret-value-1")
    register_secret("other-secret-2")
    text = "a s3cret-value-1 b s3cret-value-1s3cret-value-1 other-secret-2 ünïcode s3cret-value-1"
    assert redact(text) == f"a {REDACTED} b {REDACTED}{REDACTED} {REDACTED} ünïcode {REDACTED}"


def test_a_secret_containing_another_is_masked_whole():
    register_secret("abcdef")
    register_secret("xxabcdefyy")
    assert redact("1 xxabcdefyy 2 abcdef") == f"1 {REDACTED} 2 {REDACTED}"


def test_short_values_are_ignored_and_patterns_still_apply():
    register_secret("abc")
    assert redact("abc password=hunter22 Authorization: Bearer tok") == (
        f"abc password={REDACTED} Authorization: Bearer {REDACTED}"
    )


def test_the_known_set_is_bounded_oldest_first(monkeypatch):
    monkeypatch.setattr(redaction, "MAX_KNOWN_SECRETS", 100, raising=False)
    for n in range(150):
        register_secret(f"secret-{n:04d}")
    assert len(redaction._known_secrets) == 100
    assert redact("secret-0000 secret-0149") == f"secret-0000 {REDACTED}"
    # Registering a known value again keeps it: it becomes the most recent.
    register_secret("secret-0050")
    for n in range(150, 199):
        register_secret(f"secret-{n:04d}")
    assert redact("secret-0050 secret-0051") == f"{REDACTED} secret-0051"


def test_the_automaton_is_rebuilt_only_when_the_set_changes():
    for n in range(1000):
        register_secret(f"stored-password-{n:05d}")
    redact("warm up")
    built = redaction._automaton
    for _ in range(50):
        redact("a log line with stored-password-00007 in it")
    assert redaction._automaton is built
    register_secret("a-new-one-123")
    assert redact("a-new-one-123") == REDACTED and redaction._automaton is not built
