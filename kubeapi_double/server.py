"""The HTTP front of the double: kube-apiserver routes, watches and the ``/_double/`` control API."""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import json
import logging
import os
import queue
import select
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import yaml

from kubeapi_double import errors, patch, protobuf, resources
from kubeapi_double.controllers import Controllers
from kubeapi_double.errors import ApiError
from kubeapi_double.resources import ResourceType, lookup
from kubeapi_double.selectors import Filter, SelectorError
from kubeapi_double.state import Store
from kubeapi_double.validation import schema_validator

logger = logging.getLogger(__name__)

CONTEXT_NAME = "kubeapi-double"
CONTROL_PREFIX = "/_double/"
DEFAULT_KUBE_VERSION = "1.35.0"
_MAX_WATCH_SECONDS = 3600.0


@dataclass(frozen=True)
class RequestRecord:
    """One API request as the double saw it (control requests are not recorded)."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str
    user_agent: str
    status: int
    body: bytes = field(repr=False)
    time: float

    def summary(self) -> dict[str, Any]:
        """The record without its body, as JSON-friendly data."""
        data = asdict(self)
        data["body_size"] = len(data.pop("body"))
        return data


def _string_leaves(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for key, item in value.items():
            yield str(key)
            yield from _string_leaves(item)
    elif isinstance(value, list):
        for item in value:
            yield from _string_leaves(item)


def _unwrap_secret_value(encoded: str) -> list[bytes]:
    """A Secret data value decoded, and decoded again when it is a helm release (base64 of gzip)."""
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        return []
    views = [raw]
    try:
        inner = base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError):
        return views
    views.append(inner)
    if inner[:2] == b"\x1f\x8b":
        with contextlib.suppress(OSError, EOFError):
            views.append(gzip.decompress(inner))
    return views


def decode_request_body(content_type: str, body: bytes) -> Any:
    """Parse a request body the way the API server would, by content type."""
    if not body:
        return None
    if content_type.startswith(protobuf.PROTOBUF_CONTENT_TYPE):
        return protobuf.decode_body(body)
    if content_type.startswith(patch.APPLY_PATCH) or "yaml" in content_type:
        return yaml.safe_load(body)
    return json.loads(body)


def searchable_views(record: RequestRecord) -> list[bytes]:
    """Everything a leak search should look at for one request.

    Helm release Secrets carry the values base64 + gzip encoded inside a
    protobuf body, so a plain byte search of the body would miss a leaked
    password; the decoded layers are searched as well.
    """
    views = [record.body, record.path.encode(), json.dumps(record.query).encode()]
    try:
        obj = decode_request_body(record.content_type, record.body)
    except (ValueError, yaml.YAMLError, protobuf.ProtobufError):
        return views
    views.extend(text.encode() for text in _string_leaves(obj))
    if isinstance(obj, dict):
        for value in (obj.get("data") or {}).values():
            if isinstance(value, str):
                views.extend(_unwrap_secret_value(value))
    return views


def decode_helm_release(secret: dict[str, Any]) -> dict[str, Any]:
    """Decode the release JSON helm stores in ``data.release`` (base64 of base64 of gzip)."""
    payload = base64.b64decode(base64.b64decode(secret["data"]["release"]))
    if payload[:2] == b"\x1f\x8b":
        payload = gzip.decompress(payload)
    return json.loads(payload)


class KubeApiDouble:
    """An in-memory stand-in for kube-apiserver that real helm, kubectl and the Python client accept.

    Use as a context manager or call :meth:`start` / :meth:`stop`. The object
    also exposes the state for assertions (``objects``, ``get``,
    ``helm_release_values``, ``requests``) and the switches tests need
    (``set_controllers``, ``set_never_ready``, ``set_status``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready_delay: float = 0.3,
        job_failure_delay: float = 2.0,
        validate_schema: str | None = None,
        kube_version: str = DEFAULT_KUBE_VERSION,
    ) -> None:
        validator = schema_validator(validate_schema) if validate_schema else None
        self.store = Store(validator)
        self.controllers = Controllers(
            self.store, ready_delay=ready_delay, job_failure_delay=job_failure_delay
        )
        self.kube_version = kube_version
        self._host, self._port = host, port
        self._requests: list[RequestRecord] = []
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self.stopping = threading.Event()
        self.kubeconfig_path: Path | None = None

    # --- lifecycle -----------------------------------------------------------------

    def start(self) -> KubeApiDouble:
        """Bind, serve in a background thread and start the controllers."""
        handler = type("BoundHandler", (_Handler,), {"double": self})
        self._httpd = _Server((self._host, self._port), handler)
        self._port = self._httpd.server_address[1]
        self.stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, name="kubeapi-double-http", daemon=True
        )
        self._thread.start()
        self.controllers.start()
        return self

    def stop(self) -> None:
        """Close watches, stop serving and stop the controllers."""
        self.stopping.set()
        self.store.close_all_watches()
        self.controllers.stop()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None

    def __enter__(self) -> KubeApiDouble:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        """The bound TCP port (known after :meth:`start`)."""
        return self._port

    @property
    def url(self) -> str:
        """Base URL of the API, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{self._host}:{self._port}"

    def kubeconfig(self) -> dict[str, Any]:
        """A kubeconfig document for this server (context ``kubeapi-double``, dummy token)."""
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": CONTEXT_NAME, "cluster": {"server": self.url}}],
            "users": [{"name": CONTEXT_NAME, "user": {"token": "kubeapi-double-token"}}],
            "contexts": [
                {
                    "name": CONTEXT_NAME,
                    "context": {"cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": "default"},
                }
            ],
            "current-context": CONTEXT_NAME,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | os.PathLike[str]) -> Path:
        """Write the kubeconfig with mode 0600 and remember its path in ``kubeconfig_path``.

        0600 because helm warns about group-readable kubeconfigs.
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            yaml.safe_dump(self.kubeconfig(), handle, sort_keys=False)
        self.kubeconfig_path = target
        return target

    # --- inspection and control ----------------------------------------------------

    def objects(self, kind: str, namespace: str | None = None, *, label_selector: str | None = None) -> list:
        """Copies of the objects of a kind (kind, plural or short name), optionally in one namespace."""
        return self.store.list(lookup(kind), Filter.parse(namespace, label_selector, None))[0]

    def get(self, kind: str, name: str, namespace: str | None = None) -> dict[str, Any] | None:
        """A copy of one object, or None."""
        return self.store.find(lookup(kind), namespace, name)

    def create(self, kind: str, body: dict[str, Any], namespace: str | None = None) -> dict[str, Any]:
        """Create an object directly (same checks as a POST)."""
        return self.store.create(
            lookup(kind), namespace or (body.get("metadata") or {}).get("namespace"), body
        )

    def delete(self, kind: str, name: str, namespace: str | None = None) -> None:
        """Delete an object directly (same semantics as a DELETE)."""
        self.store.delete(lookup(kind), namespace, name)

    def set_status(self, kind: str, name: str, status: dict[str, Any], namespace: str | None = None) -> dict:
        """Replace an object's status by hand (pair with ``set_controllers(False)``)."""
        return self.store.set_status(lookup(kind), namespace, name, status)

    def set_controllers(self, enabled: bool) -> None:
        """Turn the built-in controllers on or off."""
        self.controllers.enabled = enabled

    def set_never_ready(self, namespace: str, name: str | None = None, enabled: bool = True) -> None:
        """Make the pods of one workload (or of every workload in a namespace) never become ready."""
        self.controllers.set_never_ready(namespace, name, enabled)

    def reset(self) -> None:
        """Drop all objects, switches and the request log."""
        with self.store.lock:
            self.store.reset()
            self.controllers.reset()
            self._requests.clear()

    def state(self, kind: str | None = None, namespace: str | None = None) -> dict[str, Any]:
        """A dump of every stored object (optionally of one kind / namespace)."""
        kinds = [lookup(kind)] if kind else list(resources.RESOURCE_TYPES)
        with self.store.lock:
            objects = [obj for rt in kinds for obj in self.store.list(rt, Filter(namespace))[0]]
            return {
                "resourceVersion": str(self.store.resource_version),
                "objects": objects,
                "controllersEnabled": self.controllers.enabled,
                "neverReady": sorted([list(item) for item in self.controllers.never_ready], key=str),
            }

    def helm_release(self, namespace: str, release: str, revision: int | None = None) -> dict[str, Any]:
        """The decoded helm release record (latest revision unless one is given)."""
        secrets = self.objects("secrets", namespace, label_selector=f"owner=helm,name={release}")
        if revision is not None:
            secrets = [s for s in secrets if s["metadata"]["labels"].get("version") == str(revision)]
        if not secrets:
            raise KeyError(f"no helm release {release!r} in namespace {namespace!r}")
        latest = max(secrets, key=lambda s: int(s["metadata"]["labels"].get("version", "0")))
        return decode_helm_release(latest)

    def helm_release_values(self, namespace: str, release: str, revision: int | None = None) -> dict:
        """The user-supplied values (``config``) helm recorded for a release."""
        return self.helm_release(namespace, release, revision).get("config") or {}

    def record(self, entry: RequestRecord) -> None:
        """Append to the request log."""
        with self.store.lock:
            self._requests.append(entry)

    def requests(self) -> list[RequestRecord]:
        """Every recorded API request, oldest first."""
        with self.store.lock:
            return list(self._requests)

    def request_bodies(self) -> list[bytes]:
        """The raw bodies of every recorded request."""
        return [entry.body for entry in self.requests()]

    def search_requests(self, needle: str | bytes) -> list[RequestRecord]:
        """Requests whose path, query, raw body or decoded body contents contain ``needle``."""
        wanted = needle.encode() if isinstance(needle, str) else needle
        return [entry for entry in self.requests() if any(wanted in view for view in searchable_views(entry))]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self.store.lock:
            self._requests.clear()


