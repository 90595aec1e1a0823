"""The in-memory object store: CRUD with API-server semantics, watches and garbage collection.

Every public method takes the one store lock, so HTTP handler threads and the
controller thread see a single consistent history of resource versions.
"""

from __future__ import annotations

import base64
import copy
import ipaddress
import itertools
import queue
import re
import secrets as random_source
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubeapi_double import errors, patch
from kubeapi_double.resources import RESOURCE_TYPES, ResourceType, lookup
from kubeapi_double.selectors import Filter

NAMESPACE = lookup("namespaces")
DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
HISTORY_LIMIT = 50_000

_LABEL_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_SUBDOMAIN_RE = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL_MESSAGE = (
    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must "
    "start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for "
    "validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
)
_SUBDOMAIN_MESSAGE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and "
    "must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def now_timestamp() -> str:
    """The current time in the API's RFC 3339 second-precision form."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def random_suffix(length: int = 5) -> str:
    """A random name suffix drawn from the alphabet Kubernetes uses for generateName."""
    return "".join(random_source.choice(_GENERATE_ALPHABET) for _ in range(length))


def _spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        key: value for key, value in obj.items() if key not in ("metadata", "status", "kind", "apiVersion")
    }


def _owner_uids(obj: dict[str, Any] | None) -> set[str]:
    refs = (obj or {}).get("metadata", {}).get("ownerReferences") or []
    return {ref["uid"] for ref in refs if ref.get("uid")}


def _without_version(obj: dict[str, Any]) -> dict[str, Any]:
    return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}


@dataclass(frozen=True)
class WatchEvent:
    """One change in the store's history, kept for watches that resume from a resourceVersion."""

    resource_version: int
    type: str
    rt: ResourceType
    obj: dict[str, Any]
    old: dict[str, Any] | None

    def for_filter(self, flt: Filter) -> tuple[str, dict[str, Any]] | None:
        """The event a watcher with this filter sees, if any.

        An object that starts or stops matching a selector appears as ADDED or
        DELETED to that watcher, as it does with a real API server.
        """
        new_ok = flt.matches(self.obj)
        old_ok = self.old is not None and flt.matches(self.old)
        if self.type == "MODIFIED":
            if new_ok and old_ok:
                return "MODIFIED", self.obj
            if new_ok:
                return "ADDED", self.obj
            return ("DELETED", self.obj) if old_ok else None
        return (self.type, self.obj) if new_ok or old_ok else None


@dataclass
class Watcher:
    """A registered watch: its resource type and a queue the store pushes events into."""

    rt: ResourceType
    events: queue.Queue[WatchEvent | None] = field(default_factory=queue.Queue)


