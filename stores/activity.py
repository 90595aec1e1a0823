"""A store's activity for its merchant: the namespace's recent Kubernetes events, its pods (restarts,
OOM kills), the last lines of each container's log, and CPU/memory against the plan's quota.

Read through the platform's least-privilege account (store-credentials-reader, bound in each store
namespace only), from the store's own namespace only: the namespace comes from the store row, and a
pod or container named in the request must be one listed there. Rate-limited per user because every
call reaches the apiserver; everything shown passes the log redaction filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from platform_site.errors import ApplicationError
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from provisioning.redaction import redact
from provisioning.workloads import (
    MAX_LOG_LINES,
    MetricsUnavailable,
    NamespaceEvent,
    NamespaceUsage,
    PodState,
    api_error_message,
    namespace_events,
    namespace_pods,
    namespace_usage,
    pod_log_tail,
)
from stores.choices import StoreStatus
from stores.models import PlanResources, Store
from stores.ratelimit import rate_limit_consume

DEFAULT_LOG_LINES = 100
# Without a pod chosen, logs of this many containers at most (a store runs a handful).
MAX_CONTAINER_LOGS = 8


class ActivityRequestInvalid(ApplicationError):
    code = "invalid"
    http_status = 400


class ActivityUnavailable(ApplicationError):
    code = "invalid_state"
    http_status = 409


@dataclass(frozen=True)
class ContainerLog:
    pod: str
    container: str
    text: str = ""
    error: str = ""  # why the log could not be read, in plain words with the apiserver's own


@dataclass(frozen=True)
class StoreActivity:
    """What a store's activity page and API show."""

    namespace: str
    events: list[NamespaceEvent] = field(default_factory=list)
    pods: list[PodState] = field(default_factory=list)
    logs: list[ContainerLog] = field(default_factory=list)
    usage: NamespaceUsage | None = None
    usage_note: str = ""  # "not available: ..." when metrics-server is missing
    quota_cpu_millicores: int | None = None
    quota_memory_mib: int | None = None
    problems: list[str] = field(default_factory=list)  # parts the cluster did not give, and why


def _lines(value: Any) -> int:
    if value in (None, ""):
        return DEFAULT_LOG_LINES
    try:
        lines = int(value)
    except (TypeError, ValueError):
        lines = 0
    if not 1 <= lines <= MAX_LOG_LINES:
        raise ActivityRequestInvalid(
            f"lines must be a whole number from 1 to {MAX_LOG_LINES}.",
            fields={"lines": [f"From 1 to {MAX_LOG_LINES}."]},
        )
    return lines


def _plain(exc: Exception, what: str) -> str:
    if isinstance(exc, ApiException):
        if exc.status == 403:
            return f"The platform is not allowed to read {what} here: {api_error_message(exc)}"
        return f"The cluster could not give {what}: {api_error_message(exc)}"
    return f"The cluster did not answer while reading {what}: {redact(str(exc))}"


def store_activity(
    *,
    store: Store,
    actor: Any,
    pod: str = "",
    container: str = "",
    lines: Any = None,
    access: ClusterAccess | None = None,
) -> StoreActivity:
    """Read the store's events, pods, log tails and usage from its own namespace."""
    wanted_lines = _lines(lines)
    if store.status == StoreStatus.DELETED:
        raise ActivityUnavailable("The store is deleted; nothing of it runs any more.")
    if store.status == StoreStatus.REQUESTED:
        # Queued, not started: there is nothing to read yet (or, when re-queued, the run about to
        # start will replace it); asking the cluster would only cost an apiserver call.
        raise ActivityUnavailable(
            "The store is waiting for a worker; its activity shows once provisioning starts."
        )
    rate_limit_consume(
        scope="store-activity",
        values=[f"user-{getattr(actor, 'pk', actor)}"],
        limit=settings.STORE_ACTIVITY_RATE_LIMIT,
        window=settings.STORE_ACTIVITY_RATE_WINDOW_SECONDS,
    )
    quota = PlanResources.objects.filter(plan_id=store.tenant.plan_id, engine=store.engine).first()
    access = access or ClusterAccess.for_cluster(store.cluster)
    namespace = store.namespace
    problems: list[str] = []
    quota_cpu = quota.cpu_millicores if quota else None
    quota_memory = quota.memory_mib if quota else None
    try:
        api = access.api_client_factory()
    except ClusterNotConfigured as exc:
        # Like any part the cluster does not give: said on the page, not an error page.
        return StoreActivity(
            namespace=namespace,
            usage_note="not available: the platform has no connection to the store's cluster",
            problems=[f"The platform cannot reach the store's cluster: {redact(str(exc))}"],
            quota_cpu_millicores=quota_cpu,
            quota_memory_mib=quota_memory,
        )
    try:
        try:
            events = namespace_events(api, namespace=namespace)
        except (ApiException, HTTPError, OSError) as exc:
            events, problems = [], [*problems, _plain(exc, "the store's events")]
        try:
            pods = namespace_pods(api, namespace=namespace)
        except (ApiException, HTTPError, OSError) as exc:
            pods, problems = [], [*problems, _plain(exc, "the store's pods")]
        logs = _logs(api, namespace, pods, pod=pod, container=container, lines=wanted_lines)
        usage, usage_note = None, ""
        try:
            usage = namespace_usage(api, namespace=namespace)
        except MetricsUnavailable as exc:
            usage_note = f"not available: the cluster has no working metrics-server ({exc})"
        except (HTTPError, OSError) as exc:
            usage_note = f"not available: {_plain(exc, 'usage')}"
    finally:
        api.close()
    return StoreActivity(
        namespace=namespace,
        events=events,
        pods=pods,
        logs=logs,
        usage=usage,
        usage_note=usage_note,
        problems=problems,
        quota_cpu_millicores=quota_cpu,
        quota_memory_mib=quota_memory,
    )


def _logs(
    api: Any, namespace: str, pods: list[PodState], *, pod: str, container: str, lines: int
) -> list[ContainerLog]:
    # Only names listed in the store's own namespace are ever asked for.
    chosen = [(p.name, c.name) for p in pods for c in p.containers]
    if pod:
        if pod not in {p.name for p in pods}:
            raise ActivityRequestInvalid(
                f"The store has no pod named {pod!r}.", fields={"pod": ["Not one of this store's pods."]}
            )
        chosen = [(p, c) for p, c in chosen if p == pod]
    if container:
        chosen = [(p, c) for p, c in chosen if c == container]
        if not chosen:
            raise ActivityRequestInvalid(
                f"No container named {container!r} in the chosen pods.",
                fields={"container": ["Not a container of this store's pods."]},
            )
    logs: list[ContainerLog] = []
    for pod_name, container_name in chosen[:MAX_CONTAINER_LOGS]:
        try:
            text = pod_log_tail(api, namespace=namespace, pod=pod_name, container=container_name, lines=lines)
        except (ApiException, HTTPError, OSError) as exc:
            logs.append(ContainerLog(pod_name, container_name, error=_plain(exc, "this log")))
        else:
            logs.append(ContainerLog(pod_name, container_name, text=text))
    return logs
