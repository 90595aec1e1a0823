"""Why a run failed, in words a person can act on, and whether trying again later could help."""

from __future__ import annotations

from dataclasses import dataclass

from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from provisioning import cluster
from provisioning.cluster_access import ClusterNotConfigured
from provisioning.helm import ClusterUnreachable, HelmError, HelmTimeout, OperationInProgress
from provisioning.redaction import redact

# 403 counts as transient: a RoleBinding created a moment ago may not be in force yet.
TRANSIENT_API_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class Failure:
    """A failed attempt: the reason shown on the store, and whether an automatic retry may help."""

    reason: str
    transient: bool


def is_transient(exc: BaseException) -> bool:
    """True for failures that pass on their own: the cluster or the release is briefly unavailable."""
    if isinstance(exc, ClusterUnreachable | OperationInProgress | ClusterNotConfigured):
        return True
    if isinstance(exc, cluster.NamespaceTerminating):
        return True
    if isinstance(exc, HelmError):
        return False
    if isinstance(exc, ApiException):
        return (exc.status or 0) in TRANSIENT_API_STATUSES
    return isinstance(exc, HTTPError | OSError)


def plain_reason(exc: BaseException, diagnostics: str = "") -> str:
    """The exception in plain words, followed by what the cluster reported (events, pod states)."""
    if isinstance(exc, HelmTimeout):
        text = (
            "The store's workloads did not become ready in time, so the install was rolled back. "
            f"helm said: {exc.message}"
        )
    elif isinstance(exc, HelmError):
        text = f"{exc.reason[:1].upper()}{exc.reason[1:]}. helm said: {exc.message}"
    elif isinstance(exc, ClusterNotConfigured):
        text = f"No Kubernetes cluster is configured: {exc}."
    elif isinstance(exc, ApiException):
        text = f"The Kubernetes API refused a request ({exc.status} {exc.reason})."
    else:
        text = f"{exc}"
    return with_diagnostics(text, diagnostics)


def with_diagnostics(text: str, diagnostics: str) -> str:
    """Append the cluster's own report; a quota refusal gets a headline, since no retry can fix it."""
    if "exceeded quota" in diagnostics:
        # The ResourceQuota admission plugin refused the pods.
        text = (
            "The cluster refused the store's pods because they exceed the plan's resource quota; "
            f"give the plan more CPU or memory for this engine, then retry. {text}"
        )
    if diagnostics:
        text = f"{text}\nWhat the cluster reported:\n{diagnostics}"
    return redact(text)


def budget_exceeded(timeout_seconds: int, diagnostics: str) -> str:
    """The task's soft time limit stopped helm, often in the middle of its own rollback; whatever it left
    pending, the next install of the store settles first."""
    return with_diagnostics(
        f"The store's workloads did not become ready within the {timeout_seconds} s provisioning budget, "
        "so the install was stopped and is being undone.",
        diagnostics,
    )


def failure_of(exc: BaseException, diagnostics: str = "") -> Failure:
    """The Failure an exception amounts to."""
    return Failure(plain_reason(exc, diagnostics), is_transient(exc))
