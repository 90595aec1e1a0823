"""Suspend and resume (stores.suspension): every move, every refusal, who may resume, the payment
rule, the helm concurrency cap and the plan count, webhooks; and one suspend/resume run end to end
through real helm against the Kubernetes API double."""

from __future__ import annotations

import json

import pytest

from provisioning.choices import RunKind, RunStatus
from provisioning.failure_reasons import Failure
from provisioning.models import ProvisioningRun
from provisioning.recording import RunRecorder
from provisioning.services import ClaimStatus, provisioning_run_finish
from stores.choices import StoreStatus, SuspensionSource, WebhookEventType
from stores.exceptions import InvalidStoreState, PlanLimitReached
from stores.lifecycle import store_attempt_failed, store_create_check, store_run_claim, store_run_execute
from stores.models import Store, StoreEvent, WebhookDelivery, WebhookMessage
from stores.release import store_helm_values
from stores.suspension import (
    ResumeNotAllowed,
    store_resume,
    store_suspend,
    tenant_set_unpaid,
    tenants_enforce_payment,
)
from stores.tests.factories import StoreFactory
from stores.transitions import store_transition
from stores.webhooks import webhook_delivery_attempt, webhook_endpoint_create
from testkit.helm import HELM_BINARIES, access_for, helm_params
from testkit.webhooks import Receiver

pytestmark = pytest.mark.django_db


def _queued_runs(store: Store) -> list[ProvisioningRun]:
    return list(ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).order_by("id"))


def _finish_install(store: Store, *, to: StoreStatus) -> None:
    """What a worker's successful install run does (claim, then the lifecycle's settle)."""
    (run,) = _queued_runs(store)
    claim = store_run_claim(run_id=run.pk, worker="test:1")
    assert claim.status is ClaimStatus.CLAIMED, claim.reason
    store.refresh_from_db()
    assert store_transition(store_id=store.pk, to=to, reason="installed", only_from=[store.status])
    provisioning_run_finish(run_id=run.pk, succeeded=True, helm_seconds=1.0)


def _suspended(source: SuspensionSource = SuspensionSource.STAFF, **kwargs) -> Store:
    store = StoreFactory(ready=True, **kwargs)
    store_suspend(store=store, source=source, reason="Abuse report #12")
    ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=store.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")
    store.refresh_from_db()
    return store


# ---- suspend ----------------------------------------------------------------------------------------


def test_suspend_records_who_and_why_and_queues_the_install(owner):
    store = StoreFactory(ready=True)

    suspended = store_suspend(
        store=store, source=SuspensionSource.STAFF, reason="Abuse report #12", actor=owner
    )

    assert suspended.status == StoreStatus.SUSPENDING
    assert suspended.suspension_source == SuspensionSource.STAFF
    assert suspended.suspension_reason == "Abuse report #12"
    assert suspended.suspended_by == owner and suspended.suspended_at is not None
    event = StoreEvent.objects.filter(store=store).order_by("-id").first()
    assert (event.old_status, event.new_status, event.reason, event.actor, event.actor_label) == (
        StoreStatus.READY,
        StoreStatus.SUSPENDING,
        "Abuse report #12",
        owner,
        "staff",
    )
    (run,) = _queued_runs(store)
    assert run.kind == RunKind.PROVISION and run.requested_by == owner


def test_suspend_without_a_reason_names_the_source():
    store = store_suspend(store=StoreFactory(ready=True), source=SuspensionSource.TENANT)

    assert store.status_reason == "Suspended by the organisation."


def test_a_degraded_store_can_be_suspended():
    store = StoreFactory(ready=True)
    assert store_transition(store_id=store.pk, to=StoreStatus.DEGRADED, reason="pod crash")

    assert store_suspend(store=store, source=SuspensionSource.STAFF).status == StoreStatus.SUSPENDING


