"""Quota arithmetic over rendered manifests: what a store can use at its busiest moment.

Kubernetes charges a pod ``max(sum of containers, largest init container)`` per resource (init
containers run one after another, before the app containers). The busiest moment of a store is an
upgrade: every workload replica, any rolling-update surge pod, every hook Job pod and every CronJob
pod that may run at once. That total must stay within the namespace's ResourceQuota.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from charts.tests.rendering import by_kind, pod_spec

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}
_DECIMAL = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
_QUANTITY = re.compile(r"^(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<suffix>m|Ki|Mi|Gi|Ti|k|M|G|T)?$")


def parse_quantity(value: str | int | float) -> float:
    """A Kubernetes quantity in base units (cores for CPU, bytes for memory and storage)."""
    match = _QUANTITY.match(str(value))
    assert match, f"not a quantity: {value!r}"
    number = float(match["number"])
    suffix = match["suffix"] or ""
    if suffix == "m":
        return number / 1000
    return number * (_BINARY.get(suffix) or _DECIMAL[suffix])


@dataclass(frozen=True)
class Footprint:
    """Requests and limits in millicores and MiB."""

    requests_cpu: int = 0
    limits_cpu: int = 0
    requests_memory: int = 0
    limits_memory: int = 0

    def __add__(self, other: Footprint) -> Footprint:
        return Footprint(
            self.requests_cpu + other.requests_cpu,
            self.limits_cpu + other.limits_cpu,
            self.requests_memory + other.requests_memory,
            self.limits_memory + other.limits_memory,
        )

    def times(self, count: int) -> Footprint:
        """This footprint ``count`` times over."""
        return Footprint(
            self.requests_cpu * count,
            self.limits_cpu * count,
            self.requests_memory * count,
            self.limits_memory * count,
        )

    def peak(self, other: Footprint) -> Footprint:
        """Per-resource maximum (how init containers combine with the rest of the pod)."""
        return Footprint(
            max(self.requests_cpu, other.requests_cpu),
            max(self.limits_cpu, other.limits_cpu),
            max(self.requests_memory, other.requests_memory),
            max(self.limits_memory, other.limits_memory),
        )


def container_footprint(container: dict[str, Any]) -> Footprint:
    """One container's requests and limits; missing values fail (the LimitRange is only a net)."""
    resources = container.get("resources") or {}
    requests, limits = resources.get("requests") or {}, resources.get("limits") or {}
    for part in (requests, limits):
        assert {"cpu", "memory"} <= part.keys(), f"container {container['name']} lacks cpu/memory"
    return Footprint(
        round(parse_quantity(requests["cpu"]) * 1000),
        round(parse_quantity(limits["cpu"]) * 1000),
        round(parse_quantity(requests["memory"]) / 2**20),
        round(parse_quantity(limits["memory"]) / 2**20),
    )


def pod_footprint(spec: dict[str, Any]) -> Footprint:
    """What quota admission charges for one pod built from this spec."""
    app = sum((container_footprint(c) for c in spec["containers"]), Footprint())
    init = Footprint()
    for container in spec.get("initContainers", []):
        init = init.peak(container_footprint(container))
    return app.peak(init)


def _surge(obj: dict[str, Any], replicas: int) -> int:
    """Extra pods a Deployment may run during a rollout (StatefulSets replace pods one by one)."""
    if obj["kind"] != "Deployment":
        return 0
    strategy = obj["spec"].get("strategy") or {"type": "RollingUpdate"}
    if strategy.get("type") == "Recreate":
        return 0
    surge = (strategy.get("rollingUpdate") or {}).get("maxSurge", "25%")
    if isinstance(surge, str) and surge.endswith("%"):
        return math.ceil(replicas * int(surge[:-1]) / 100)
    return int(surge)


def concurrent_pods(obj: dict[str, Any]) -> int:
    """How many pods of this workload can be alive at the busiest moment."""
    kind = obj["kind"]
    spec = obj["spec"]
    if kind in {"Deployment", "StatefulSet"}:
        replicas = int(spec.get("replicas", 1))
        return replicas + _surge(obj, replicas)
    if kind == "Job":
        return int(spec.get("parallelism", 1))
    if kind == "CronJob":
        assert spec.get("concurrencyPolicy") == "Forbid", f"CronJob {obj['metadata']['name']} may overlap"
        return int(spec["jobTemplate"]["spec"].get("parallelism", 1))
    if kind == "Pod":
        return 1
    raise AssertionError(f"unexpected workload kind {kind}")


def peak_footprint(manifests: Iterable[dict[str, Any]]) -> dict[str, Footprint]:
    """Footprint per workload (``Kind/name``) at the busiest moment, surge and hooks included."""
    result: dict[str, Footprint] = {}
    for obj in manifests:
        spec = pod_spec(obj)
        if spec is None:
            continue
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        result[key] = pod_footprint(spec).times(concurrent_pods(obj))
    return result


def quota_footprint(manifests: Iterable[dict[str, Any]]) -> Footprint:
    """The chart's ResourceQuota as a footprint."""
    (quota,) = by_kind(manifests, "ResourceQuota")
    hard = quota["spec"]["hard"]
    return Footprint(
        round(parse_quantity(hard["requests.cpu"]) * 1000),
        round(parse_quantity(hard["limits.cpu"]) * 1000),
        round(parse_quantity(hard["requests.memory"]) / 2**20),
        round(parse_quantity(hard["limits.memory"]) / 2**20),
    )


def quota_violations(manifests: list[dict[str, Any]]) -> list[str]:
    """Every way the busiest moment exceeds the quota; empty when the store fits."""
    total = sum(peak_footprint(manifests).values(), Footprint())
    quota = quota_footprint(manifests)
    violations = [
        f"{field}: {getattr(total, field)} > {getattr(quota, field)}"
        for field in ("requests_cpu", "limits_cpu", "requests_memory", "limits_memory")
        if getattr(total, field) > getattr(quota, field)
    ]
    (hard,) = (q["spec"]["hard"] for q in by_kind(manifests, "ResourceQuota"))
    claims = storage_claims(manifests)
    if len(claims) > int(hard["persistentvolumeclaims"]):
        violations.append(f"persistentvolumeclaims: {len(claims)} > {hard['persistentvolumeclaims']}")
    if sum(claims) > parse_quantity(hard["requests.storage"]):
        violations.append(f"requests.storage: {sum(claims):.0f} > {hard['requests.storage']}")
    return violations


def storage_claims(manifests: Iterable[dict[str, Any]]) -> list[float]:
    """Requested bytes of every claim the release creates (StatefulSet templates per replica)."""
    sizes: list[float] = []
    for obj in manifests:
        if obj["kind"] == "PersistentVolumeClaim":
            sizes.append(parse_quantity(obj["spec"]["resources"]["requests"]["storage"]))
        elif obj["kind"] == "StatefulSet":
            for template in obj["spec"].get("volumeClaimTemplates", []):
                size = parse_quantity(template["spec"]["resources"]["requests"]["storage"])
                sizes += [size] * int(obj["spec"].get("replicas", 1))
    return sizes
