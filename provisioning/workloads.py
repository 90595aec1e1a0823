"""What runs in one namespace, read for people: recent events, pods with their restarts and OOM kills,
the tail of a container's log, and CPU/memory use from metrics-server when the cluster has one.

Read-only, one namespace per call, and the namespace always comes from the caller (the store's own
row), never from a request. Everything returned is redacted with the same filter as logs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from kubernetes.client import ApiClient, ApiException, CoreV1Api, CustomObjectsApi

from provisioning.redaction import redact

# A log tail is for reading on a page: bounded in lines and in bytes whatever the container wrote.
MAX_LOG_LINES = 500
MAX_LOG_BYTES = 256 * 1024


@dataclass(frozen=True)
class NamespaceEvent:
    """One Kubernetes event, in the words a page shows."""

    type: str  # Normal or Warning
    reason: str
    message: str
    object: str  # "pod shop-abc-123"
    count: int
    last_seen: datetime | None

    @property
    def sentence(self) -> str:
        times = f" ({self.count} times)" if self.count > 1 else ""
        return f"{self.object}: {self.reason}: {self.message}{times}"


@dataclass(frozen=True)
class ContainerState:
    name: str
    ready: bool
    restarts: int
    state: str  # "running", "waiting: CrashLoopBackOff", "terminated: Completed"
    last_termination: str = ""  # "OOMKilled (exit 137) at ..." when the container was killed before
    oom_killed: bool = False


@dataclass(frozen=True)
class PodState:
    name: str
    phase: str
    node: str
    containers: tuple[ContainerState, ...] = field(default_factory=tuple)

    @property
    def restarts(self) -> int:
        return sum(container.restarts for container in self.containers)

    @property
    def oom_kills(self) -> int:
        return sum(1 for container in self.containers if container.oom_killed)


@dataclass(frozen=True)
class NamespaceUsage:
    """Summed use of every pod in the namespace, from metrics.k8s.io."""

    cpu_millicores: int
    memory_mib: int


class MetricsUnavailable(Exception):
    """The cluster serves no metrics.k8s.io (no metrics-server) or refuses to."""


def api_error_message(exc: ApiException) -> str:
    """The apiserver's own message from an error response (its Status `message`), redacted."""
    try:
        body = json.loads(exc.body or "")
        message = body.get("message") if isinstance(body, dict) else None
    except (TypeError, ValueError):
        message = None
    return redact(str(message or exc.body or exc.reason or f"HTTP {exc.status}").strip())


def namespace_events(api: ApiClient, *, namespace: str, limit: int = 30) -> list[NamespaceEvent]:
    """The namespace's most recent events, newest first."""
    items = CoreV1Api(api).list_namespaced_event(namespace, limit=500).items

    def seen(event: Any) -> datetime | None:
        return (
            event.last_timestamp
            or event.event_time
            or (event.metadata.creation_timestamp if event.metadata else None)
        )

    items.sort(key=lambda event: str(seen(event) or ""), reverse=True)
    events: list[NamespaceEvent] = []
    for event in items[:limit]:
        involved = event.involved_object
        events.append(
            NamespaceEvent(
                type=event.type or "Normal",
                reason=event.reason or "",
                message=redact((event.message or "").strip()),
                object=f"{(involved.kind or '').lower()} {involved.name or ''}".strip(),
                count=event.count or 1,
                last_seen=seen(event),
            )
        )
    return events


def _container_state(status: Any) -> ContainerState:
    state, words = status.state, "unknown"
    if state is not None and state.running is not None:
        words = "running"
    elif state is not None and state.waiting is not None:
        words = f"waiting: {state.waiting.reason or 'starting'}"
    elif state is not None and state.terminated is not None:
        words = f"terminated: {state.terminated.reason or f'exit {state.terminated.exit_code}'}"
    last = status.last_state.terminated if status.last_state is not None else None
    oom = bool(
        (last is not None and last.reason == "OOMKilled")
        or (state is not None and state.terminated is not None and state.terminated.reason == "OOMKilled")
    )
    last_words = ""
    if last is not None:
        last_words = f"{last.reason or 'exited'} (exit {last.exit_code})"
        if last.finished_at:
            last_words += f" at {last.finished_at.isoformat()}"
    return ContainerState(
        name=status.name,
        ready=bool(status.ready),
        restarts=int(status.restart_count or 0),
        state=words,
        last_termination=last_words,
        oom_killed=oom,
    )


def namespace_pods(api: ApiClient, *, namespace: str) -> list[PodState]:
    """Every pod of the namespace with its containers' states, by name."""
    pods: list[PodState] = []
    for pod in CoreV1Api(api).list_namespaced_pod(namespace).items:
        statuses = (
            {status.name: status for status in (pod.status.container_statuses or [])} if pod.status else {}
        )
        containers = []
        for container in pod.spec.containers if pod.spec else []:
            status = statuses.get(container.name)
            containers.append(
                _container_state(status)
                if status is not None
                else ContainerState(name=container.name, ready=False, restarts=0, state="not started")
            )
        pods.append(
            PodState(
                name=str(pod.metadata.name if pod.metadata else ""),
                phase=(pod.status.phase if pod.status else None) or "Unknown",
                node=(pod.spec.node_name if pod.spec else None) or "",
                containers=tuple(containers),
            )
        )
    pods.sort(key=lambda pod: pod.name)
    return pods


def pod_log_tail(api: ApiClient, *, namespace: str, pod: str, container: str, lines: int) -> str:
    """The last `lines` lines a container wrote (capped), redacted. ApiException when the apiserver
    cannot fetch them (see api_error_message for its words)."""
    text = CoreV1Api(api).read_namespaced_pod_log(
        pod,
        namespace,
        container=container,
        tail_lines=max(1, min(lines, MAX_LOG_LINES)),
        limit_bytes=MAX_LOG_BYTES,
        timestamps=True,
        _request_timeout=10,
    )
    return redact(str(text).replace("\x00", ""))


def _cpu_millicores(quantity: str) -> float:
    units = {"n": 1e-6, "u": 1e-3, "m": 1.0}
    if quantity and quantity[-1] in units:
        return float(quantity[:-1]) * units[quantity[-1]]
    return float(quantity or 0) * 1000


def _memory_mib(quantity: str) -> float:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "K": 1e3, "M": 1e6, "G": 1e9}
    for suffix in sorted(units, key=len, reverse=True):
        if quantity.endswith(suffix):
            return float(quantity[: -len(suffix)]) * units[suffix] / 2**20
    return float(quantity or 0) / 2**20


def namespace_usage(api: ApiClient, *, namespace: str) -> NamespaceUsage:
    """CPU and memory in use by the namespace's pods; MetricsUnavailable without metrics-server."""
    try:
        listing = CustomObjectsApi(api).list_namespaced_custom_object(
            "metrics.k8s.io", "v1beta1", namespace, "pods", _request_timeout=5
        )
    except ApiException as exc:
        # 404: the API group is not served; 503: its APIService has no healthy backend; 403: not granted.
        raise MetricsUnavailable(api_error_message(exc)) from exc
    cpu = memory = 0.0
    items: list[dict[str, Any]] = listing.get("items", []) if isinstance(listing, dict) else []
    for item in items:
        for container in item.get("containers", []):
            usage = container.get("usage", {})
            cpu += _cpu_millicores(usage.get("cpu", "0"))
            memory += _memory_mib(usage.get("memory", "0"))
    return NamespaceUsage(cpu_millicores=round(cpu), memory_mib=round(memory))