def test_suspending_twice_is_harmless_and_keeps_the_first_reason():
    store = StoreFactory(ready=True)
    store_suspend(store=store, source=SuspensionSource.STAFF, reason="first")

    again = store_suspend(store=store, source=SuspensionSource.TENANT, reason="second")

    assert again.suspension_source == SuspensionSource.STAFF and again.suspension_reason == "first"
    assert len(_queued_runs(store)) == 1


@pytest.mark.parametrize(
    "status",
    [
        StoreStatus.REQUESTED,
        StoreStatus.PROVISIONING,
        StoreStatus.FAILED,
        StoreStatus.DELETING,
        StoreStatus.DELETED,
    ],
)
def test_only_a_running_store_can_be_suspended(status):
    store = StoreFactory(status=status)

    with pytest.raises(InvalidStoreState) as refused:
        store_suspend(store=store, source=SuspensionSource.STAFF)

    assert f"this one is {status}" in refused.value.message
    store.refresh_from_db()
    assert store.status == status and store.suspension_source == ""


# ---- the install run: values, landing status, failures --------------------------------------------------


def test_values_render_suspended_while_the_suspension_stands(settings):
    settings.STORE_PAUSED_BACKEND_HOST = "web.platform.svc.cluster.local"
    store = StoreFactory(ready=True)
    assert store_helm_values(store)["suspended"] is False

    store = store_suspend(store=store, source=SuspensionSource.STAFF)

    values = store_helm_values(Store.objects.select_related("tenant").get(pk=store.pk))
    assert values["suspended"] is True
    assert values["paused"] == {"externalName": "web.platform.svc.cluster.local", "port": 80}


def test_the_suspend_run_is_admitted_without_another_move():
    store = store_suspend(store=StoreFactory(ready=True), source=SuspensionSource.STAFF)
    (run,) = _queued_runs(store)

    claim = store_run_claim(run_id=run.pk, worker="test:1")

    assert claim.status is ClaimStatus.CLAIMED
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDING


def test_a_failed_suspend_ends_failed_with_its_reason_and_a_retry_comes_back_suspended():
    store = store_suspend(store=StoreFactory(ready=True), source=SuspensionSource.STAFF)
    (run,) = _queued_runs(store)
    claim = store_run_claim(run_id=run.pk, worker="test:1")

    store_attempt_failed(
        run=claim.run,
        failure=Failure("helm: context deadline exceeded", transient=False),
        recorder=RunRecorder(claim.run.pk),
    )

    store.refresh_from_db()
    assert store.status == StoreStatus.FAILED
    assert store.status_reason == "helm: context deadline exceeded"
    # The suspension stands: a retry installs `suspended: true` and lands on suspended, not ready.
    assert store.suspension_source == SuspensionSource.STAFF
    from stores.lifecycle import _installed_status, store_retry

    store_retry(store=store)
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert _installed_status(store) == StoreStatus.SUSPENDED


# ---- resume ------------------------------------------------------------------------------------------


def test_staff_resume_clears_the_suspension_and_queues_the_install(owner):
    store = _suspended(SuspensionSource.STAFF)

    resumed = store_resume(store=store, source=SuspensionSource.STAFF, actor=owner)

    assert resumed.status == StoreStatus.RESUMING
    assert (resumed.suspension_source, resumed.suspension_reason, resumed.suspended_by) == ("", "", None)
    event = StoreEvent.objects.filter(store=store).order_by("-id").first()
    assert (event.old_status, event.new_status, event.reason, event.actor) == (
        StoreStatus.SUSPENDED,
        StoreStatus.RESUMING,
        "Resumed by platform staff.",
        owner,
    )
    assert len(_queued_runs(store)) == 1
    assert store_helm_values(Store.objects.select_related("tenant").get(pk=store.pk))["suspended"] is False


def test_the_organisation_resumes_its_own_suspension():
    store = _suspended(SuspensionSource.TENANT)

    assert store_resume(store=store, source=SuspensionSource.TENANT).status == StoreStatus.RESUMING


