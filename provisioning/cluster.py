"""Kubernetes operations the orchestrator performs itself (helm does the rest).

Each function takes an `ApiClient`, so tests run them against the project's Kubernetes API test double,
and a `record` callback that stores every call that changed something on the run.
"""

from __future__ import annotations

import base64
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.utils import timezone
from kubernetes import client, watch

# Imported by name, not through `client.X`: the client loads API classes lazily, and the first use
# costs ~0.6 s. Importing here means a Celery worker pays it once, before forking its pool.
from kubernetes.client import ApiClient, ApiException, CoreV1Api, RbacAuthorizationV1Api

from provisioning.redaction import register_secret

MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "store-platform"
STORE_LABEL = "platform.example/store"
TENANT_LABEL = "platform.example/tenant"

Recorder = Callable[[list[str], int, datetime, float, str], None]


class NamespaceNotOurs(Exception):
    """A namespace with the store's name exists but this platform did not create it."""


class NamespaceTerminating(Exception):
    """The namespace is still being deleted from an earlier teardown; provisioning must wait."""


@dataclass(frozen=True)
class NamespaceGone:
    gone: bool
    blocker: str = ""  # when not gone: the finalizer or condition that holds it


def _metadata(obj: Any) -> client.V1ObjectMeta:
    """An API object's metadata; the client types it optional, the apiserver always sends it."""
    return obj.metadata or client.V1ObjectMeta()


def _recorded(record: Recorder | None, argv: list[str], call: Callable[[], Any]) -> Any:
    started_at, started = timezone.now(), time.monotonic()
    try:
        result = call()
    except ApiException as exc:
        if record:
            record(
                argv, exc.status or 1, started_at, time.monotonic() - started, f"{exc.status} {exc.reason}"
            )
        raise
    if record:
        record(argv, 0, started_at, time.monotonic() - started, "")
    return result


def ensure_namespace(
    api: ApiClient, *, name: str, labels: dict[str, str], record: Recorder | None = None
) -> bool:
    """Create the store's namespace, or adopt it if this platform created it earlier. True if created."""
    core = CoreV1Api(api)
    body = client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    try:
        _recorded(record, ["create", "namespace", name], lambda: core.create_namespace(body))
        return True
    except ApiException as exc:
        if exc.status != 409:
            raise
    existing = core.read_namespace(name)
    if (_metadata(existing).labels or {}).get(MANAGED_BY_LABEL) != MANAGED_BY_VALUE:
        raise NamespaceNotOurs(f"namespace {name} exists but was not created by this platform")
    if existing.status and existing.status.phase == "Terminating":
        raise NamespaceTerminating(f"namespace {name} is still terminating from an earlier teardown")
    _recorded(
        record,
        ["patch", "namespace", name, "labels"],
        lambda: core.patch_namespace(name, {"metadata": {"labels": labels}}),
    )
    return False


def ensure_role_binding(
    api: ApiClient,
    *,
    namespace: str,
    name: str,
    cluster_role: str,
    service_account: str,
    service_account_namespace: str,
    record: Recorder | None = None,
) -> None:
    """Bind a platform ServiceAccount to a ClusterRole in this namespace only (kept if it exists)."""
    rbac = RbacAuthorizationV1Api(api)
    body = client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name=name, labels={MANAGED_BY_LABEL: MANAGED_BY_VALUE}),
        role_ref=client.V1RoleRef(
            api_group="rbac.authorization.k8s.io", kind="ClusterRole", name=cluster_role
        ),
        subjects=[
            client.RbacV1Subject(
                kind="ServiceAccount", name=service_account, namespace=service_account_namespace
            )
        ],
    )
    try:
        _recorded(
            record,
            ["create", "rolebinding", name, "-n", namespace],
            lambda: rbac.create_namespaced_role_binding(namespace, body),
        )
    except ApiException as exc:
        if exc.status != 409:
            raise


def generate_credentials(keys: Iterable[str], *, admin_email: str) -> dict[str, str]:
    """Fresh credentials for a store: random secrets, a fixed admin user name and the owner's email."""
    values: dict[str, str] = {}
    for key in keys:
        if key == "admin-username":
            values[key] = "admin"
        elif key == "admin-email":
            values[key] = admin_email
        else:
            values[key] = secrets.token_urlsafe(24)
    return values


def ensure_credentials_secret(
    api: ApiClient,
    *,
    namespace: str,
    name: str,
    keys: Iterable[str],
    admin_email: str,
    labels: dict[str, str],
    record: Recorder | None = None,
) -> bool:
    """Create the credentials Secret only if absent, so retries and upgrades keep the same passwords.

    The values never leave this function except into the Secret itself; they are registered with the
    redactor so no log line or stored output can carry them. Returns True if it was created.
    """
    core = CoreV1Api(api)
    try:
        existing = core.read_namespaced_secret(name, namespace)
        for encoded in (existing.data or {}).values():
            register_secret(base64.b64decode(encoded).decode())
        return False
    except ApiException as exc:
        if exc.status != 404:
            raise
    values = generate_credentials(keys, admin_email=admin_email)
    for key, value in values.items():
        if key not in {"admin-username", "admin-email"}:
            register_secret(value)
    body = client.V1Secret(
        metadata=client.V1ObjectMeta(name=name, labels=labels),
        type="Opaque",
        string_data=values,
    )
    try:
        _recorded(
            record,
            ["create", "secret", name, "-n", namespace],
            lambda: core.create_namespaced_secret(namespace, body),
        )
    except ApiException as exc:
        if exc.status != 409:  # a concurrent attempt created it first; theirs stands
            raise
        return False
    return True


