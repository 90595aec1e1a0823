"""Parsing cert-manager's Certificate status into the states the domain service acts on."""

from __future__ import annotations

from datetime import UTC, datetime

from provisioning.certificates import certificate_state


def _cert(conditions, *, not_after=None, annotation="shop.example.com"):
    status = {"conditions": conditions}
    if not_after:
        status["notAfter"] = not_after
    return {
        "metadata": {"name": "domain-abc", "annotations": {"platform.example/domain": annotation}},
        "spec": {"dnsNames": ["shop.example.com"]},
        "status": status,
    }


def test_ready_certificate_has_its_expiry():
    state = certificate_state(
        _cert([{"type": "Ready", "status": "True", "reason": "Ready"}], not_after="2027-03-01T00:00:00Z")
    )
    assert state.ready and not state.issuance_failed
    assert state.not_after == datetime(2027, 3, 1, tzinfo=UTC)
    assert state.domain == "shop.example.com"


def test_failed_issuance_carries_cert_managers_words():
    state = certificate_state(
        _cert(
            [
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "DoesNotExist",
                    "message": "Issuing certificate",
                },
                {"type": "Issuing", "status": "False", "reason": "Failed", "message": "ACME order refused"},
            ]
        )
    )
    assert not state.ready and state.issuance_failed
    assert (state.reason, state.message) == ("Failed", "ACME order refused")


def test_a_certificate_in_progress_is_neither_ready_nor_failed():
    state = certificate_state(
        _cert([{"type": "Issuing", "status": "True", "reason": "DoesNotExist", "message": "Issuing"}])
    )
    assert not state.ready and not state.issuance_failed and state.not_after is None


def test_without_status_or_annotation_the_first_dns_name_is_the_domain():
    obj = _cert([], annotation="")
    del obj["status"]
    state = certificate_state(obj)
    assert state.domain == "shop.example.com" and not state.ready
