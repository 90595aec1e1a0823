"""List-then-watch of one cluster's store namespaces, the way informers do it: one list, then a watch
resumed from its resourceVersion (with bookmarks), relisting only when the apiserver says the version
is too old (410). Steady state costs open streams, not requests.

What is watched, all within the worker's least-privilege RBAC:
- store namespaces, cluster-wide, by the platform's managed-by label (the orchestrator ClusterRole);
- in each store namespace (the store-deployer RoleBinding there): helm's release Secrets, as
  metadata only, so no Secret data ever crosses the wire; Deployments and StatefulSets, for readiness.

Thousands of streams share a few HTTP/2 connections (the apiserver allows 100 streams per connection
by default, so each connection is given at most STREAMS_PER_CONNECTION). Findings go to a `WatchSink`
as whole per-namespace snapshots; this module never decides what they mean for a store.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote

from provisioning.cluster import MANAGED_BY_LABEL, MANAGED_BY_VALUE
from provisioning.cluster_access import ClusterAccess
from provisioning.http2 import Http2Connection, Http2Error, HttpStatusError

logger = logging.getLogger(__name__)

STREAMS_PER_CONNECTION = 80
WATCH_TIMEOUT_SECONDS = 290  # the apiserver ends a watch after this; it is resumed, not relisted
METADATA_LIST = "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1"
METADATA_WATCH = "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1"
HELM_RELEASES = "owner=helm"
BACKOFF_START, BACKOFF_MAX = 0.5, 30.0
UNREACHABLE_AFTER_SECONDS = 15.0  # failing to (re)connect this long makes the cluster unreachable
CAPACITY_EVERY_SECONDS = 300.0
HEARTBEAT_EVERY_SECONDS = 20.0  # the reconciler treats a cluster as watched while this is fresh


@dataclass(frozen=True)
class ReleaseState:
    """helm's newest record of one release: its revision and status (deployed, pending-install, ...)."""

    revision: int
    status: str


@dataclass(frozen=True)
class WorkloadState:
    """A Deployment or StatefulSet that is not ready, and why."""

    kind: str
    name: str
    reason: str


class WatchSink(Protocol):
    """Who is told what a cluster looks like. Called from the watcher's event loop; each call gets a
    complete snapshot of what it concerns, so a missed or repeated call is harmless."""

    def namespaces(self, present: set[str]) -> None: ...
    def namespace_gone(self, namespace: str) -> None: ...
    def releases(self, namespace: str, releases: dict[str, ReleaseState]) -> None: ...
    def workloads(self, namespace: str, not_ready: list[WorkloadState]) -> None: ...
    def reachable(self, reachable: bool, reason: str) -> None: ...
    def capacity(self, cpu_millicores: int, memory_mib: int) -> None: ...
    def heartbeat(self) -> None: ...


@dataclass
class WatchStats:
    """Counters for benchmarks and logs: requests made and events seen since the start."""

    lists: int = 0
    watches: int = 0
    events: int = 0
    relists: int = 0
    errors: int = 0


class _Gone(Exception):
    """The resourceVersion is too old (HTTP 410 or an ERROR event with code 410): list again."""


def _settings(access: ClusterAccess) -> tuple[str, ssl.SSLContext, dict[str, str]]:
    """Base URL, TLS context (CA and client certificate) and headers of the cluster's API."""
    api = access.api_client_factory()
    try:
        configuration = api.configuration
        host = configuration.host.rstrip("/")
        if not host.startswith("https://"):
            # Watches share HTTP/2 connections, which the apiserver offers over TLS only.
            raise ValueError(f"the cluster's API address must be https://, not {host!r}")
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        headers = {}
        api_key = configuration.api_key or {}
        token = api_key.get("authorization") or api_key.get("BearerToken")
        if token:
            headers["Authorization"] = token if token.lower().startswith("bearer ") else f"Bearer {token}"
        return host, context, headers
    finally:
        api.close()


@dataclass
class _Namespace:
    releases: dict[str, dict[str, Any]] = field(default_factory=dict)  # secret name -> labels
    deployments: dict[str, dict[str, Any]] = field(default_factory=dict)
    statefulsets: dict[str, dict[str, Any]] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)