def read_credentials(api: ApiClient, *, namespace: str, name: str) -> dict[str, str]:
    """The store's admin credentials, decoded. Callers must not store or log them."""
    secret = CoreV1Api(api).read_namespaced_secret(name, namespace)
    data = {key: base64.b64decode(value).decode() for key, value in (secret.data or {}).items()}
    for key, value in data.items():
        if key not in {"admin-username", "admin-email"}:
            register_secret(value)
    return data


def namespace_exists(api: ApiClient, *, name: str) -> bool:
    """True if the namespace exists (in any phase)."""
    try:
        CoreV1Api(api).read_namespace(name)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def managed_namespaces(api: ApiClient) -> set[str]:
    """Names of every namespace this platform manages."""
    listing = CoreV1Api(api).list_namespace(label_selector=f"{MANAGED_BY_LABEL}={MANAGED_BY_VALUE}")
    return {str(_metadata(item).name) for item in listing.items}


def delete_namespace(api: ApiClient, *, name: str, record: Recorder | None = None) -> bool:
    """Ask for the namespace's deletion; False if it was already gone."""
    core = CoreV1Api(api)
    try:
        _recorded(record, ["delete", "namespace", name], lambda: core.delete_namespace(name))
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def wait_namespace_gone(api: ApiClient, *, name: str, timeout_seconds: float) -> NamespaceGone:
    """Watch until the namespace is really gone, or report what still holds it at the deadline."""
    core = CoreV1Api(api)
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if not namespace_exists(api, name=name):
            return NamespaceGone(True)
        remaining = max(1, int(deadline - time.monotonic()))
        watcher = watch.Watch()
        try:
            for event in watcher.stream(
                core.list_namespace,
                field_selector=f"metadata.name={name}",
                timeout_seconds=min(remaining, 30),
                _request_timeout=min(remaining, 30) + 5,
            ):
                if event["type"] == "DELETED":
                    return NamespaceGone(True)
        except ApiException as exc:
            if exc.status != 410:  # 410 Gone: the watch expired; start again from a fresh read
                raise
        finally:
            watcher.stop()
    if not namespace_exists(api, name=name):
        return NamespaceGone(True)
    return NamespaceGone(False, namespace_blocker(api, name=name))


def namespace_blocker(api: ApiClient, *, name: str) -> str:
    """A sentence naming what keeps a terminating namespace alive (finalizers and conditions)."""
    namespace = CoreV1Api(api).read_namespace(name)
    parts: list[str] = []
    finalizers = list(_metadata(namespace).finalizers or [])
    if finalizers:
        parts.append(f"finalizers {', '.join(finalizers)}")
    for condition in (namespace.status.conditions if namespace.status else None) or []:
        if condition.status == "True":
            parts.append(f"{condition.type}: {condition.message or condition.reason}")
    return "; ".join(parts) or f"phase {namespace.status.phase if namespace.status else 'unknown'}"


def namespace_diagnostics(api: ApiClient, *, namespace: str, limit: int = 8) -> str:
    """Why workloads in a namespace are not ready, in plain lines: warning events and pod states."""
    core = CoreV1Api(api)
    lines: list[str] = []
    try:
        pods = core.list_namespaced_pod(namespace).items
    except ApiException:
        pods = []
    for pod in pods:
        statuses = (
            [*(pod.status.init_container_statuses or []), *(pod.status.container_statuses or [])]
            if pod.status
            else []
        )
        for status in statuses:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason:
                lines.append(
                    f"pod {_metadata(pod).name}: {waiting.reason}: {waiting.message or ''}".rstrip(": ")
                )
            # A failed hook Job's container says why in its termination message (the store charts
            # write one, or fall back to the end of the log): helm reports only the Job's condition.
            terminated = status.state.terminated if status.state else None
            if terminated and terminated.exit_code:
                message = " ".join((terminated.message or terminated.reason or "").split())
                lines.append(
                    f"pod {_metadata(pod).name}: container {status.name} exited {terminated.exit_code}: "
                    f"{message[:500]}".rstrip(": ")
                )
    try:
        events = core.list_namespaced_event(namespace).items
    except ApiException:
        events = []
    warnings = [event for event in events if event.type == "Warning"]
    warnings.sort(key=lambda event: str(event.last_timestamp or _metadata(event).creation_timestamp or ""))
    for event in warnings[-limit:]:
        involved = event.involved_object
        lines.append(f"{(involved.kind or '').lower()} {involved.name}: {event.reason}: {event.message}")
    unique: list[str] = []
    for line in lines:
        if line not in unique:
            unique.append(line)
    return "\n".join(unique[: limit * 2])
