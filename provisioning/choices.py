"""Vocabularies for provisioning runs."""

from django.db import models


class RunKind(models.TextChoices):
    PROVISION = "provision", "Provision"  # namespace, secret, RoleBinding, helm upgrade --install
    TEARDOWN = "teardown", "Teardown"  # helm uninstall, namespace deletion, wait until gone


class RunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"  # stored and handed to the broker; no worker has claimed it yet
    RUNNING = "running", "Running"  # claimed by one worker; `deadline` says when the reaper steps in
    SUCCEEDED = "succeeded", "Succeeded"  # finished; the store moved on
    FAILED = "failed", "Failed"  # finished with `error` saying why
    CANCELLED = "cancelled", "Cancelled"  # superseded before it ran (e.g. the store was deleted first)


RUN_ACTIVE_STATUSES = frozenset({RunStatus.QUEUED, RunStatus.RUNNING})
RUN_TERMINAL_STATUSES = frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED})

RUN_ALLOWED_TRANSITIONS: dict[str, frozenset[str]] = {
    RunStatus.QUEUED: frozenset({RunStatus.RUNNING, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


class ClusterConnection(models.TextChoices):
    AMBIENT = "ambient", "The platform's own kubeconfig or in-cluster account"  # KUBECONFIG / in-cluster
    KUBECONFIG = "kubeconfig", "A kubeconfig stored sealed"  # pasted by staff, kept encrypted


class ClusterHealth(models.TextChoices):
    UNKNOWN = "unknown", "Unknown"  # never checked since it was added
    HEALTHY = "healthy", "Healthy"  # the apiserver answered the last check or watch
    UNREACHABLE = "unreachable", "Unreachable"  # the last checks failed; health_reason says how


CLUSTER_ALLOWED_HEALTH_TRANSITIONS: dict[str, frozenset[str]] = {
    ClusterHealth.UNKNOWN: frozenset({ClusterHealth.HEALTHY, ClusterHealth.UNREACHABLE}),
    ClusterHealth.HEALTHY: frozenset({ClusterHealth.UNREACHABLE}),
    ClusterHealth.UNREACHABLE: frozenset({ClusterHealth.HEALTHY}),
}
