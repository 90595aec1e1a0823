"""What the store pods really did on the real node: when each was created, scheduled, started and
Ready (or finished), how it ended, and its peak memory, set against the requests and limits its
chart gave it. Test tooling for the real-node tests and the benchmark.

Memory comes from two places, both recorded per container: the kubelet's stats summary (the working
set, which is what the kubelet and the OOM killer weigh; `GET /api/v1/nodes/<node>/proxy/stats/summary`,
refreshed by cAdvisor every few seconds, so a short spike can fall between two samples) and the
kernel's high-water mark of the container's memory cgroup (`memory.max_usage_in_bytes`, exact but
including page cache, e.g. the files PostgreSQL writes).
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from localcluster.cluster import LocalCluster

MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory")
MIB = 1024 * 1024
_UNITS = {"Ki": 1024, "Mi": MIB, "Gi": 1024 * MIB, "k": 1000, "M": 1000**2, "G": 1000**3}


def quantity_bytes(quantity: str | None) -> int | None:
    """A Kubernetes memory quantity ("384Mi", "1Gi", "500M") in bytes."""
    if not quantity:
        return None
    for suffix, factor in sorted(_UNITS.items(), key=lambda item: -len(item[0])):
        if quantity.endswith(suffix):
            return int(float(quantity[: -len(suffix)]) * factor)
    return int(float(quantity))


def _timestamp(value: str | None) -> float | None:
    if not value:
        return None
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


@dataclass
class ContainerRecord:
    """One container (init containers included) of one pod."""

    name: str
    init: bool
    request_memory: int | None
    limit_memory: int | None
    started: float | None = None
    finished: float | None = None
    exit_code: int | None = None
    reason: str = ""
    restarts: int = 0
    oom_killed: bool = False
    container_id: str = ""
    peak_working_set: int = 0
    cgroup_peak: int = 0


@dataclass
class PodRecord:
    """One pod, from the API's own timestamps (second resolution) and the samples."""

    namespace: str
    name: str
    uid: str
    node: str = ""
    created: float | None = None
    scheduled: float | None = None
    ready: float | None = None
    phase: str = ""
    qos: str = ""
    containers: dict[str, ContainerRecord] = field(default_factory=dict)

    @property
    def seconds_to_ready(self) -> float | None:
        """Created → Ready, or created → the last container finished (a Job's pod)."""
        end = self.ready
        if end is None and self.phase in {"Succeeded", "Failed"}:
            end = max((c.finished for c in self.containers.values() if c.finished), default=None)
        return None if end is None or self.created is None else end - self.created

    @property
    def peak_working_set(self) -> int:
        return max((c.peak_working_set for c in self.containers.values()), default=0)


