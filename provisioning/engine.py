"""Executes one provisioning or teardown run: claim, act outside any transaction, re-fetch, finish.

Nothing is held across a helm run: the claim is a short transaction, helm and the Kubernetes calls run
with no transaction and no row lock, and the finish re-reads the store by id.
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections, transaction
from kubernetes.client import ApiClient, ApiException
from urllib3.exceptions import HTTPError

from provisioning import cluster
from provisioning.choices import RunKind
from provisioning.engines import CREDENTIALS_OBJECT_NAME, ENGINES
from provisioning.helm import (
    ClusterUnreachable,
    HelmClient,
    HelmError,
    HelmInvocation,
    HelmTimeout,
    InvalidChart,
    OperationInProgress,
)
from provisioning.kube import ClusterNotConfigured, kubeconfig_path, new_api_client
from provisioning.models import ProvisioningRun
from provisioning.redaction import redact
from provisioning.services import (
    command_record_create,
    provisioning_run_claim,
    provisioning_run_create,
    provisioning_run_finish,
    worker_identity,
)
from stores.choices import StoreEventKind, StoreStatus
from stores.models import PlanResources, Store
from stores.transitions import store_record_event, store_transition
from stores.validators import host_for_store

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Automatic new attempts after a transient failure (cluster unreachable, release busy).
AUTO_RETRY_LIMIT = 3
TRANSIENT_API_STATUSES = frozenset({403, 429, 500, 502, 503, 504})


class TransientProvisioningError(Exception):
    """Worth another attempt later without a person acting."""


@dataclass(frozen=True)
class RunOutcome:
    """What happened to one task delivery."""

    status: str  # succeeded | failed | skipped | busy
    detail: str = ""


@dataclass
class ClusterAccess:
    """How the engine reaches the cluster; tests pass one pointing at the Kubernetes API double."""

    api_client_factory: Callable[[], ApiClient] = new_api_client
    helm_factory: Callable[[Callable[[HelmInvocation], None]], HelmClient] | None = None

    def helm(self, on_invocation: Callable[[HelmInvocation], None]) -> HelmClient:
        if self.helm_factory is not None:
            return self.helm_factory(on_invocation)
        return HelmClient(
            kubeconfig=kubeconfig_path(),
            kube_context=settings.KUBE_CONTEXT or None,
            on_invocation=on_invocation,
        )


def with_database_retry(call: Callable[[], T], *, attempts: int = 6) -> T:
    """Run a short finishing transaction, retrying while the database is briefly unreachable, so a
    finished helm run is never left half-recorded. Each attempt is all-or-nothing."""
    for attempt in range(attempts):
        try:
            return call()
        except (OperationalError, InterfaceError):
            if attempt == attempts - 1:
                raise
            close_old_connections()
            time.sleep(min(8.0, 0.5 * 2**attempt))
    raise AssertionError("unreachable")


def provisioning_run_execute(*, run_id: int, access: ClusterAccess | None = None) -> RunOutcome:
    """Claim and execute one run. Safe to call twice for the same run: the second call is a no-op."""
    access = access or ClusterAccess()
    claim = provisioning_run_claim(run_id=run_id, worker=worker_identity())
    if claim.busy:
        return RunOutcome("busy", claim.reason)
    if claim.run is None:
        logger.info("run %s not started: %s", run_id, claim.reason)
        return RunOutcome("skipped", claim.reason)
    run = claim.run
    if run.kind == RunKind.PROVISION:
        return _provision(run, access)
    return _teardown(run, access)


def store_helm_values(store: Store) -> dict[str, Any]:
    """Helm values for a store, from the store, its plan and the environment. No secret is ever here:
    the chart gets only the name of the credentials Secret."""
    resources = PlanResources.objects.filter(plan_id=store.tenant.plan_id, engine=store.engine).first()
    if resources is None:
        raise InvalidChart(f"plan {store.tenant.plan} has no resources for {store.engine}")
    return {
        "store": {
            "name": store.name,
            "title": store.name.replace("-", " ").title(),
            "host": host_for_store(store.name, settings.STORE_BASE_DOMAIN),
            "adminEmail": _admin_email(store),
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
    }


def _admin_email(store: Store) -> str:
    if store.created_by_id and store.created_by.email:
        return store.created_by.email
    return f"admin@{host_for_store(store.name, settings.STORE_BASE_DOMAIN)}"


def _namespace_labels(store: Store) -> dict[str, str]:
    return {
        cluster.MANAGED_BY_LABEL: cluster.MANAGED_BY_VALUE,
        cluster.STORE_LABEL: store.name,
        cluster.TENANT_LABEL: store.tenant.slug[:63].rstrip("-"),
        "pod-security.kubernetes.io/enforce": settings.STORE_POD_SECURITY_LEVEL,
        "pod-security.kubernetes.io/warn": "restricted",
    }


class _RunRecorder:
    """Stores every change-making call of one run as a CommandRecord (retried through a brief
    database outage: the call it records has already happened)."""

    def __init__(self, run_id: int) -> None:
        self.run_id = run_id
        self.helm_seconds = 0.0

    def kube(
        self, argv: list[str], exit_code: int, started_at: datetime, duration: float, output: str
    ) -> None:
        with_database_retry(
            lambda: command_record_create(
                run_id=self.run_id,
                tool="kubernetes-api",
                argv=argv,
                exit_code=exit_code,
                started_at=started_at,
                duration_seconds=duration,
                output=output,
            )
        )

    def helm(self, invocation: HelmInvocation) -> None:
        self.helm_seconds += invocation.duration_seconds
        output = invocation.stderr
        if invocation.exit_code == 0 and invocation.stdout:
            output = f"{output}\n{_summarise_helm_stdout(invocation.stdout)}".strip()
        with_database_retry(
            lambda: command_record_create(
                run_id=self.run_id,
                tool="helm",
                argv=invocation.argv,
                exit_code=invocation.exit_code,
                started_at=invocation.started_at,
                duration_seconds=invocation.duration_seconds,
                output=output,
            )
        )


def _summarise_helm_stdout(stdout: str) -> str:
    # The full JSON carries the rendered manifest; the run keeps only what a person needs.
    try:
        data = json.loads(stdout)
    except ValueError:
        return stdout[:2000]
    if isinstance(data, dict):
        info = data.get("info", {})
        return f"release {data.get('name')} revision {data.get('version')}: {info.get('status')} ({info.get('description')})"
    return stdout[:2000]


def _step(store: Store, step: str, reason: str) -> None:
    with_database_retry(
        lambda: store_record_event(
            store_id=store.pk, kind=StoreEventKind.STEP, step=step, reason=reason, actor_label="worker"
        )
    )


def _provision(run: ProvisioningRun, access: ClusterAccess) -> RunOutcome:
    store = Store.objects.select_related("tenant__plan", "created_by").get(pk=run.store_id)
    engine = ENGINES[store.engine]
    recorder = _RunRecorder(run.pk)
    api: ApiClient | None = None
    try:
        api = access.api_client_factory()
        cluster.ensure_namespace(
            api, name=store.namespace, labels=_namespace_labels(store), record=recorder.kube
        )
        _step(store, "namespace", f"Namespace {store.namespace} is ready.")
        if settings.PLATFORM_SERVICE_ACCOUNT:
            sa_namespace, sa_name = settings.PLATFORM_SERVICE_ACCOUNT.split("/", 1)
            cluster.ensure_role_binding(
                api,
                namespace=store.namespace,
                cluster_role=settings.STORE_DEPLOYER_CLUSTER_ROLE,
                service_account=sa_name,
                service_account_namespace=sa_namespace,
                record=recorder.kube,
            )
        created = cluster.ensure_credentials_secret(
            api,
            namespace=store.namespace,
            name=CREDENTIALS_OBJECT_NAME,
            keys=engine.secret_keys,
            admin_email=_admin_email(store),
            labels={cluster.MANAGED_BY_LABEL: cluster.MANAGED_BY_VALUE, cluster.STORE_LABEL: store.name},
            record=recorder.kube,
        )
        _step(store, "secrets", "Credentials generated." if created else "Existing credentials kept.")
        values = store_helm_values(store)
        helm = access.helm(recorder.helm)
        _step(store, "helm", f"Installing the {engine.label} chart with helm.")
        release = helm.upgrade_install(
            release=store.release_name,
            chart=str(Path(settings.STORE_CHARTS_DIR) / engine.chart),
            namespace=store.namespace,
            values=values,
            timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
        )
    except (
        ClusterUnreachable,
        OperationInProgress,
        ClusterNotConfigured,
        cluster.NamespaceTerminating,
    ) as exc:
        return _fail_provision(run, store, _plain_reason(exc), recorder, transient=True)
    except HelmError as exc:
        diagnostics = _diagnostics(api, store.namespace) if isinstance(exc, HelmTimeout) else ""
        return _fail_provision(run, store, _plain_reason(exc, diagnostics), recorder, transient=False)
    except SoftTimeLimitExceeded:
        # The task's soft limit (PROVISIONING_TIMEOUT): HelmClient has already sent helm SIGTERM and
        # waited for it to roll back, so the run can be finished here with the cluster's reason.
        reason = (
            f"The store's workloads did not become ready within the {settings.PROVISIONING_TIMEOUT} s "
            "provisioning budget, so the install was rolled back."
        )
        return _fail_provision(
            run,
            store,
            _plain_reason(Exception(reason), _diagnostics(api, store.namespace)),
            recorder,
            transient=False,
        )
    except (ApiException, HTTPError, OSError, cluster.NamespaceNotOurs) as exc:
        # 403 counts as transient: a RoleBinding created a moment ago may not be in force yet.
        transient = (
            isinstance(exc, HTTPError | OSError) or getattr(exc, "status", 0) in TRANSIENT_API_STATUSES
        )
        return _fail_provision(run, store, _plain_reason(exc), recorder, transient=transient)
    finally:
        if api is not None:
            api.close()

    def finish() -> bool:
        with transaction.atomic():
            moved = store_transition(
                store_id=store.pk,
                to=StoreStatus.READY,
                reason=f"Release {release.name} revision {release.revision} deployed.",
                actor_label="worker",
                only_from=[StoreStatus.PROVISIONING],
            )
            provisioning_run_finish(run_id=run.pk, succeeded=True, helm_seconds=recorder.helm_seconds)
        return moved

    moved = with_database_retry(finish)
    if not moved:
        logger.info("store %s moved on while provisioning (now %s)", store.name, _current_status(store))
    return RunOutcome("succeeded", f"revision {release.revision}")


def _current_status(store: Store) -> str:
    return Store.objects.filter(pk=store.pk).values_list("status", flat=True).first() or "gone"


def _diagnostics(api: ApiClient | None, namespace: str) -> str:
    # Read before anything is cleaned up: the failed pods' events are the most useful reason.
    if api is None:
        return ""
    try:
        return cluster.namespace_diagnostics(api, namespace=namespace)
    except (ApiException, HTTPError, OSError):
        return ""


def _plain_reason(exc: BaseException, diagnostics: str = "") -> str:
    if isinstance(exc, HelmTimeout):
        text = (
            "The store's workloads did not become ready in time, so the install was rolled back. "
            f"helm said: {exc.message}"
        )
    elif isinstance(exc, HelmError):
        text = f"{exc.reason[:1].upper()}{exc.reason[1:]}. helm said: {exc.message}"
    elif isinstance(exc, ClusterNotConfigured):
        text = f"No Kubernetes cluster is configured: {exc}."
    elif isinstance(exc, ApiException):
        text = f"The Kubernetes API refused a request ({exc.status} {exc.reason})."
    else:
        text = f"{exc}"
    if "exceeded quota" in diagnostics:
        # The ResourceQuota admission plugin refused the pods: no wait or retry can fix that.
        text = (
            "The cluster refused the store's pods because they exceed the plan's resource quota; "
            f"give the plan more CPU or memory for this engine, then retry. {text}"
        )
    if diagnostics:
        text = f"{text}\nWhat the cluster reported:\n{diagnostics}"
    return redact(text)


def _fail_provision(
    run: ProvisioningRun, store: Store, reason: str, recorder: _RunRecorder, *, transient: bool
) -> RunOutcome:
    with_database_retry(
        lambda: provisioning_run_finish(
            run_id=run.pk, succeeded=False, error=reason, helm_seconds=recorder.helm_seconds
        )
    )
    auto_retries = ProvisioningRun.objects.filter(store_id=store.pk, kind=RunKind.PROVISION).count()
    will_retry = transient and auto_retries <= AUTO_RETRY_LIMIT
    suffix = f" Retrying automatically (attempt {auto_retries + 1})." if will_retry else ""
    moved = store_transition(
        store_id=store.pk,
        to=StoreStatus.FAILED,
        reason=f"{reason}{suffix}",
        actor_label="worker",
        only_from=[StoreStatus.PROVISIONING],
    )
    if moved and will_retry:
        # A new run row per attempt; backoff with jitter so a flapping cluster is not hammered.
        delay = min(60.0, 2.0**auto_retries) + secrets.SystemRandom().uniform(0, 1)
        with transaction.atomic():
            if store_transition(
                store_id=store.pk, to=StoreStatus.REQUESTED, reason="Automatic retry.", actor_label="worker"
            ):
                provisioning_run_create(store=store, kind=RunKind.PROVISION, countdown=delay)
    logger.warning("provisioning of %s failed: %s", store.name, reason)
    return RunOutcome("failed", reason)


def _teardown(run: ProvisioningRun, access: ClusterAccess) -> RunOutcome:
    store = Store.objects.select_related("tenant").get(pk=run.store_id)
    recorder = _RunRecorder(run.pk)
    api: ApiClient | None = None
    try:
        api = access.api_client_factory()
        helm = access.helm(recorder.helm)
        removed = helm.uninstall(
            release=store.release_name,
            namespace=store.namespace,
            timeout_seconds=settings.PROVISIONING_HELM_TIMEOUT,
        )
        _step(store, "helm-uninstall", "Release removed." if removed else "No release was installed.")
        cluster.delete_namespace(api, name=store.namespace, record=recorder.kube)
        _step(store, "namespace-delete", f"Deleting namespace {store.namespace} and its volumes.")
        started = time.monotonic()
        gone = cluster.wait_namespace_gone(
            api, name=store.namespace, timeout_seconds=settings.TEARDOWN_NAMESPACE_TIMEOUT
        )
    except (HelmError, ApiException, HTTPError, OSError, ClusterNotConfigured) as exc:
        return _fail_teardown(run, store, f"Teardown could not finish: {_plain_reason(exc)}", recorder)
    except SoftTimeLimitExceeded:
        return _fail_teardown(
            run,
            store,
            f"Teardown did not finish within the {settings.PROVISIONING_TIMEOUT} s provisioning budget; "
            "retry it once the cluster is healthy.",
            recorder,
        )
    finally:
        if api is not None:
            api.close()
    if not gone.gone:
        waited = int(time.monotonic() - started)
        return _fail_teardown(
            run,
            store,
            f"Namespace {store.namespace} is still terminating after {waited} s, blocked by {gone.blocker}. "
            "Remove what blocks it, then retry the teardown.",
            recorder,
        )

    def finish() -> None:
        with transaction.atomic():
            store_transition(
                store_id=store.pk,
                to=StoreStatus.DELETED,
                reason="Release, namespace and volumes removed.",
                actor_label="worker",
                only_from=[StoreStatus.DELETING],
            )
            provisioning_run_finish(run_id=run.pk, succeeded=True, helm_seconds=recorder.helm_seconds)

    with_database_retry(finish)
    return RunOutcome("succeeded", "deleted")


def _fail_teardown(run: ProvisioningRun, store: Store, reason: str, recorder: _RunRecorder) -> RunOutcome:
    provisioning_run_finish(run_id=run.pk, succeeded=False, error=reason, helm_seconds=recorder.helm_seconds)
    store_transition(
        store_id=store.pk,
        to=StoreStatus.FAILED,
        reason=reason,
        actor_label="worker",
        only_from=[StoreStatus.DELETING],
    )
    logger.warning("teardown of %s failed: %s", store.name, reason)
    return RunOutcome("failed", reason)