def newest_releases(secrets_labels: dict[str, dict[str, Any]]) -> dict[str, ReleaseState]:
    """helm keeps one Secret per revision; the newest one says the release's state."""
    newest: dict[str, ReleaseState] = {}
    for labels in secrets_labels.values():
        name, version = labels.get("name"), labels.get("version", "0")
        if not name or not str(version).isdigit():
            continue
        state = ReleaseState(int(version), str(labels.get("status", "")))
        if name not in newest or state.revision > newest[name].revision:
            newest[name] = state
    return newest


def not_ready(kind: str, objects: dict[str, dict[str, Any]]) -> list[WorkloadState]:
    """The workloads whose ready replicas are fewer than they want, with the controller's own words."""
    found = []
    for name, obj in sorted(objects.items()):
        spec, status = obj.get("spec", {}), obj.get("status", {})
        wanted = spec.get("replicas", 1)
        ready = status.get("readyReplicas", 0) or 0
        if wanted and ready < wanted:
            messages = [
                c.get("message") or c.get("reason") or ""
                for c in status.get("conditions", [])
                if c.get("status") != "True" or c.get("type") == "ReplicaFailure"
            ]
            reason = "; ".join(m for m in messages if m) or f"{ready} of {wanted} replicas ready"
            found.append(WorkloadState(kind, name, reason))
    return found