class _Server(ThreadingHTTPServer):
    # Watch and keep-alive handler threads must not delay stop(); they notice `stopping` themselves.
    daemon_threads = True
    block_on_close = False


class _Handler(BaseHTTPRequestHandler):
    """Routes one HTTP request to discovery, the object store, a watch or the control API."""

    protocol_version = "HTTP/1.1"
    server_version = "kubeapi-double"
    double: KubeApiDouble

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without TCP_NODELAY the client's delayed ACK
        # adds ~40 ms to every response, which real apiservers do not have.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        # Per-request stderr lines would drown test output; the request log has them.
        return

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    # --- plumbing ------------------------------------------------------------------

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, code: int, payload: bytes, content_type: str = "application/json") -> int:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Cache-Control", "no-cache, private")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)
        return code

    def _send_json(self, code: int, obj: Any) -> int:
        return self._send(code, json.dumps(obj).encode())

    def _handle(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        body = self._read_body()
        content_type = self.headers.get("Content-Type", "")
        if parts.path.startswith(CONTROL_PREFIX):
            try:
                self._control(method, parts.path, query, body)
            except (KeyError, ValueError, ApiError) as exc:
                self._send_json(400, {"error": str(exc)})
            return
        code = 500
        try:
            code = self._api(method, parts.path, query, body, content_type)
        except ApiError as exc:
            code = self._send_json(exc.code, exc.status())
        except (BrokenPipeError, ConnectionResetError):
            code = 499
        except Exception as exc:
            logger.exception("kubeapi double failed on %s %s", method, self.path)
            code = self._send_json(500, ApiError(500, "InternalError", f"kubeapi double: {exc!r}").status())
        finally:
            self.double.record(
                RequestRecord(
                    method,
                    parts.path,
                    query,
                    content_type,
                    self.headers.get("User-Agent", ""),
                    code,
                    body,
                    time.time(),
                )
            )

    # --- Kubernetes API ------------------------------------------------------------

    def _api(self, method: str, path: str, query: dict[str, str], body: bytes, content_type: str) -> int:
        path = path.rstrip("/") or "/"
        if path == "/version":
            major, minor, _ = self.double.kube_version.split(".")
            return self._send_json(
                200,
                {
                    "major": major,
                    "minor": minor,
                    "gitVersion": f"v{self.double.kube_version}",
                    "gitCommit": "kubeapi-double",
                    "gitTreeState": "clean",
                    "buildDate": "2025-01-01T00:00:00Z",
                    "goVersion": "go1.24",
                    "compiler": "gc",
                    "platform": "linux/amd64",
                },
            )
        if path in ("/healthz", "/livez", "/readyz"):
            return self._send(200, b"ok", "text/plain")
        if path == "/openapi/v2":
            # An empty protobuf document: helm finds no schema and skips client-side validation.
            return self._send(200, b"", "application/com.github.proto-openapi.spec.v2.v1.0+protobuf")
        if path.startswith("/openapi/v3"):
            return self._send_json(200, {"paths": {}})
        if path == "/api":
            return self._send_json(200, resources.api_versions_document(f"127.0.0.1:{self.double.port}"))
        if path == "/apis":
            return self._send_json(200, resources.api_group_list_document())
        segments = path.strip("/").split("/")
        if segments[0] == "api" and len(segments) >= 2:
            group, version, rest = "", segments[1], segments[2:]
        elif segments[0] == "apis" and len(segments) >= 3:
            group, version, rest = segments[1], segments[2], segments[3:]
        elif segments[0] == "apis" and len(segments) == 2:
            document = resources.api_group_document(segments[1])
            return self._send_json(200, document) if document else self._not_found()
        else:
            return self._not_found()
        if not rest:
            document = resources.api_resource_list_document(group, version)
            return self._send_json(200, document) if document else self._not_found()
        watch = query.get("watch") in ("1", "true")
        if rest[0] == "watch":
            watch, rest = True, rest[1:]
        namespace: str | None = None
        if len(rest) >= 3 and rest[0] == "namespaces" and rest[2] not in ("status", "finalize"):
            namespace, rest = rest[1], rest[2:]
        rt = resources.by_path(group, version, rest[0]) if rest else None
        if rt is None or (namespace is not None and not rt.namespaced) or len(rest) > 3:
            return self._not_found()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        dry_run = bool(query.get("dryRun"))
        if name is None:
            return self._collection(method, rt, namespace, query, body, content_type, watch, dry_run)
        return self._item(method, rt, namespace, name, subresource, query, body, content_type, dry_run)

    def _not_found(self) -> int:
        return self._send_json(
            404, ApiError(404, "NotFound", "the server could not find the requested resource", {}).status()
        )

    def _decode(self, content_type: str, body: bytes) -> Any:
        try:
            return decode_request_body(content_type, body)
        except (ValueError, yaml.YAMLError, protobuf.ProtobufError) as exc:
            raise errors.bad_request(f"the body of the request could not be decoded: {exc}") from exc

    def _filter(self, namespace: str | None, query: dict[str, str]) -> Filter:
        try:
            return Filter.parse(namespace, query.get("labelSelector"), query.get("fieldSelector"))
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc

    def _collection(
        self,
        method: str,
        rt: ResourceType,
        namespace: str | None,
        query: dict[str, str],
        body: bytes,
        content_type: str,
        watch: bool,
        dry_run: bool,
    ) -> int:
        store = self.double.store
        if method == "GET" and watch:
            return self._watch(rt, self._filter(namespace, query), query)
        if method == "GET":
            items, rv = store.list(rt, self._filter(namespace, query))
            return self._send_json(
                200,
                {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )
        if method == "POST":
            obj = self._decode(content_type, body)
            if not isinstance(obj, dict):
                raise errors.bad_request("the body of the request must be an object")
            return self._send_json(201, store.create(rt, namespace, obj, dry_run=dry_run))
        if method == "DELETE":
            deleted = store.delete_collection(
                rt, self._filter(namespace, query), self._decode(content_type, body)
            )
            return self._send_json(
                200,
                {
                    "kind": f"{rt.kind}List",
                    "apiVersion": rt.api_version,
                    "metadata": {"resourceVersion": str(store.resource_version)},
                    "items": deleted,
                },
            )
        raise errors.method_not_allowed(f"{method} is not supported on a collection")

    def _item(
        self,
        method: str,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        subresource: str | None,
        query: dict[str, str],
        body: bytes,
        content_type: str,
        dry_run: bool,
    ) -> int:
        store = self.double.store
        if subresource not in (None, "status", "finalize"):
            return self._not_found()
        if method == "GET":
            return self._send_json(200, store.get(rt, namespace, name))
        if method == "PUT":
            obj = self._decode(content_type, body)
            if not isinstance(obj, dict):
                raise errors.bad_request("the body of the request must be an object")
            return self._send_json(
                200, store.replace(rt, namespace, name, obj, subresource=subresource, dry_run=dry_run)
            )
        if method == "PATCH":
            patch_type = content_type.split(";")[0].strip()
            if patch_type not in patch.PATCH_TYPES:
                raise ApiError(
                    415, "UnsupportedMediaType", f"the media type {content_type!r} is not supported"
                )
            result, created = store.patch(
                rt,
                namespace,
                name,
                patch_type,
                self._decode(patch_type, body),
                subresource=subresource,
                field_manager=query.get("fieldManager", ""),
                dry_run=dry_run,
            )
            return self._send_json(201 if created else 200, result)
        if method == "DELETE":
            options = self._decode(content_type, body) or {}
            if "propagationPolicy" in query:
                options["propagationPolicy"] = query["propagationPolicy"]
            obj, finished = store.delete(rt, namespace, name, options, dry_run=dry_run)
            if not finished:
                return self._send_json(200, obj)
            details = {"name": name, "kind": rt.plural, "uid": obj["metadata"].get("uid")}
            if rt.group:
                details["group"] = rt.group
            return self._send_json(
                200,
                {
                    "kind": "Status",
                    "apiVersion": "v1",
                    "metadata": {},
                    "status": "Success",
                    "details": details,
                },
            )
        raise errors.method_not_allowed(f"{method} is not supported on an object")

    # --- watch ---------------------------------------------------------------------

    def _write_chunk(self, obj: dict[str, Any]) -> None:
        data = json.dumps(obj).encode() + b"\n"
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_gone(self) -> bool:
        # The watch only writes on events; a peek notices a client that hung up meanwhile.
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            return self.connection.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _watch(self, rt: ResourceType, flt: Filter, query: dict[str, str]) -> int:
        store = self.double.store
        send_initial = query.get("sendInitialEvents") == "true"
        initial, watcher, start_rv = store.open_watch(rt, flt, query.get("resourceVersion", ""), send_initial)
        # The connection is not reused after a watch: closing it is how the stream ends.
        self.close_connection = True
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.send_header("Cache-Control", "no-cache, private")
            self.end_headers()
            for event_type, obj in initial:
                self._write_chunk({"type": event_type, "object": obj})
            if send_initial:
                # client-go's WatchList informer waits for this bookmark before it reports "synced".
                self._write_chunk(
                    {
                        "type": "BOOKMARK",
                        "object": {
                            "kind": rt.kind,
                            "apiVersion": rt.api_version,
                            "metadata": {
                                "resourceVersion": str(start_rv),
                                "annotations": {"k8s.io/initial-events-end": "true"},
                            },
                        },
                    }
                )
            timeout = min(float(query.get("timeoutSeconds") or _MAX_WATCH_SECONDS), _MAX_WATCH_SECONDS)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline and not self.double.stopping.is_set():
                try:
                    event = watcher.events.get(timeout=0.2)
                except queue.Empty:
                    if self._client_gone():
                        break
                    continue
                if event is None:
                    break
                seen = event.for_filter(flt)
                if seen is not None:
                    self._write_chunk({"type": seen[0], "object": seen[1]})
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            pass
        finally:
            store.close_watch(watcher)
        return 200

    # --- control API ---------------------------------------------------------------

    def _control(self, method: str, path: str, query: dict[str, str], body: bytes) -> None:
        double = self.double
        action = path[len(CONTROL_PREFIX) :].rstrip("/")
        data = json.loads(body) if body else {}
        if action == "healthz":
            self._send_json(200, {"ok": True, "url": double.url})
        elif action == "state":
            self._send_json(200, double.state(query.get("kind"), query.get("namespace")))
        elif action == "reset" and method == "POST":
            double.reset()
            self._send_json(200, {"ok": True})
        elif action == "controllers":
            if method == "POST":
                double.set_controllers(bool(data["enabled"]))
            self._send_json(200, {"enabled": double.controllers.enabled})
        elif action == "never-ready" and method == "POST":
            double.set_never_ready(data["namespace"], data.get("name"), bool(data.get("enabled", True)))
            self._send_json(200, {"neverReady": double.state(kind="namespaces")["neverReady"]})
        elif action == "status" and method == "POST":
            self._send_json(
                200, double.set_status(data["kind"], data["name"], data["status"], data.get("namespace"))
            )
        elif action == "requests" and method == "DELETE":
            double.clear_requests()
            self._send_json(200, {"ok": True})
        elif action == "requests":
            self._send_json(200, [entry.summary() for entry in double.requests()])
        elif action == "requests/bodies":
            self._send_json(
                200,
                [
                    {**entry.summary(), "body": base64.b64encode(entry.body).decode()}
                    for entry in double.requests()
                ],
            )
        elif action == "requests/search" and method == "POST":
            self._send_json(200, [entry.summary() for entry in double.search_requests(data["needle"])])
        elif action == "helm-release":
            revision = int(query["revision"]) if query.get("revision") else None
            release = double.helm_release(query["namespace"], query["release"], revision)
            self._send_json(200, {"values": release.get("config") or {}, "release": release})
        else:
            self._send_json(404, {"error": f"unknown control endpoint {method} {path}"})