class PodObserver:
    """Samples every pod in namespaces starting with `prefix` once a second until `stop()`."""

    def __init__(self, cluster: LocalCluster, node_name: str, cgroup_root: str, *, prefix: str = "store-"):
        self.cluster = cluster
        self.node_name = node_name
        self.cgroup_root = cgroup_root.strip("/")
        self.prefix = prefix
        self.pods: dict[str, PodRecord] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-observer", daemon=True)
        self._lock = threading.Lock()

    def __enter__(self) -> PodObserver:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def records(self, namespace: str | None = None) -> list[PodRecord]:
        """The pods seen so far (in `namespace`), oldest first."""
        with self._lock:
            pods = [p for p in self.pods.values() if namespace is None or p.namespace == namespace]
        return sorted(pods, key=lambda p: (p.created or 0, p.name))

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            with contextlib.suppress(Exception):  # the API may briefly refuse while it is busy
                self._sample_pods()
            with contextlib.suppress(Exception):
                self._sample_stats()

    def _sample_pods(self) -> None:
        items = self.cluster.request("GET", "/api/v1/pods", timeout=10)["items"]
        with self._lock:
            for pod in items:
                metadata = pod["metadata"]
                if not metadata["namespace"].startswith(self.prefix):
                    continue
                record = self.pods.get(metadata["uid"])
                if record is None:
                    record = self.pods[metadata["uid"]] = self._new_record(pod)
                self._update(record, pod)

    @staticmethod
    def _new_record(pod: dict[str, Any]) -> PodRecord:
        metadata, spec = pod["metadata"], pod["spec"]
        record = PodRecord(
            namespace=metadata["namespace"],
            name=metadata["name"],
            uid=metadata["uid"],
            created=_timestamp(metadata.get("creationTimestamp")),
        )
        for init, containers in ((True, spec.get("initContainers", [])), (False, spec["containers"])):
            for container in containers:
                resources = container.get("resources", {})
                record.containers[container["name"]] = ContainerRecord(
                    name=container["name"],
                    init=init,
                    request_memory=quantity_bytes(resources.get("requests", {}).get("memory")),
                    limit_memory=quantity_bytes(resources.get("limits", {}).get("memory")),
                )
        return record

    @staticmethod
    def _update(record: PodRecord, pod: dict[str, Any]) -> None:
        status = pod.get("status", {})
        record.node = pod["spec"].get("nodeName", record.node)
        record.phase = status.get("phase", record.phase)
        record.qos = status.get("qosClass", record.qos)
        for condition in status.get("conditions", []):
            if condition["status"] != "True":
                continue
            if condition["type"] == "PodScheduled" and record.scheduled is None:
                record.scheduled = _timestamp(condition.get("lastTransitionTime"))
            if condition["type"] == "Ready" and record.ready is None:
                record.ready = _timestamp(condition.get("lastTransitionTime"))
        for container_status in [
            *status.get("initContainerStatuses", []),
            *status.get("containerStatuses", []),
        ]:
            container = record.containers.get(container_status["name"])
            if container is None:
                continue
            container.restarts = container_status.get("restartCount", 0)
            container.container_id = container_status.get("containerID", "").rpartition("//")[2]
            for state in (container_status.get("lastState", {}), container_status.get("state", {})):
                if "running" in state and container.started is None:
                    container.started = _timestamp(state["running"].get("startedAt"))
                terminated = state.get("terminated")
                if terminated:
                    if container.started is None:
                        container.started = _timestamp(terminated.get("startedAt"))
                    container.finished = _timestamp(terminated.get("finishedAt"))
                    container.exit_code = terminated.get("exitCode")
                    container.reason = terminated.get("reason", "")
                    container.oom_killed = container.oom_killed or terminated.get("reason") == "OOMKilled"

    def _sample_stats(self) -> None:
        summary = self.cluster.request(
            "GET", f"/api/v1/nodes/{self.node_name}/proxy/stats/summary", timeout=10
        )
        with self._lock:
            for pod in summary.get("pods", []):
                record = self.pods.get(pod["podRef"]["uid"])
                if record is None:
                    continue
                for stats in pod.get("containers", []):
                    container = record.containers.get(stats["name"])
                    working_set = stats.get("memory", {}).get("workingSetBytes") or 0
                    if container is not None:
                        container.peak_working_set = max(container.peak_working_set, working_set)
            for record in self.pods.values():
                pod_dir = self._pod_cgroup(record)
                if pod_dir is None:
                    continue
                for container in record.containers.values():
                    if not container.container_id:
                        continue
                    with contextlib.suppress(OSError, ValueError):
                        peak = int(
                            (pod_dir / container.container_id / "memory.max_usage_in_bytes").read_text()
                        )
                        container.cgroup_peak = max(container.cgroup_peak, peak)

    def _pod_cgroup(self, record: PodRecord) -> Path | None:
        base = MEMORY_CGROUPS / self.cgroup_root / "kubepods"
        qos = {"Guaranteed": "", "Burstable": "burstable", "BestEffort": "besteffort"}.get(record.qos)
        if qos is None:
            return None
        path = (base / qos if qos else base) / f"pod{record.uid}"
        return path if path.is_dir() else None


def report(records: list[PodRecord]) -> list[str]:
    """One line per container: time to Ready, peaks against the chart's request and limit."""
    lines = []
    for pod in records:
        ready = pod.seconds_to_ready
        for container in pod.containers.values():
            request = f"{container.request_memory // MIB}Mi" if container.request_memory else "-"
            limit = f"{container.limit_memory // MIB}Mi" if container.limit_memory else "-"
            ended = (
                f", exited {container.exit_code} ({container.reason})"
                if container.exit_code is not None
                else ""
            )
            lines.append(
                f"  {pod.name}/{container.name}{' (init)' if container.init else ''}: "
                f"{'ready' if pod.ready else 'done'} {f'{ready:.0f} s' if ready is not None else '?'} after creation, "
                f"peak working set {container.peak_working_set / MIB:.0f} MiB, cgroup peak "
                f"{container.cgroup_peak / MIB:.0f} MiB (request {request}, limit {limit}), "
                f"restarts {container.restarts}{ended}"
            )
    return lines


__all__ = ["ContainerRecord", "PodObserver", "PodRecord", "quantity_bytes", "report"]
