"""What a store is, as the executor needs it: a frozen ReleaseSpec (chart, values, labels, credentials)
built from the store, its plan, the engine catalogue and the platform's settings.

No secret is ever in the values: the chart gets only the name of the credentials Secret.
"""

from __future__ import annotations

import ipaddress
import logging
import socket
import urllib.parse
from pathlib import Path
from typing import Any

from django.conf import settings

from platform_site.errors import ApplicationError
from provisioning.cluster import MANAGED_BY_LABEL, MANAGED_BY_VALUE, STORE_LABEL, TENANT_LABEL
from provisioning.specs import CredentialsSpec, ReleaseSpec, RoleBindingSpec, TeardownSpec
from stores.engines import CREDENTIALS_OBJECT_NAME, engine_spec
from stores.models import PlanResources, Store
from stores.selectors import store_primary_domain, store_routed_domains

logger = logging.getLogger(__name__)


class PlanMissesEngine(ApplicationError):
    """The store's plan has no resources row for its engine: staff must add one."""

    code = "plan_incomplete"
    http_status = 409


def store_helm_values(store: Store) -> dict[str, Any]:
    """Helm values for a store, from the store, its plan and the environment."""
    resources = PlanResources.objects.filter(plan_id=store.tenant.plan_id, engine=store.engine).first()
    if resources is None:
        raise PlanMissesEngine(
            f"The plan “{store.tenant.plan}” has no resources for {engine_spec(store.engine).label}; "
            "add them in the admin, then retry."
        )
    values: dict[str, Any] = {
        "store": {
            "name": store.name,
            "title": store.name.replace("-", " ").title(),
            "host": store.host,
            "adminEmail": store_admin_email(store),
        },
        "existingSecret": CREDENTIALS_OBJECT_NAME,
        "ingress": {
            "className": settings.STORE_INGRESS_CLASS,
            "tls": settings.STORE_URL_SCHEME == "https",
            "controller": {
                "namespace": settings.STORE_INGRESS_CONTROLLER_NAMESPACE,
                "podLabels": dict(settings.STORE_INGRESS_CONTROLLER_POD_LABELS),
            },
        },
        "storage": {"className": settings.STORE_STORAGE_CLASS},
        "quota": {"cpu": resources.cpu, "memory": resources.memory, "storage": resources.storage},
        "network": {"clusterCIDRs": list(settings.STORE_CLUSTER_CIDRS)},
        # Only domains whose ownership is proven are routed; each gets a cert-manager Certificate.
        "domains": {
            # A store not saved yet (values rendered ahead, as the NetworkPolicy tests do) has none.
            "hosts": store_routed_domains(store=store) if store.pk else [],
            "clusterIssuer": settings.DOMAIN_CLUSTER_ISSUER,
            # Always one of `hosts` when set (an active domain is routed); the charts refuse otherwise.
            "primary": store_primary_domain(store=store) if store.pk else "",
            # HTTP-01 challenges are answered by cert-manager's solver pods in the store namespace; the
            # charts' default-deny would otherwise keep the ingress controller from reaching them.
            "acmeHttp01Solver": settings.DOMAIN_ACME_HTTP01,
        },
    }
    # The backup Jobs leave the namespace only for the object store (charts' backup-to-object-store).
    values["backup"] = {"egress": store_backup_egress()}
    # Suspended: the charts scale every workload to zero (volumes stay) and point the Ingress at the
    # paused-page Service, an ExternalName for the platform's own web Service (see charts' READMEs).
    values["suspended"] = bool(store.suspension_source)
    values["paused"] = {
        "externalName": settings.STORE_PAUSED_BACKEND_HOST,
        "port": settings.STORE_PAUSED_BACKEND_PORT,
    }
    # The version's image references (EngineVersion.clean allows nothing else) over the chart's own.
    version = store.engine_version
    if version is not None:
        for key, override in version.values.items():
            values[key] = override
    return values


def store_backup_egress() -> dict[str, Any]:
    """The object store's addresses and TCP port for the store charts' backup-to-object-store policy:
    BACKUP_S3_EGRESS when set, else the endpoint host's IPv4 addresses resolved now; no addresses while
    backups are off. The port is BACKUP_S3_EGRESS_PORT, else the endpoint URL's."""
    endpoint = settings.BACKUP_S3_ENDPOINT
    url = urllib.parse.urlsplit(endpoint)
    try:
        url_port = url.port
    except ValueError:
        url_port = None
    port = settings.BACKUP_S3_EGRESS_PORT or url_port or (80 if url.scheme == "http" else 443)
    if settings.BACKUP_S3_EGRESS or not endpoint:
        return {"cidrs": list(settings.BACKUP_S3_EGRESS), "port": port}
    # Explicit CIDRs are the predictable way (settings.py says why); resolving is the fallback for an
    # endpoint outside the cluster whose addresses hold still, and it is loud about it: the policy pins
    # what the worker resolves now, and a Job can reach nothing else until the store's next upgrade.
    return {"cidrs": _resolved_cidrs(url.hostname or ""), "port": port}


