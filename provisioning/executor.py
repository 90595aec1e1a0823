"""Executes a frozen spec against the cluster and returns a typed result; never touches a store row.

Nothing is held across a helm run: the caller claimed the run in a short transaction before calling,
the Kubernetes calls and helm run with no transaction and no row lock, and the caller finishes the run
from the returned ExecutionResult.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from kubernetes.client import ApiClient, ApiException
from urllib3.exceptions import HTTPError

from provisioning import cluster
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.failure_reasons import Failure, budget_exceeded, failure_of
from provisioning.helm import (
    HelmClient,
    HelmCommandFailed,
    HelmError,
    HelmRelease,
    HelmTimeout,
    OperationInProgress,
)
from provisioning.pending_release import pending_release_of, pending_release_settle
from provisioning.recording import RunRecorder
from provisioning.specs import ReleaseSpec, TeardownSpec

logger = logging.getLogger(__name__)

# (step, reason): a milestone for the caller's timeline, e.g. ("namespace", "Namespace x is ready.").
StepCallback = Callable[[str, str], None]


class Outcome(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"


@dataclass(frozen=True)
class ExecutionResult:
    """What one execution did: succeeded (with the release revision) or failed (with a Failure)."""

    outcome: Outcome
    summary: str = ""
    failure: Failure | None = None
    revision: int | None = None

    @classmethod
    def failed(cls, failure: Failure) -> ExecutionResult:
        return cls(Outcome.FAILED, failure.reason, failure)


def _diagnostics(api: ApiClient | None, namespace: str) -> str:
    # Read before anything is cleaned up: the failed pods' events are the most useful reason.
    if api is None:
        return ""
    try:
        return cluster.namespace_diagnostics(api, namespace=namespace)
    except (ApiException, HTTPError, OSError):
        return ""


def _ensure_namespace_after_termination(
    api: ApiClient, *, spec: ReleaseSpec, recorder: RunRecorder, on_step: StepCallback
) -> None:
    """Create or adopt the namespace; if an earlier teardown (or someone deleting it from under a
    ready store) left it terminating, wait for the namespace controller to finish and create it anew.
    Failing at once would spend the automatic retries in seconds while the controller is still
    deleting pods and volumes, and leave the store failed for no reason a person could act on."""
    labels = dict(spec.namespace_labels)
    try:
        cluster.ensure_namespace(api, name=spec.namespace, labels=labels, record=recorder.kube)
        return
    except cluster.NamespaceTerminating:
        on_step("namespace", f"Namespace {spec.namespace} is still terminating; waiting until it is gone.")
        gone = cluster.wait_namespace_gone(
            api, name=spec.namespace, timeout_seconds=spec.terminating_namespace_wait_seconds
        )
    if not gone.gone:
        raise cluster.NamespaceTerminating(
            f"namespace {spec.namespace} is still terminating after "
            f"{spec.terminating_namespace_wait_seconds} s, blocked by {gone.blocker}"
        )
    cluster.ensure_namespace(api, name=spec.namespace, labels=labels, record=recorder.kube)


def _upgrade_install(helm: HelmClient, spec: ReleaseSpec) -> HelmRelease:
    return helm.upgrade_install(
        release=spec.release,
        chart=spec.chart,
        namespace=spec.namespace,
        values=dict(spec.values),
        timeout_seconds=spec.helm_timeout_seconds,
    )


def _upgrade_install_settling_interrupted(
    helm: HelmClient, spec: ReleaseSpec, on_step: StepCallback
) -> HelmRelease:
    """Install or upgrade; when helm refuses because an earlier operation on this release was stopped
    midway (a budget that ran out, a worker that died), settle it and try once more.

    This run holds the store's only claim, so no other run is acting on the release: a pending
    release is an interrupted run's leftover. (The reconciler settles only stores with no running
    run; should it be settling this one at this very moment, helm refuses the second rollback and
    the run fails as busy, to be retried.) Without this, a rollback right after a failed upgrade (a
    rollout's canary) would spend its automatic retries waiting for the reconciler."""
    try:
        return _upgrade_install(helm, spec)
    except OperationInProgress:
        stale = pending_release_of(helm, namespace=spec.namespace, release=spec.release)
        if stale is None:
            raise
    on_step(
        "helm-settle",
        f"Release {spec.release} revision {stale.revision} was left {stale.status} by an interrupted run; "
        "settling it before installing.",
    )
    pending_release_settle(
        helm, namespace=spec.namespace, release=spec.release, timeout_seconds=spec.helm_timeout_seconds
    )
    return _upgrade_install(helm, spec)


def release_install(
    *, spec: ReleaseSpec, access: ClusterAccess, recorder: RunRecorder, on_step: StepCallback
) -> ExecutionResult:
    """Namespace, RoleBindings, credentials Secret (only if absent), then `helm upgrade --install`,
    which rolls back by itself on failure."""
    api: ApiClient | None = None
    try:
        api = access.api_client_factory()
        _ensure_namespace_after_termination(api, spec=spec, recorder=recorder, on_step=on_step)
        on_step("namespace", f"Namespace {spec.namespace} is ready.")
        for binding in spec.bindings:
            cluster.ensure_role_binding(
                api,
                namespace=spec.namespace,
                name=binding.name,
                cluster_role=binding.cluster_role,
                service_account=binding.service_account,
                service_account_namespace=binding.service_account_namespace,
                record=recorder.kube,
            )
        created = cluster.ensure_credentials_secret(
            api,
            namespace=spec.namespace,
            name=spec.credentials.name,
            keys=spec.credentials.keys,
            admin_email=spec.credentials.admin_email,
            labels=dict(spec.credentials.labels),
            record=recorder.kube,
        )
        on_step("secrets", "Credentials generated." if created else "Existing credentials kept.")
        helm = access.helm(recorder.helm)
        on_step("helm", f"Installing the {spec.chart_label} chart with helm.")
        release = _upgrade_install_settling_interrupted(helm, spec, on_step)
    except (HelmTimeout, HelmCommandFailed) as exc:
        # A timeout or a failed hook Job (helm names only the Job's condition): what the pods report
        # is the reason a person can act on.
        return ExecutionResult.failed(failure_of(exc, _diagnostics(api, spec.namespace)))
    except (HelmError, ApiException, HTTPError, OSError, ClusterNotConfigured) as exc:
        return ExecutionResult.failed(failure_of(exc))
    except (cluster.NamespaceNotOurs, cluster.NamespaceTerminating) as exc:
        return ExecutionResult.failed(failure_of(exc))
    except SoftTimeLimitExceeded:
        # The task's soft limit (PROVISIONING_TIMEOUT): HelmClient has already sent helm SIGTERM and
        # waited for it to roll back, so the run can be finished with the cluster's reason.
        reason = budget_exceeded(settings.PROVISIONING_TIMEOUT, _diagnostics(api, spec.namespace))
        return ExecutionResult.failed(Failure(reason, transient=False))
    finally:
        if api is not None:
            api.close()
    return ExecutionResult(
        Outcome.SUCCEEDED,
        f"Release {release.name} revision {release.revision} deployed.",
        revision=release.revision,
    )


def release_teardown(
    *, spec: TeardownSpec, access: ClusterAccess, recorder: RunRecorder, on_step: StepCallback
) -> ExecutionResult:
    """`helm uninstall`, delete the namespace, and wait until the namespace controller has removed
    everything in it (PVCs and their volumes included), or name what holds it."""
    api: ApiClient | None = None
    try:
        api = access.api_client_factory()
        helm = access.helm(recorder.helm)
        removed = helm.uninstall(
            release=spec.release, namespace=spec.namespace, timeout_seconds=spec.helm_timeout_seconds
        )
        on_step("helm-uninstall", "Release removed." if removed else "No release was installed.")
        cluster.delete_namespace(api, name=spec.namespace, record=recorder.kube)
        on_step("namespace-delete", f"Deleting namespace {spec.namespace} and its volumes.")
        started = time.monotonic()
        gone = cluster.wait_namespace_gone(
            api, name=spec.namespace, timeout_seconds=spec.namespace_timeout_seconds
        )
    except (HelmError, ApiException, HTTPError, OSError, ClusterNotConfigured) as exc:
        failure = failure_of(exc)
        return ExecutionResult.failed(
            Failure(f"Teardown could not finish: {failure.reason}", failure.transient)
        )
    except SoftTimeLimitExceeded:
        return ExecutionResult.failed(
            Failure(
                f"Teardown did not finish within the {settings.PROVISIONING_TIMEOUT} s provisioning budget; "
                "retry it once the cluster is healthy.",
                transient=False,
            )
        )
    finally:
        if api is not None:
            api.close()
    if not gone.gone:
        waited = int(time.monotonic() - started)
        return ExecutionResult.failed(
            Failure(
                f"Namespace {spec.namespace} is still terminating after {waited} s, blocked by {gone.blocker}. "
                "Remove what blocks it, then retry the teardown.",
                transient=False,
            )
        )
    return ExecutionResult(Outcome.SUCCEEDED, "Release, namespace and volumes removed.")
