"""What cert-manager says about the Certificates in one namespace (read-only; helm creates them).

Parsed into frozen `CertificateState`s so the store layer never walks raw condition lists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils.dateparse import parse_datetime
from kubernetes.client import ApiClient, ApiException, CustomObjectsApi

CERT_MANAGER_GROUP = "cert-manager.io"
CERT_MANAGER_VERSION = "v1"
# The store charts put the domain here, so a Certificate maps back to it whatever its name.
DOMAIN_ANNOTATION = "platform.example/domain"


class CertificatesNotServed(Exception):
    """The cluster serves no cert-manager.io/v1 Certificates: cert-manager's CRDs are not installed."""


@dataclass(frozen=True)
class CertificateState:
    """One Certificate as cert-manager last reported it."""

    name: str
    domain: str
    ready: bool
    # Ready's reason and message, or the Issuing condition's when issuance failed.
    reason: str
    message: str
    issuance_failed: bool
    not_after: datetime | None


def _condition(conditions: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    return next((c for c in conditions if c.get("type") == kind), {})


def certificate_state(obj: dict[str, Any]) -> CertificateState:
    """Parse one Certificate object (as the API returns it)."""
    metadata, spec, status = obj.get("metadata", {}), obj.get("spec", {}), obj.get("status") or {}
    conditions = status.get("conditions") or []
    ready = _condition(conditions, "Ready")
    issuing = _condition(conditions, "Issuing")
    # cert-manager reports a failed attempt as Issuing=False with reason Failed (and retries with
    # backoff by itself); Ready alone only says the Secret is not valid yet.
    failed = issuing.get("status") == "False" and issuing.get("reason") == "Failed"
    source = issuing if failed else ready
    domains = spec.get("dnsNames") or [""]
    not_after = parse_datetime(status["notAfter"]) if status.get("notAfter") else None
    return CertificateState(
        name=str(metadata.get("name", "")),
        domain=str((metadata.get("annotations") or {}).get(DOMAIN_ANNOTATION) or domains[0]),
        ready=ready.get("status") == "True",
        reason=str(source.get("reason", "")),
        message=str(source.get("message", "")),
        issuance_failed=failed,
        not_after=not_after,
    )


def read_certificates(api: ApiClient, *, namespace: str) -> list[CertificateState]:
    """Every Certificate in the namespace; CertificatesNotServed without cert-manager's CRDs."""
    try:
        listing = CustomObjectsApi(api).list_namespaced_custom_object(
            CERT_MANAGER_GROUP, CERT_MANAGER_VERSION, namespace, "certificates"
        )
    except ApiException as exc:
        # A list in a missing namespace is an empty list; 404 means the resource itself is not served.
        if exc.status == 404:
            raise CertificatesNotServed(
                "cert-manager.io/v1 Certificates are not served by this cluster"
            ) from exc
        raise
    items: list[dict[str, Any]] = listing.get("items", []) if isinstance(listing, dict) else []
    return [certificate_state(item) for item in items]