class Store:
    """All API objects, the global resourceVersion counter and the change history."""

    def __init__(self, validator: Callable[[ResourceType, dict[str, Any]], None] | None = None) -> None:
        self.lock = threading.RLock()
        self._validator = validator
        self._objects: dict[ResourceType, dict[tuple[str, str], dict[str, Any]]] = {}
        # The same objects by namespace ("" for cluster-scoped): namespaced reads must not scan the
        # whole fleet (issue 18: with 1,000 stores every per-namespace LIST walked every object).
        self._by_namespace: dict[ResourceType, dict[str, dict[str, dict[str, Any]]]] = {}
        # owner uid -> kind -> keys of the objects whose ownerReferences name it (garbage collection
        # looked through every object of every kind for each deleted object), and each key's place in
        # its bucket's order, so dependents are still collected in the order of a scan.
        self._dependents: dict[str, dict[ResourceType, set[tuple[str, str]]]] = {}
        self._position: dict[tuple[ResourceType, tuple[str, str]], int] = {}
        self._positions = itertools.count()
        # Called with every change, under the lock (the controllers' dirty set is fed from here).
        self.listeners: list[Callable[[WatchEvent], None]] = []
        self._history: deque[WatchEvent] = deque(maxlen=HISTORY_LIMIT)
        self._watchers: list[Watcher] = []
        self._rv = 0
        # uid -> monotonic time of the last client write; controllers wait ready_delay after it.
        self._touched: dict[str, float] = {}
        # (uid, field manager) -> the object that manager last applied (server-side apply).
        self._applied: dict[tuple[str, str], dict[str, Any]] = {}
        self._service_ips = itertools.count(10)
        self.reset()

    # --- bookkeeping ---------------------------------------------------------------

    def reset(self) -> None:
        """Forget everything and recreate the namespaces every cluster starts with."""
        with self.lock:
            for watcher in self._watchers:
                watcher.events.put(None)
            self._watchers.clear()
            self._objects = {rt: {} for rt in RESOURCE_TYPES}
            self._by_namespace = {rt: {} for rt in RESOURCE_TYPES}
            self._dependents.clear()
            self._position.clear()
            self._history.clear()
            self._touched.clear()
            self._applied.clear()
            for name in DEFAULT_NAMESPACES:
                self.create(NAMESPACE, None, {"metadata": {"name": name}}, by_controller=True)

    @property
    def resource_version(self) -> int:
        """The latest resourceVersion handed out."""
        return self._rv

    def _emit(
        self, event_type: str, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None
    ) -> None:
        event = WatchEvent(self._rv, event_type, rt, copy.deepcopy(obj), copy.deepcopy(old))
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.rt == rt:
                watcher.events.put(event)
        for listener in self.listeners:
            listener(event)

    def settled_for(self, obj: dict[str, Any]) -> float:
        """Seconds since a client last wrote this object (infinite if only controllers did)."""
        touched = self._touched.get(obj["metadata"].get("uid", ""))
        return float("inf") if touched is None else time.monotonic() - touched

    def _touch(self, obj: dict[str, Any], by_controller: bool) -> None:
        if not by_controller:
            self._touched[obj["metadata"]["uid"]] = time.monotonic()

    # --- reads ---------------------------------------------------------------------

    def _bucket(self, rt: ResourceType) -> dict[tuple[str, str], dict[str, Any]]:
        return self._objects[rt]

    def _key(self, rt: ResourceType, namespace: str | None, name: str) -> tuple[str, str]:
        return ((namespace or "") if rt.namespaced else "", name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        """A copy of one object, or 404."""
        with self.lock:
            obj = self._bucket(rt).get(self._key(rt, namespace, name))
            if obj is None:
                raise errors.not_found(rt, name)
            return copy.deepcopy(obj)

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        with self.lock:
            obj = self._bucket(rt).get(self._key(rt, namespace, name))
            return copy.deepcopy(obj) if obj is not None else None

    def peek(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        """One object itself, or None (not copied: callers hold the lock and must not change it)."""
        return self._bucket(rt).get(self._key(rt, namespace, name))

    def keys(self, rt: ResourceType) -> list[tuple[str, str]]:
        """The (namespace or "", name) of every object of a type."""
        return list(self._bucket(rt))

    def in_namespace(self, rt: ResourceType, namespace: str) -> dict[str, dict[str, Any]]:
        """The objects of a namespaced type in one namespace by name (not copied: callers hold the lock)."""
        return self._by_namespace[rt].get(namespace, {}) if rt.namespaced else {}

    def list(self, rt: ResourceType, flt: Filter | None = None) -> tuple[list[dict[str, Any]], int]:
        """Copies of the matching objects, sorted by namespace and name, and the list resourceVersion."""
        with self.lock:
            if flt is not None and flt.namespace is not None and rt.namespaced:
                candidates = sorted(self.in_namespace(rt, flt.namespace).items())
            else:
                candidates = sorted(self._bucket(rt).items())
            items = [copy.deepcopy(obj) for _, obj in candidates if flt is None or flt.matches(obj)]
            return items, self._rv

    def namespaced_contents(self, namespace: str) -> list[tuple[ResourceType, dict[str, Any]]]:
        """Every object in a namespace (not copied: callers hold the lock)."""
        return [
            (rt, obj)
            for rt, by_namespace in self._by_namespace.items()
            if rt.namespaced
            for obj in by_namespace.get(namespace, {}).values()
        ]

    def all_objects(self, rt: ResourceType) -> list[dict[str, Any]]:
        """Copies of every object of a type."""
        return self.list(rt)[0]

    # --- validation ----------------------------------------------------------------

    def _validate_name(self, rt: ResourceType, name: str) -> None:
        if not name:
            raise errors.invalid(
                rt, name, "metadata.name", "name or generateName is required", cause="FieldValueRequired"
            )
        if rt.name_rule == "path":
            if name in (".", "..") or "/" in name or "%" in name:
                raise errors.invalid(rt, name, "metadata.name", "may not contain '/' or '%'", name)
        elif rt.name_rule == "label":
            if len(name) > 63 or not _LABEL_RE.match(name):
                raise errors.invalid(rt, name, "metadata.name", _LABEL_MESSAGE, name)
        elif len(name) > 253 or not _SUBDOMAIN_RE.match(name):
            raise errors.invalid(rt, name, "metadata.name", _SUBDOMAIN_MESSAGE, name)

    def _check_namespace(self, rt: ResourceType, namespace: str | None, name: str) -> None:
        if not rt.namespaced:
            return
        ns = self._bucket(NAMESPACE).get(("", namespace or ""))
        if ns is None:
            raise errors.namespace_not_found(namespace or "")
        if ns["metadata"].get("deletionTimestamp"):
            raise errors.terminating(rt, name, namespace or "")

    # --- writes --------------------------------------------------------------------

    def _commit(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = self._key(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        previous = self._bucket(rt).get(key)
        if previous is None:
            self._position[(rt, key)] = next(self._positions)
        self._index_owners(rt, key, previous, obj)
        self._bucket(rt)[key] = obj
        self._by_namespace[rt].setdefault(key[0], {})[key[1]] = obj
        self._emit("ADDED" if old is None else "MODIFIED", rt, obj, old)
        return copy.deepcopy(obj)

    def _defaults(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Fill the fields the API server defaults and that helm's readiness checks dereference."""
        spec = obj.setdefault("spec", {}) if rt.kind in _SPEC_KINDS else obj.get("spec")
        if rt.kind == "Namespace":
            obj["spec"] = {"finalizers": ["kubernetes"]}
            obj["status"] = {"phase": "Active"}
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        elif rt.kind == "Secret":
            obj.setdefault("type", "Opaque")
            for key, value in (obj.pop("stringData", None) or {}).items():
                obj.setdefault("data", {})[key] = base64.b64encode(str(value).encode()).decode("ascii")
        elif rt.kind == "Service" and spec is not None:
            spec.setdefault("type", "ClusterIP")
            spec.setdefault("sessionAffinity", "None")
            if spec["type"] != "ExternalName" and not spec.get("clusterIP"):
                address = str(ipaddress.IPv4Address("10.96.0.0") + next(self._service_ips))
                spec["clusterIP"] = address
                spec["clusterIPs"] = [address]
            for port in spec.get("ports") or []:
                port.setdefault("protocol", "TCP")
                port.setdefault("targetPort", port.get("port"))
        elif rt.kind in ("Deployment", "ReplicaSet", "StatefulSet") and spec is not None:
            spec.setdefault("replicas", 1)
            spec.setdefault("revisionHistoryLimit", 10)
            if rt.kind == "Deployment":
                spec.setdefault("progressDeadlineSeconds", 600)
                strategy = spec.setdefault("strategy", {})
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    rolling = strategy.setdefault("rollingUpdate", {})
                    rolling.setdefault("maxUnavailable", "25%")
                    rolling.setdefault("maxSurge", "25%")
            if rt.kind == "StatefulSet":
                spec.setdefault("podManagementPolicy", "OrderedReady")
                strategy = spec.setdefault("updateStrategy", {})
                strategy.setdefault("type", "RollingUpdate")
                if strategy["type"] == "RollingUpdate":
                    strategy.setdefault("rollingUpdate", {"partition": 0})
        elif rt.kind == "Job" and spec is not None:
            spec.setdefault("completions", 1)
            spec.setdefault("parallelism", 1)
            spec.setdefault("backoffLimit", 6)
            spec.setdefault("completionMode", "NonIndexed")
            spec.setdefault("suspend", False)
        elif rt.kind == "Pod":
            obj.setdefault("status", {}).setdefault("phase", "Pending")
        elif rt.kind == "PersistentVolumeClaim":
            obj.setdefault("status", {}).setdefault("phase", "Pending")

    def _preserve_server_fields(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> None:
        """Keep what clients cannot change through the main resource."""
        if rt.kind == "Namespace":
            new["spec"] = copy.deepcopy(old.get("spec") or {})
        if rt.kind == "Service":
            old_spec, new_spec = old.get("spec") or {}, new.setdefault("spec", {})
            for key in ("clusterIP", "clusterIPs"):
                if key in old_spec and not new_spec.get(key):
                    new_spec[key] = copy.deepcopy(old_spec[key])
        if rt.has_status or "status" in old:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)

    def create(
        self,
        rt: ResourceType,
        namespace: str | None,
        body: dict[str, Any],
        *,
        dry_run: bool = False,
        by_controller: bool = False,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        """POST: validate, default and store a new object; 404/403/409/422 like the API server."""
        with self.lock:
            obj = copy.deepcopy(body)
            obj["apiVersion"], obj["kind"] = rt.api_version, rt.kind
            metadata = obj.setdefault("metadata", {})
            if not metadata.get("name") and metadata.get("generateName"):
                metadata["name"] = metadata["generateName"] + random_suffix()
            name = metadata.get("name", "")
            if rt.namespaced:
                if metadata.get("namespace") and namespace and metadata["namespace"] != namespace:
                    raise errors.bad_request(
                        "the namespace of the provided object does not match the namespace sent on the request"
                    )
                namespace = namespace or metadata.get("namespace") or "default"
                metadata["namespace"] = namespace
            else:
                metadata.pop("namespace", None)
            self._validate_name(rt, name)
            self._check_namespace(rt, namespace, name)
            if self._key(rt, namespace, name) in self._bucket(rt):
                raise errors.already_exists(rt, name)
            for server_field in (
                "uid",
                "resourceVersion",
                "creationTimestamp",
                "deletionTimestamp",
                "managedFields",
                "selfLink",
            ):
                metadata.pop(server_field, None)
            if rt.has_status and rt.kind not in ("Namespace", "Pod", "PersistentVolumeClaim"):
                obj.pop("status", None)
            metadata["uid"] = str(uuid.uuid4())
            metadata["creationTimestamp"] = now_timestamp()
            metadata["generation"] = 1
            self._defaults(rt, obj)
            if self._validator is not None:
                self._validator(rt, obj)
            if dry_run:
                return obj
            result = self._commit(rt, obj, None)
            self._touch(obj, by_controller)
            if field_manager:
                self._applied[(metadata["uid"], field_manager)] = copy.deepcopy(body)
            return result

    def _store_update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        *,
        by_controller: bool,
        dry_run: bool,
    ) -> dict[str, Any]:
        """Common tail of PUT and PATCH: fixed identity, generation, finalizers, commit."""
        metadata = new.setdefault("metadata", {})
        for fixed in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if fixed in old["metadata"]:
                metadata[fixed] = old["metadata"][fixed]
            else:
                metadata.pop(fixed, None)
        metadata.pop("managedFields", None)
        new["apiVersion"], new["kind"] = rt.api_version, rt.kind
        generation = old["metadata"].get("generation", 1)
        metadata["generation"] = generation + 1 if _spec_part(new) != _spec_part(old) else generation
        if self._validator is not None and not by_controller:
            self._validator(rt, new)
        if dry_run:
            return new
        if rt.kind != "Namespace" and metadata.get("deletionTimestamp") and not metadata.get("finalizers"):
            # The last finalizer is gone from an object being deleted: it goes away now.
            self._remove(rt, new, "Background")
            return copy.deepcopy(new)
        if _without_version(new) == _without_version(old):
            # A no-op write does not bump the resourceVersion, as with a real API server.
            return copy.deepcopy(old)
        result = self._commit(rt, new, old)
        self._touch(new, by_controller)
        return result

    def replace(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: dict[str, Any],
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        by_controller: bool = False,
    ) -> dict[str, Any]:
        """PUT: full replacement with resourceVersion check; ``status`` touches status only."""
        with self.lock:
            old = self._bucket(rt).get(self._key(rt, namespace, name))
            if old is None:
                raise errors.not_found(rt, name)
            body_meta = body.get("metadata") or {}
            if body_meta.get("name") and body_meta["name"] != name:
                raise errors.bad_request("the name of the object does not match the name on the URL")
            wanted_rv = body_meta.get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            if subresource == "status":
                new = copy.deepcopy(old)
                new["status"] = copy.deepcopy(body.get("status") or {})
            elif subresource == "finalize" and rt.kind == "Namespace":
                new = copy.deepcopy(old)
                new["spec"] = copy.deepcopy(body.get("spec") or {})
            else:
                new = copy.deepcopy(body)
                new.setdefault("metadata", {})
                self._preserve_server_fields(rt, old, new)
                if rt.kind == "Secret":
                    self._defaults(rt, new)
            return self._store_update(rt, old, new, by_controller=by_controller, dry_run=dry_run)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        patch_type: str,
        body: Any,
        *,
        subresource: str | None = None,
        field_manager: str = "",
        dry_run: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """PATCH in any of the four patch types; returns (object, created) since apply can create."""
        with self.lock:
            old = self._bucket(rt).get(self._key(rt, namespace, name))
            if patch_type == patch.APPLY_PATCH:
                if not isinstance(body, dict):
                    raise errors.bad_request("apply patch must be an object")
                if old is None:
                    applied = copy.deepcopy(body)
                    applied.setdefault("metadata", {}).setdefault("name", name)
                    created = self.create(
                        rt, namespace, applied, dry_run=dry_run, field_manager=field_manager or "unknown"
                    )
                    return created, True
                previous = self._applied.get((old["metadata"]["uid"], field_manager))
                merged = patch.apply_patch(old, previous, body)
            elif old is None:
                raise errors.not_found(rt, name)
            else:
                try:
                    if patch_type == patch.JSON_PATCH:
                        merged = patch.json_patch(old, body)
                    elif patch_type == patch.STRATEGIC_MERGE_PATCH:
                        merged = patch.strategic_merge_patch(old, body)
                    else:
                        merged = patch.merge_patch(old, body)
                except patch.PatchError as exc:
                    raise errors.ApiError(422, "Invalid", str(exc)) from exc
            wanted_rv = (merged.get("metadata") or {}).get("resourceVersion")
            if wanted_rv and wanted_rv != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt, name)
            if subresource == "status":
                new = copy.deepcopy(old)
                new["status"] = merged.get("status") or {}
            else:
                new = merged
                self._preserve_server_fields(rt, old, new)
            result = self._store_update(rt, old, new, by_controller=False, dry_run=dry_run)
            if patch_type == patch.APPLY_PATCH and not dry_run:
                self._applied[(old["metadata"]["uid"], field_manager)] = copy.deepcopy(body)
            return result, False

    def set_status(self, rt: ResourceType, namespace: str | None, name: str, status: dict[str, Any]) -> dict:
        """Replace an object's status as a controller would (no client-write timestamp)."""
        with self.lock:
            old = self._bucket(rt).get(self._key(rt, namespace, name))
            if old is None:
                raise errors.not_found(rt, name)
            new = copy.deepcopy(old)
            new["status"] = copy.deepcopy(status)
            return self._store_update(rt, old, new, by_controller=True, dry_run=False)

    def controller_update(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Write a whole object (spec, metadata and status) on behalf of a controller."""
        with self.lock:
            old = self._bucket(rt).get(
                self._key(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            )
            if old is None:
                raise errors.not_found(rt, obj["metadata"]["name"])
            return self._store_update(rt, old, copy.deepcopy(obj), by_controller=True, dry_run=False)

    # --- deletion ------------------------------------------------------------------

    def delete(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        options: dict[str, Any] | None = None,
        *,
        dry_run: bool = False,
        by_controller: bool = False,
    ) -> tuple[dict[str, Any], bool]:
        """DELETE: returns (object, finished); objects with finalizers and namespaces linger."""
        options = options or {}
        with self.lock:
            obj = self._bucket(rt).get(self._key(rt, namespace, name))
            if obj is None:
                raise errors.not_found(rt, name)
            preconditions = options.get("preconditions") or {}
            for key in ("uid", "resourceVersion"):
                if preconditions.get(key) and preconditions[key] != obj["metadata"].get(key):
                    raise errors.conflict(
                        rt,
                        name,
                        f"Precondition failed: {key} in precondition: {preconditions[key]}, "
                        f"{key} in object meta: {obj['metadata'].get(key)}",
                    )
            if dry_run:
                return copy.deepcopy(obj), True
            propagation = options.get("propagationPolicy") or (
                "Orphan" if options.get("orphanDependents") else "Background"
            )
            if rt.kind == "Namespace" or obj["metadata"].get("finalizers"):
                if obj["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(obj), False
                old = copy.deepcopy(obj)
                new = copy.deepcopy(obj)
                new["metadata"]["deletionTimestamp"] = now_timestamp()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                if rt.kind == "Namespace":
                    new["status"] = {"phase": "Terminating"}
                    new.setdefault("spec", {})["finalizers"] = ["kubernetes"]
                result = self._commit(rt, new, old)
                self._touch(new, by_controller)
                return result, False
            self._remove(rt, obj, propagation)
            return copy.deepcopy(obj), True

    def _remove(self, rt: ResourceType, obj: dict[str, Any], propagation: str) -> None:
        key = self._key(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        stored = self._bucket(rt).pop(key, None)
        if stored is None:
            return
        del self._position[(rt, key)]
        self._index_owners(rt, key, stored, None)
        in_namespace = self._by_namespace[rt][key[0]]
        del in_namespace[key[1]]
        if not in_namespace:
            del self._by_namespace[rt][key[0]]
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._emit("DELETED", rt, gone, None)
        uid = obj["metadata"]["uid"]
        self._touched.pop(uid, None)
        for applied_key in [k for k in self._applied if k[0] == uid]:
            del self._applied[applied_key]
        self._collect_dependents(uid, propagation)

    def _index_owners(
        self,
        rt: ResourceType,
        key: tuple[str, str],
        before: dict[str, Any] | None,
        after: dict[str, Any] | None,
    ) -> None:
        old, new = _owner_uids(before), _owner_uids(after)
        for uid in old - new:
            by_kind = self._dependents[uid]
            by_kind[rt].discard(key)
            if not by_kind[rt]:
                del by_kind[rt]
                if not by_kind:
                    del self._dependents[uid]
        for uid in new - old:
            self._dependents.setdefault(uid, {}).setdefault(rt, set()).add(key)

    def _collect_dependents(self, owner_uid: str, propagation: str) -> None:
        """Garbage collection: dependents of a deleted owner are deleted (or orphaned)."""
        for dep_rt, bucket in self._objects.items():
            keys = self._dependents.get(owner_uid, {}).get(dep_rt, ())
            ordered = sorted(keys, key=lambda k, rt=dep_rt: self._position[(rt, k)])
            for dependent in [bucket[key] for key in ordered]:
                refs = dependent["metadata"].get("ownerReferences") or []
                if not any(ref.get("uid") == owner_uid for ref in refs):
                    continue
                if propagation == "Orphan":
                    orphan = copy.deepcopy(dependent)
                    orphan["metadata"]["ownerReferences"] = [r for r in refs if r.get("uid") != owner_uid]
                    self._store_update(dep_rt, dependent, orphan, by_controller=True, dry_run=False)
                else:
                    meta = dependent["metadata"]
                    self.delete(
                        dep_rt,
                        meta.get("namespace"),
                        meta["name"],
                        {"propagationPolicy": propagation},
                        by_controller=True,
                    )

    def delete_collection(self, rt: ResourceType, flt: Filter, options: dict[str, Any] | None = None) -> list:
        """DELETE on a collection: delete every matching object."""
        with self.lock:
            items, _ = self.list(rt, flt)
            for item in items:
                meta = item["metadata"]
                if self.find(rt, meta.get("namespace"), meta["name"]) is not None:
                    self.delete(rt, meta.get("namespace"), meta["name"], options)
            return items

    def remove_now(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        """Remove an object immediately (namespace controller's final step)."""
        with self.lock:
            current = self._bucket(rt).get(
                self._key(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            )
            if current is not None:
                self._remove(rt, current, "Background")

    # --- watch ---------------------------------------------------------------------

    def open_watch(
        self, rt: ResourceType, flt: Filter, resource_version: str, send_initial: bool
    ) -> tuple[list[tuple[str, dict[str, Any]]], Watcher, int]:
        """Register a watch; returns the events to send first, the watcher and the start revision.

        An empty or "0" resourceVersion (and ``sendInitialEvents=true``) starts
        with ADDED events for the current state; a specific one replays history,
        or answers 410 Gone when that history was already dropped.
        """
        with self.lock:
            initial: list[tuple[str, dict[str, Any]]] = []
            if send_initial or resource_version in ("", "0"):
                initial = [("ADDED", obj) for obj in self.list(rt, flt)[0]]
            else:
                try:
                    since = int(resource_version)
                except ValueError as exc:
                    raise errors.bad_request(f"invalid resource version {resource_version!r}") from exc
                oldest = self._history[0].resource_version if self._history else self._rv + 1
                if since < oldest - 1 and since < self._rv:
                    raise errors.ApiError(410, "Expired", f"too old resource version: {since} ({oldest - 1})")
                for event in self._history:
                    if event.resource_version > since and event.rt == rt:
                        seen = event.for_filter(flt)
                        if seen is not None:
                            initial.append((seen[0], copy.deepcopy(seen[1])))
            watcher = Watcher(rt)
            self._watchers.append(watcher)
            return initial, watcher, self._rv

    def close_watch(self, watcher: Watcher) -> None:
        """Unregister a watch."""
        with self.lock:
            if watcher in self._watchers:
                self._watchers.remove(watcher)

    def close_all_watches(self) -> None:
        """End every open watch (used on shutdown)."""
        with self.lock:
            for watcher in self._watchers:
                watcher.events.put(None)
            self._watchers.clear()


# Kinds whose spec the defaulting above may need to create.
_SPEC_KINDS = {"Service", "Deployment", "ReplicaSet", "StatefulSet", "Job"}