@pytest.mark.parametrize(
    ("suspended_by", "resumer", "words"),
    [
        (SuspensionSource.STAFF, SuspensionSource.TENANT, "contact support"),
        (SuspensionSource.BILLING, SuspensionSource.TENANT, "unpaid"),
        (SuspensionSource.BILLING, SuspensionSource.STAFF, "unpaid"),
        (SuspensionSource.TENANT, SuspensionSource.BILLING, "cannot be lifted"),
    ],
)
def test_resume_refused_to_who_did_not_suspend(suspended_by, resumer, words):
    store = _suspended(suspended_by)

    with pytest.raises(ResumeNotAllowed) as refused:
        store_resume(store=store, source=resumer)

    assert words in refused.value.message
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED and store.suspension_source == suspended_by
    assert _queued_runs(store) == []


@pytest.mark.parametrize("status", [StoreStatus.READY, StoreStatus.FAILED, StoreStatus.DELETED])
def test_only_a_suspended_store_can_be_resumed(status):
    store = StoreFactory(status=status)

    with pytest.raises(InvalidStoreState) as refused:
        store_resume(store=store, source=SuspensionSource.STAFF)

    assert "Only a suspended store can be resumed" in refused.value.message


def test_resume_while_still_suspending_is_refused():
    store = store_suspend(store=StoreFactory(ready=True), source=SuspensionSource.STAFF)

    with pytest.raises(InvalidStoreState, match="this one is suspending"):
        store_resume(store=store, source=SuspensionSource.STAFF)


def test_a_suspended_store_can_be_torn_down():
    from stores.lifecycle import store_request_teardown

    store = store_request_teardown(store=_suspended())

    assert store.status == StoreStatus.DELETING


# ---- the watcher and reconciler leave it alone ------------------------------------------------------


def test_drift_and_recovery_never_move_a_suspended_store():
    from stores.lifecycle import store_degraded, store_drifted, store_reconfigure, store_recovered

    store = _suspended()

    assert not store_drifted(store_id=store.pk, missing="namespace x")
    assert not store_degraded(store_id=store.pk, reason="0/0 ready")
    assert not store_recovered(store_id=store.pk)
    assert not store_reconfigure(store_id=store.pk, reason="domain verified")
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED


# ---- limits ---------------------------------------------------------------------------------------------


def test_a_suspended_store_counts_against_the_plan(tenant):
    tenant.plan.max_stores = 1
    tenant.plan.save()
    _suspended(tenant=tenant)

    with pytest.raises(PlanLimitReached):
        store_create_check(tenant=tenant, name="another", engine="woocommerce")


def test_a_suspended_store_holds_no_helm_slot(tenant):
    suspended = _suspended(tenant=tenant)
    suspended.cluster.__class__.objects.filter(pk=suspended.cluster_id).update(helm_concurrency=1)
    waiting = StoreFactory(tenant=tenant)
    (run,) = _queued_runs(waiting)

    claim = store_run_claim(run_id=run.pk, worker="test:1")

    assert claim.status is ClaimStatus.CLAIMED, claim.reason


def test_a_suspend_in_flight_does_hold_a_helm_slot(tenant):
    suspending = store_suspend(store=StoreFactory(ready=True, tenant=tenant), source=SuspensionSource.STAFF)
    suspending.cluster.__class__.objects.filter(pk=suspending.cluster_id).update(helm_concurrency=1)
    (suspend_run,) = _queued_runs(suspending)
    assert store_run_claim(run_id=suspend_run.pk, worker="test:1").status is ClaimStatus.CLAIMED
    waiting = StoreFactory(tenant=tenant)
    (run,) = _queued_runs(waiting)

    assert store_run_claim(run_id=run.pk, worker="test:2").status is ClaimStatus.BUSY


# ---- the payment rule ----------------------------------------------------------------------------------


