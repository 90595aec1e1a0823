"""Credentials hand-off: the store owner reads the admin login from the store's Kubernetes Secret.

The values are fetched on each explicit request, returned to the caller and never stored, cached or
logged; every reveal writes an audit event naming who asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kubernetes.client import ApiException
from urllib3.exceptions import HTTPError

from platform_site.errors import ApplicationError
from provisioning import cluster
from provisioning.cluster_access import ClusterAccess, ClusterNotConfigured
from stores.choices import STORE_RUNNING_STATUSES, StoreEventKind
from stores.engines import CREDENTIALS_OBJECT_NAME, engine_spec
from stores.models import Store
from stores.transitions import store_record_event


class CredentialsUnavailable(ApplicationError):
    code = "credentials_unavailable"
    http_status = 409


class ClusterUnavailable(ApplicationError):
    code = "cluster_unavailable"
    http_status = 503


@dataclass(frozen=True)
class StoreCredentials:
    """What a merchant needs to log in to their store's admin."""

    admin_url: str
    username: str
    email: str
    password: str = ""
    username_label: str = "Username"

    def __repr__(self) -> str:  # keep the password out of tracebacks and debug output
        return f"StoreCredentials(admin_url={self.admin_url!r}, username={self.username!r}, password=***)"


def store_credentials_reveal(
    *, store: Store, actor: Any, access: ClusterAccess | None = None
) -> StoreCredentials:
    """Read the store's admin credentials from its Secret and write an audit event. Ready stores only."""
    if store.status not in STORE_RUNNING_STATUSES:
        raise CredentialsUnavailable(
            f"Credentials are available once the store is ready; it is {store.status}."
        )
    access = access or ClusterAccess()
    try:
        api = access.api_client_factory()
        try:
            data = cluster.read_credentials(api, namespace=store.namespace, name=CREDENTIALS_OBJECT_NAME)
        finally:
            api.close()
    except ApiException as exc:
        if exc.status == 404:
            raise CredentialsUnavailable(
                "The store's credentials Secret is missing from the cluster; retry provisioning to recreate it."
            ) from exc
        raise ClusterUnavailable("The cluster did not answer; try again in a minute.") from exc
    except (HTTPError, OSError, ClusterNotConfigured) as exc:
        raise ClusterUnavailable("The cluster did not answer; try again in a minute.") from exc
    who = getattr(actor, "get_username", lambda: str(actor))()
    store_record_event(
        store_id=store.pk,
        kind=StoreEventKind.AUDIT,
        step="credentials-revealed",
        reason=f"Admin credentials revealed to {who}.",
        actor=actor,
    )
    engine = engine_spec(store.engine)
    return StoreCredentials(
        admin_url=f"{store.public_url}{engine.admin_path}",
        username=data.get(engine.login_key, ""),
        email=data.get("admin-email", ""),
        password=data.get("admin-password", ""),
        username_label=engine.login_label,
    )