def _resolved_cidrs(host: str) -> list[str]:
    try:
        literal = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        if literal.version == 4:
            return [f"{literal}/32"]
        logger.error("BACKUP_S3_ENDPOINT is an IPv6 address; the store charts' policies take IPv4 only.")
        return []
    try:
        infos = socket.getaddrinfo(host, None, family=socket.AF_INET, type=socket.SOCK_STREAM)
    except OSError as exc:
        logger.error(
            "BACKUP_S3_EGRESS is empty and the backup endpoint's host %r did not resolve (%s): the "
            "stores' backup Jobs get no way to the object store. Set BACKUP_S3_EGRESS.",
            host,
            exc,
        )
        return []
    cidrs = sorted({f"{info[4][0]}/32" for info in infos})
    logger.warning(
        "BACKUP_S3_EGRESS is empty: the backup Jobs' policy allows %s, what %r resolves to now. Set "
        "BACKUP_S3_EGRESS to the object store's ranges; resolved addresses go stale.",
        ", ".join(cidrs),
        host,
    )
    return cidrs


def store_admin_email(store: Store) -> str:
    """The store admin's e-mail: the creator's, else admin@<store host>."""
    creator = store.created_by
    if creator is not None and creator.email:
        return creator.email
    return f"admin@{store.host}"


def store_labels(store: Store) -> dict[str, str]:
    """The labels every object the platform itself creates for a store carries."""
    return {MANAGED_BY_LABEL: MANAGED_BY_VALUE, STORE_LABEL: store.name}


def store_namespace_labels(store: Store) -> dict[str, str]:
    """The store namespace's labels: ownership, and the Pod Security level enforced on its pods."""
    return {
        **store_labels(store),
        TENANT_LABEL: store.tenant.slug[:63].rstrip("-"),
        "pod-security.kubernetes.io/enforce": settings.STORE_POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/warn": "restricted",
    }


def _binding(name: str, cluster_role: str, service_account: str) -> RoleBindingSpec:
    namespace, account = service_account.split("/", 1)
    return RoleBindingSpec(name, cluster_role, account, namespace)


def store_role_bindings() -> tuple[RoleBindingSpec, ...]:
    """In-cluster, least privilege: the worker's account gets store-deployer in the store namespace,
    the web pods' account gets the credentials reader there; nothing cluster-wide. None locally."""
    bindings = []
    if settings.PLATFORM_SERVICE_ACCOUNT:
        bindings.append(
            _binding(
                "store-deployer", settings.STORE_DEPLOYER_CLUSTER_ROLE, settings.PLATFORM_SERVICE_ACCOUNT
            )
        )
    if settings.PLATFORM_WEB_SERVICE_ACCOUNT:
        bindings.append(
            _binding(
                "store-credentials-reader",
                settings.STORE_CREDENTIALS_READER_CLUSTER_ROLE,
                settings.PLATFORM_WEB_SERVICE_ACCOUNT,
            )
        )
    return tuple(bindings)


def release_spec_for(store: Store) -> ReleaseSpec:
    """The frozen install of one store (PlanMissesEngine when its plan cannot size it)."""
    engine = engine_spec(store.engine)
    return ReleaseSpec(
        namespace=store.namespace,
        release=store.release_name,
        chart=str(Path(settings.STORE_CHARTS_DIR) / engine.chart),
        chart_label=engine.label,
        values=store_helm_values(store),
        namespace_labels=store_namespace_labels(store),
        credentials=CredentialsSpec(
            name=CREDENTIALS_OBJECT_NAME,
            keys=engine.secret_keys,
            admin_email=store_admin_email(store),
            labels=store_labels(store),
        ),
        bindings=store_role_bindings(),
        helm_timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
        terminating_namespace_wait_seconds=settings.TEARDOWN_NAMESPACE_TIMEOUT,
    )


def teardown_spec_for(store: Store) -> TeardownSpec:
    """The frozen teardown of one store."""
    return TeardownSpec(
        namespace=store.namespace,
        release=store.release_name,
        helm_timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
        namespace_timeout_seconds=settings.TEARDOWN_NAMESPACE_TIMEOUT,
    )