def test_unpaid_tenant_stores_are_suspended_by_billing_and_resumed_once_paid(tenant):
    running = StoreFactory(ready=True, tenant=tenant)
    provisioning = StoreFactory(provisioning=True, tenant=tenant)
    bystander = StoreFactory(ready=True)

    report = tenant_set_unpaid(tenant=tenant, unpaid=True)

    assert report.suspended == [running.name]
    running.refresh_from_db()
    assert running.status == StoreStatus.SUSPENDING and running.suspension_source == SuspensionSource.BILLING
    assert "unpaid" in running.status_reason
    assert Store.objects.get(pk=provisioning.pk).status == StoreStatus.PROVISIONING
    assert Store.objects.get(pk=bystander.pk).status == StoreStatus.READY
    ProvisioningRun.objects.filter(store=running, status=RunStatus.QUEUED).update(status=RunStatus.SUCCEEDED)
    assert store_transition(store_id=running.pk, to=StoreStatus.SUSPENDED, reason="scaled to zero")
    # Still unpaid: the pass leaves it suspended.
    assert tenants_enforce_payment().resumed == []

    report = tenant_set_unpaid(tenant=tenant, unpaid=False)

    assert report.resumed == [running.name]
    assert Store.objects.get(pk=running.pk).status == StoreStatus.RESUMING


def test_paying_does_not_lift_a_staff_suspension(tenant):
    store = _suspended(SuspensionSource.STAFF, tenant=tenant)

    report = tenant_set_unpaid(tenant=tenant, unpaid=False)

    assert report.resumed == []
    assert Store.objects.get(pk=store.pk).status == StoreStatus.SUSPENDED


# ---- webhooks ---------------------------------------------------------------------------------------------


def test_webhooks_announce_suspended_and_resumed(tenant, settings):
    settings.WEBHOOK_ALLOWED_TARGET_CIDRS = ["127.0.0.0/8"]  # the receiver is on loopback
    receiver = Receiver().start()
    try:
        store = StoreFactory(ready=True, tenant=tenant)
        _, secret = webhook_endpoint_create(tenant=tenant, url=receiver.url)
        receiver.secrets.append(secret)
        store_suspend(store=store, source=SuspensionSource.TENANT, reason="holiday")
        _finish_install(store, to=StoreStatus.SUSPENDED)
        store.refresh_from_db()
        store_resume(store=store, source=SuspensionSource.TENANT)
        store.refresh_from_db()
        _finish_install(store, to=StoreStatus.READY)
        for delivery in WebhookDelivery.objects.filter(message__store=store).order_by("id"):
            webhook_delivery_attempt(delivery_id=delivery.pk)
    finally:
        receiver.stop()

    bodies = [json.loads(request["body"]) for request in receiver.requests]
    assert [body["type"] for body in bodies] == ["store.suspended", "store.resumed"]
    assert bodies[0]["data"]["store"]["status"] == StoreStatus.SUSPENDED
    assert bodies[0]["data"]["store"]["status_reason"] == "installed"
    assert all(all(request["valid"].values()) for request in receiver.requests)
    assert set(WebhookMessage.objects.filter(store=store).values_list("event_type", flat=True)) == {
        WebhookEventType.STORE_SUSPENDED,
        WebhookEventType.STORE_RESUMED,
    }