class ClusterWatcher:
    """Watches one cluster until `stop()`; runs in an asyncio loop of its own or a shared one."""

    def __init__(self, access: ClusterAccess, sink: WatchSink, *, name: str = "cluster") -> None:
        self.access = access
        self.sink = sink
        self.name = name
        self.stats = WatchStats()
        self._namespaces: dict[str, _Namespace] = {}
        self._connections: list[Http2Connection] = []
        self._streams: dict[int, int] = {}  # id(connection) -> the loops using it
        self._connecting = asyncio.Lock()
        self._stop = asyncio.Event()
        self._failing_since: float | None = None
        self._main: asyncio.Task[Any] | None = None
        self._reachable: bool | None = None

    # ---- connections -------------------------------------------------------------------------------

    async def _connection_with_room(self) -> Http2Connection:
        """A connection with room for one more long-lived stream (a new one when all are full)."""
        self._connections = [c for c in self._connections if not c.closed]
        for connection in self._connections:
            if self._streams.get(id(connection), 0) < STREAMS_PER_CONNECTION:
                break
        else:
            async with self._connecting:
                # Another stream may have opened one while this one waited.
                self._connections = [c for c in self._connections if not c.closed]
                for connection in self._connections:
                    if self._streams.get(id(connection), 0) < STREAMS_PER_CONNECTION:
                        break
                else:
                    host, context, headers = self._connection_settings
                    connection = await Http2Connection(host, context, headers).open()
                    self._connections.append(connection)
        self._streams[id(connection)] = self._streams.get(id(connection), 0) + 1
        return connection

    def _release(self, connection: Http2Connection) -> None:
        self._streams[id(connection)] = max(0, self._streams.get(id(connection), 0) - 1)

    # ---- health ------------------------------------------------------------------------------------

    def _tell_reachable(self, reachable: bool, reason: str) -> None:
        # Sinks write to the database, which must not happen on the event loop's thread.
        self._reachable = reachable
        self._spawn(asyncio.to_thread(self.sink.reachable, reachable, reason), "health report")

    def _healthy(self) -> None:
        self._failing_since = None
        if self._reachable is not True:
            self._tell_reachable(True, "The apiserver answered.")

    def _failed(self, reason: str) -> None:
        self.stats.errors += 1
        now = time.monotonic()
        self._failing_since = self._failing_since or now
        if now - self._failing_since >= UNREACHABLE_AFTER_SECONDS and self._reachable is not False:
            self._tell_reachable(False, reason)

    # ---- one list-then-watch loop ------------------------------------------------------------------

    async def _list_and_watch(
        self,
        path: str,
        *,
        selector: str,
        metadata_only: bool,
        on_sync: Callable[[list[dict[str, Any]]], Awaitable[None] | None],
        on_event: Callable[[str, dict[str, Any]], Awaitable[None] | None],
    ) -> None:
        backoff = BACKOFF_START
        while not self._stop.is_set():
            connection = None
            try:
                connection = await self._connection_with_room()
                version = await self._list(connection, path, selector, metadata_only, on_sync)
                while not self._stop.is_set():
                    version = await self._watch(connection, path, selector, metadata_only, version, on_event)
                    backoff = BACKOFF_START
            except _Gone:
                self.stats.relists += 1
                continue
            except (Http2Error, HttpStatusError, OSError, ValueError) as exc:
                self._failed(f"{type(exc).__name__}: {exc}"[:300])
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), backoff)
                backoff = min(BACKOFF_MAX, backoff * 2)
            finally:
                if connection is not None:
                    self._release(connection)

    async def _list(self, connection, path, selector, metadata_only, on_sync) -> str:  # noqa: ANN001
        items: list[dict[str, Any]] = []
        continue_token = ""
        while True:
            query = f"?limit=500&labelSelector={quote(selector)}" + (
                f"&continue={quote(continue_token)}" if continue_token else ""
            )
            headers = {"accept": METADATA_LIST if metadata_only else "application/json"}
            status, raw = await connection.get(f"{path}{query}", headers)
            self.stats.lists += 1
            if status == 410:
                raise _Gone()
            if not 200 <= status < 300:
                raise HttpStatusError(status, raw)
            self._healthy()
            body = json.loads(raw)
            items.extend(body.get("items") or [])  # an empty metadata-only list says "items": null
            continue_token = body.get("metadata", {}).get("continue", "")
            if not continue_token:
                result = on_sync(items)
                if asyncio.iscoroutine(result):
                    await result
                return str(body.get("metadata", {}).get("resourceVersion", ""))

    async def _watch(self, connection, path, selector, metadata_only, version, on_event) -> str:  # noqa: ANN001
        query = (
            f"?watch=1&allowWatchBookmarks=true&timeoutSeconds={WATCH_TIMEOUT_SECONDS}"
            f"&resourceVersion={quote(version)}&labelSelector={quote(selector)}"
        )
        headers = {"accept": METADATA_WATCH if metadata_only else "application/json"}
        self.stats.watches += 1
        async with connection.stream_lines(f"{path}{query}", headers) as (status, lines):
            if status == 410:
                raise _Gone()
            if not 200 <= status < 300:
                raise HttpStatusError(status, b"")
            self._healthy()
            async for line in lines:
                if self._stop.is_set():
                    break
                if not line.strip():
                    continue
                event = json.loads(line)
                kind, obj = event.get("type"), event.get("object", {})
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise _Gone()
                    raise ValueError(f"watch error: {obj.get('message')}")
                version = obj.get("metadata", {}).get("resourceVersion", version)
                if kind == "BOOKMARK":
                    continue
                self.stats.events += 1
                result = on_event(kind, obj)
                if asyncio.iscoroutine(result):
                    await result
        return version

    # ---- namespaces and what is in them ------------------------------------------------------------

    async def _on_namespaces_synced(self, items: list[dict[str, Any]]) -> None:
        present = {item["metadata"]["name"] for item in items if "deletionTimestamp" not in item["metadata"]}
        for gone in set(self._namespaces) - present:
            await self._forget(gone)
        for name in present - set(self._namespaces):
            self._start_namespace(name)
        await asyncio.to_thread(self.sink.namespaces, present)

    async def _on_namespace_event(self, kind: str, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        terminating = "deletionTimestamp" in obj["metadata"]
        if kind == "DELETED" or terminating:
            if name in self._namespaces:
                await self._forget(name)
                await asyncio.to_thread(self.sink.namespace_gone, name)
        elif name not in self._namespaces:
            self._start_namespace(name)

    def _spawn(self, coroutine: Awaitable[None], what: str) -> asyncio.Task[None]:
        task = asyncio.ensure_future(coroutine)

        def report(done: asyncio.Task[None]) -> None:
            # A stream that ends by a bug must not die silently: log it (its namespace goes unwatched
            # until the next relist of namespaces starts it again).
            if not done.cancelled() and done.exception() is not None:
                self.stats.errors += 1
                logger.error("watch of %s on %s stopped", what, self.name, exc_info=done.exception())

        task.add_done_callback(report)
        return task

    def _start_namespace(self, name: str) -> None:
        state = _Namespace()
        self._namespaces[name] = state
        base = f"/api/v1/namespaces/{name}"
        apps = f"/apis/apps/v1/namespaces/{name}"
        # What is watched in each store namespace: (path, what it fills, label selector, metadata only).
        streams = (
            (f"{base}/secrets", "releases", HELM_RELEASES, True),
            (f"{apps}/deployments", "deployments", "", False),
            (f"{apps}/statefulsets", "statefulsets", "", False),
        )
        state.tasks = [
            self._spawn(
                self._list_and_watch(
                    path,
                    selector=selector,
                    metadata_only=metadata_only,
                    on_sync=functools.partial(self._sync, name, what),
                    on_event=functools.partial(self._apply, name, what),
                ),
                f"{name} {path.rsplit('/', 1)[-1]}",
            )
            for path, what, selector, metadata_only in streams
        ]

    async def _forget(self, name: str) -> None:
        state = self._namespaces.pop(name, None)
        if state is not None:
            for task in state.tasks:
                task.cancel()

    async def _sync(self, namespace: str, what: str, items: list[dict[str, Any]]) -> None:
        state = self._namespaces.get(namespace)
        if state is None:
            return
        store = {item["metadata"]["name"]: self._kept(what, item) for item in items}
        setattr(state, what, store)
        await self._report(namespace, what)

    async def _apply(self, namespace: str, what: str, kind: str, obj: dict[str, Any]) -> None:
        state = self._namespaces.get(namespace)
        if state is None:
            return
        objects: dict[str, dict[str, Any]] = getattr(state, what)
        name = obj["metadata"]["name"]
        if kind == "DELETED":
            objects.pop(name, None)
        else:
            objects[name] = self._kept(what, obj)
        await self._report(namespace, what)

    @staticmethod
    def _kept(what: str, item: dict[str, Any]) -> dict[str, Any]:
        # Only what the findings need stays in memory: labels of release Secrets, spec.replicas and
        # status of workloads.
        if what == "releases":
            return dict(item["metadata"].get("labels", {}))
        return {
            "spec": {"replicas": item.get("spec", {}).get("replicas", 1)},
            "status": item.get("status", {}),
        }

    async def _report(self, namespace: str, what: str) -> None:
        state = self._namespaces.get(namespace)
        if state is None:
            return
        if what == "releases":
            await asyncio.to_thread(self.sink.releases, namespace, newest_releases(state.releases))
        else:
            found = not_ready("Deployment", state.deployments) + not_ready("StatefulSet", state.statefulsets)
            await asyncio.to_thread(self.sink.workloads, namespace, found)

    async def _heartbeat_loop(self) -> None:
        while not self._stop.is_set():
            if self._reachable:
                await asyncio.to_thread(self.sink.heartbeat)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), HEARTBEAT_EVERY_SECONDS)

    async def _capacity_loop(self) -> None:
        from provisioning.clusters import cluster_check

        while not self._stop.is_set():
            check = await asyncio.to_thread(cluster_check, access=self.access)
            if check.reachable and check.allocatable_cpu_millicores is not None:
                await asyncio.to_thread(
                    self.sink.capacity, check.allocatable_cpu_millicores, check.allocatable_memory_mib or 0
                )
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), CAPACITY_EVERY_SECONDS)

    # ---- life cycle --------------------------------------------------------------------------------

    async def run(self) -> None:
        """Watch until stop(); connection failures are retried with backoff, never raised."""
        self._stop.clear()
        self._main = asyncio.current_task()
        while not self._stop.is_set():
            try:
                self._connection_settings = await asyncio.to_thread(_settings, self.access)
                break
            except Exception as exc:  # an unusable kubeconfig or a missing account: report and retry
                self._failed(f"{type(exc).__name__}: {exc}"[:300])
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._stop.wait(), BACKOFF_MAX)
        selector = f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}"
        background = [asyncio.create_task(self._capacity_loop()), asyncio.create_task(self._heartbeat_loop())]
        try:
            await self._list_and_watch(
                "/api/v1/namespaces",
                selector=selector,
                metadata_only=True,
                on_sync=self._on_namespaces_synced,
                on_event=self._on_namespace_event,
            )
        except asyncio.CancelledError:
            if not self._stop.is_set():
                raise  # cancelled by someone else: let them see it
        finally:
            for task in background:
                task.cancel()
            for name in list(self._namespaces):
                await self._forget(name)
            for connection in self._connections:
                await connection.close()
            self._connections = []
            self._streams = {}

    def stop(self) -> None:
        """End run(): streams waiting for the apiserver's next line are cancelled, not waited for.
        Call it from the loop run() is in."""
        self._stop.set()
        main = getattr(self, "_main", None)
        if main is not None and not main.done():
            main.cancel()

    @property
    def watched_namespaces(self) -> int:
        return len(self._namespaces)
