"""What the executor is asked to do, frozen before anything runs: it never reads a store row."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class RoleBindingSpec:
    """Bind a ServiceAccount to a ClusterRole inside the release's namespace only."""

    name: str
    cluster_role: str
    service_account: str
    service_account_namespace: str


@dataclass(frozen=True)
class CredentialsSpec:
    """The generated-once Secret the chart reads through `existingSecret`."""

    name: str
    keys: tuple[str, ...]
    admin_email: str
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReleaseSpec:
    """Install or upgrade one release in its own namespace."""

    namespace: str
    release: str
    chart: str  # a chart directory
    chart_label: str  # the software's name, for the store's timeline ("WooCommerce")
    values: Mapping[str, Any]
    namespace_labels: Mapping[str, str]
    credentials: CredentialsSpec
    # Made right after the namespace, in order: the worker's own powers there come first.
    bindings: tuple[RoleBindingSpec, ...] = ()
    helm_timeout_seconds: int = 660
    # How long to wait for a namespace left terminating by an earlier teardown (or one deleted from
    # under a ready store) before this attempt gives up: the namespace controller needs its time.
    terminating_namespace_wait_seconds: int = 180


@dataclass(frozen=True)
class TeardownSpec:
    """Uninstall one release and delete its namespace (and with it the volumes)."""

    namespace: str
    release: str
    helm_timeout_seconds: int = 660
    namespace_timeout_seconds: int = 180