# ---- end to end through real helm and the API double ----------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("helm_binary", helm_params()[:1])
@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_suspend_and_resume_through_helm(engine, helm_binary, kube_api, tenant, owner, tmp_path):
    from stores.lifecycle import store_create

    access = access_for(kube_api, helm_binary, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name=f"paused-{engine}", engine=engine, actor=owner)
    (run,) = _queued_runs(store)
    assert store_run_execute(run_id=run.pk, access=access).outcome == "succeeded"
    claims_before = {
        c["metadata"]["name"] for c in kube_api.objects("persistentvolumeclaims", store.namespace)
    }

    store_suspend(store=store, source=SuspensionSource.STAFF, reason="chargeback", actor=owner)
    (run,) = _queued_runs(store)
    result = store_run_execute(run_id=run.pk, access=access)

    assert result.outcome == "succeeded", result.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED
    workloads = kube_api.objects("deployments", store.namespace) + kube_api.objects(
        "statefulsets", store.namespace
    )
    assert workloads and {w["spec"]["replicas"] for w in workloads} == {0}
    claims = {c["metadata"]["name"] for c in kube_api.objects("persistentvolumeclaims", store.namespace)}
    assert claims >= claims_before
    (ingress,) = kube_api.objects("ingresses", store.namespace)
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] == "store-paused"
    paused = next(
        s for s in kube_api.objects("services", store.namespace) if s["metadata"]["name"] == "store-paused"
    )
    assert paused["spec"]["type"] == "ExternalName"

    store_resume(store=store, source=SuspensionSource.STAFF, actor=owner)
    (run,) = _queued_runs(store)
    assert store_run_execute(run_id=run.pk, access=access).outcome == "succeeded"

    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    workloads = kube_api.objects("deployments", store.namespace) + kube_api.objects(
        "statefulsets", store.namespace
    )
    assert {w["spec"]["replicas"] for w in workloads} == {1}
    (ingress,) = kube_api.objects("ingresses", store.namespace)
    assert ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]["name"] != "store-paused"
    assert "store-paused" not in {
        s["metadata"]["name"] for s in kube_api.objects("services", store.namespace)
    }


@pytest.mark.slow
def test_a_suspend_helm_refuses_fails_with_its_reason_and_the_retry_lands_suspended(
    kube_api, tenant, owner, tmp_path
):
    from stores.lifecycle import store_create, store_retry

    # A helm that refuses upgrades while the flag file exists, the way a cluster refusing the change
    # would, and is the real helm 4 otherwise.
    flag = tmp_path / "refuse-upgrades"
    wrapper = tmp_path / "helm-refusing"
    wrapper.write_text(
        "#!/bin/bash\n"
        f'if [ -e {flag} ] && [ "$1" = upgrade ]; then\n'
        '  echo "Error: UPGRADE FAILED: admission webhook denied the request: frozen by policy" >&2\n'
        "  exit 1\nfi\n"
        f'exec "{HELM_BINARIES["helm4"]}" "$@"\n'
    )
    wrapper.chmod(0o755)
    access = access_for(kube_api, wrapper, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="refused-pause", engine="woocommerce", actor=owner)
    (run,) = _queued_runs(store)
    assert store_run_execute(run_id=run.pk, access=access).outcome == "succeeded"
    flag.touch()

    store_suspend(store=store, source=SuspensionSource.STAFF, reason="chargeback", actor=owner)
    (run,) = _queued_runs(store)
    result = store_run_execute(run_id=run.pk, access=access)

    assert result.outcome == "failed"
    store.refresh_from_db()
    assert store.status == StoreStatus.FAILED
    assert "frozen by policy" in store.status_reason
    assert (
        ProvisioningRun.objects.get(pk=run.pk).error
        and "frozen by policy" in ProvisioningRun.objects.get(pk=run.pk).error
    )
    # Nothing was scaled down: the refusal left the store running as it was.
    assert {d["spec"]["replicas"] for d in kube_api.objects("deployments", store.namespace)} == {1}

    flag.unlink()
    store_retry(store=store, actor=owner)
    (run,) = _queued_runs(store)
    assert store_run_execute(run_id=run.pk, access=access).outcome == "succeeded"

    store.refresh_from_db()
    assert store.status == StoreStatus.SUSPENDED
    assert {d["spec"]["replicas"] for d in kube_api.objects("deployments", store.namespace)} == {0}


def test_the_beat_task_applies_the_payment_rule(tenant):
    from stores.tasks import enforce_payment

    store = StoreFactory(ready=True, tenant=tenant)
    tenant.__class__.objects.filter(pk=tenant.pk).update(unpaid=True)

    enforce_payment()

    store.refresh_from_db()
    assert (store.status, store.suspension_source) == (StoreStatus.SUSPENDING, SuspensionSource.BILLING)
