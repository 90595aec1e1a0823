"""The engine against the real helm binary (3 and 4) and the Kubernetes API double, in process."""

import base64
import logging

import pytest
from kubernetes import client

from provisioning.choices import RunKind, RunStatus
from provisioning.models import CommandRecord, ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus
from stores.lifecycle import store_create, store_request_teardown, store_retry, store_run_execute
from stores.models import Store, StoreEvent
from testkit.helm import access_for, helm_params

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


def _latest_run(store, kind=RunKind.PROVISION):
    return ProvisioningRun.objects.filter(store=store, kind=kind).order_by("-id").first()


def _passwords(kube_api, namespace):
    secret = kube_api.get("secrets", "store-credentials", namespace)
    data = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    return {key: value for key, value in data.items() if key not in {"admin-username", "admin-email"}}


def _assert_nowhere(passwords, kube_api, caplog, namespace, release):
    for value in passwords.values():
        helm_requests = [r for r in kube_api.search_requests(value) if "helm" in (r.user_agent or "").lower()]
        assert helm_requests == [], "a password reached helm"
        assert value not in repr(kube_api.helm_release_values(namespace, release))
        assert value not in caplog.text
        for record in CommandRecord.objects.all():
            assert value not in repr(record.argv) and value not in record.output
        for store in Store.objects.all():
            assert value not in store.status_reason
        for event in StoreEvent.objects.all():
            assert value not in event.reason


@pytest.mark.parametrize("helm_binary", helm_params())
@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_provision_then_teardown(engine, helm_binary, kube_api, tenant, owner, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    access = access_for(kube_api, helm_binary, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name=f"shop-{engine}", engine=engine, actor=owner)

    outcome = store_run_execute(run_id=_latest_run(store).pk, access=access)

    assert outcome.outcome == "succeeded", outcome.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.READY and store.ready_at is not None
    namespace = kube_api.get("namespaces", store.namespace)
    labels = namespace["metadata"]["labels"]
    assert labels["app.kubernetes.io/managed-by"] == "store-platform"
    assert labels["platform.example/store"] == store.name
    assert labels["platform.example/tenant"] == tenant.slug
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"  # the default since issue 15
    for kind in ["networkpolicies", "resourcequotas", "limitranges", "deployments", "services", "ingresses"]:
        assert kube_api.objects(kind, store.namespace), f"no {kind} in {store.namespace}"
    quota = kube_api.objects("resourcequotas", store.namespace)[0]
    expected_cpu = {"woocommerce": "1", "medusa": "2"}[engine]
    assert quota["spec"]["hard"]["limits.cpu"] == expected_cpu
    ingress = kube_api.objects("ingresses", store.namespace)[0]
    assert ingress["spec"]["rules"][0]["host"] == f"{store.name}.127.0.0.1.nip.io"
    assert kube_api.helm_release(store.namespace, store.release_name)["info"]["status"] == "deployed"
    values = kube_api.helm_release_values(store.namespace, store.release_name)
    assert values["existingSecret"] == "store-credentials"
    passwords = _passwords(kube_api, store.namespace)
    assert set(passwords) >= {"admin-password", "database-password", "database-root-password"}
    run = _latest_run(store)
    assert run.status == RunStatus.SUCCEEDED and run.helm_seconds > 0
    tools = list(run.commands.values_list("tool", flat=True))
    assert "helm" in tools and "kubernetes-api" in tools
    steps = list(
        StoreEvent.objects.filter(store=store, kind=StoreEventKind.STEP).values_list("step", flat=True)
    )
    assert steps == ["namespace", "secrets", "helm"]
    _assert_nowhere(passwords, kube_api, caplog, store.namespace, store.release_name)

    store_request_teardown(store=store, actor=owner)
    outcome = store_run_execute(run_id=_latest_run(store, RunKind.TEARDOWN).pk, access=access)

    assert outcome.outcome == "succeeded", outcome.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.DELETED and store.deleted_at is not None
    assert kube_api.get("namespaces", store.namespace) is None
    for kind in ["secrets", "deployments", "statefulsets", "persistentvolumeclaims", "services"]:
        assert kube_api.objects(kind, store.namespace) == []


@pytest.mark.parametrize("helm_binary", helm_params())
def test_never_ready_rolls_back_then_retry_succeeds_with_same_password(
    helm_binary, kube_api, tenant, tmp_path, settings
):
    settings.PROVISIONING_HELM_TIMEOUT = 6
    access = access_for(kube_api, helm_binary, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="broken", engine="woocommerce")
    kube_api.set_never_ready(store.namespace)

    outcome = store_run_execute(run_id=_latest_run(store).pk, access=access)

    assert outcome.outcome == "failed"
    store.refresh_from_db()
    assert store.status == StoreStatus.FAILED
    assert "did not become ready in time" in store.status_reason
    assert "ImagePullBackOff" in store.status_reason or "Failed to pull image" in store.status_reason
    assert _latest_run(store).status == RunStatus.FAILED
    releases = kube_api.objects("secrets", store.namespace, label_selector="owner=helm")
    assert all(not s["metadata"]["labels"]["status"].startswith("pending") for s in releases)
    first_passwords = _passwords(kube_api, store.namespace)

    kube_api.set_never_ready(store.namespace, enabled=False)
    run = store_retry(store=store)
    outcome = store_run_execute(run_id=run.pk, access=access)

    assert outcome.outcome == "succeeded", outcome.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    assert _passwords(kube_api, store.namespace) == first_passwords
    assert ProvisioningRun.objects.filter(store=store, kind=RunKind.PROVISION).count() == 2


@pytest.mark.parametrize("helm_binary", helm_params()[:1])
def test_stuck_namespace_is_reported_not_hidden(helm_binary, kube_api, tenant, tmp_path, settings):
    settings.TEARDOWN_NAMESPACE_TIMEOUT = 2
    access = access_for(kube_api, helm_binary, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="sticky", engine="woocommerce")
    assert store_run_execute(run_id=_latest_run(store).pk, access=access).outcome == "succeeded"
    api = access.api_client_factory()
    client.CoreV1Api(api).patch_namespace(
        store.namespace, {"metadata": {"finalizers": ["example.com/stuck"]}}
    )

    store_request_teardown(store=store)
    outcome = store_run_execute(run_id=_latest_run(store, RunKind.TEARDOWN).pk, access=access)

    assert outcome.outcome == "failed"
    store.refresh_from_db()
    assert store.status == StoreStatus.FAILED
    assert "still terminating" in store.status_reason and "example.com/stuck" in store.status_reason


def test_second_delivery_of_the_same_run_is_a_no_op(kube_api, tenant, tmp_path):
    from testkit.helm import HELM_BINARIES

    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="twice", engine="woocommerce")
    run = _latest_run(store)
    assert store_run_execute(run_id=run.pk, access=access).outcome == "succeeded"
    assert store_run_execute(run_id=run.pk, access=access).outcome == "skipped"
    installs = [c for c in CommandRecord.objects.filter(run__store=store, tool="helm") if "upgrade" in c.argv]
    assert len(installs) == 1


def test_finishing_retries_through_a_brief_database_outage(monkeypatch):
    from django.db import OperationalError

    from provisioning.recording import with_database_retry

    monkeypatch.setattr("provisioning.recording.time.sleep", lambda seconds: None)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise OperationalError("server closed the connection unexpectedly")
        return "finished"

    assert with_database_retry(flaky) == "finished" and len(calls) == 3
    with pytest.raises(OperationalError):
        with_database_retry(lambda: (_ for _ in ()).throw(OperationalError("down")), attempts=2)


def _leave_namespace_terminating(access, store):
    """The store's namespace as an interrupted teardown leaves it: ours, deleting, held by a finalizer."""
    from stores.release import store_namespace_labels

    core = client.CoreV1Api(access.api_client_factory())
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=store.namespace,
                labels=store_namespace_labels(store),
                finalizers=["example.com/slow-volume"],
            )
        )
    )
    core.delete_namespace(store.namespace)
    assert core.read_namespace(store.namespace).status.phase == "Terminating"
    return core


def test_provision_waits_for_a_terminating_namespace_then_creates_it(kube_api, tenant, tmp_path):
    import threading

    from testkit.helm import HELM_BINARIES

    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="reborn", engine="woocommerce")
    core = _leave_namespace_terminating(access, store)
    release = threading.Timer(
        1.5, lambda: core.patch_namespace(store.namespace, {"metadata": {"finalizers": None}})
    )
    release.start()
    try:
        outcome = store_run_execute(run_id=_latest_run(store).pk, access=access)
    finally:
        release.cancel()

    assert outcome.outcome == "succeeded", outcome.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    steps = list(store.events.filter(kind=StoreEventKind.STEP).values_list("reason", flat=True))
    assert f"Namespace {store.namespace} is still terminating; waiting until it is gone." in steps
    assert core.read_namespace(store.namespace).status.phase == "Active"


def test_provision_names_what_holds_a_namespace_that_never_finishes_terminating(
    kube_api, tenant, tmp_path, settings
):
    from testkit.helm import HELM_BINARIES

    settings.TEARDOWN_NAMESPACE_TIMEOUT = 2
    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="held", engine="woocommerce")
    _leave_namespace_terminating(access, store)

    outcome = store_run_execute(run_id=_latest_run(store).pk, access=access)

    assert outcome.outcome == "failed"
    failed = store.events.filter(kind=StoreEventKind.TRANSITION, new_status=StoreStatus.FAILED).get()
    assert "still terminating after 2 s" in failed.reason
    assert "example.com/slow-volume" in failed.reason


def _interrupt_an_upgrade(kube_api, access, store, *, until_status, helm_timeout):
    """Start an upgrade that waits on never-ready pods and SIGKILL its helm once the release shows
    `until_status`, as a worker that died or ran out of budget would."""
    import os
    import signal
    import threading

    from provisioning.helm import HelmError
    from stores.release import release_spec_for
    from testkit.helm import helm_pids
    from testkit.waiting import wait_for

    kube_api.set_never_ready(store.namespace)
    spec = release_spec_for(Store.objects.select_related("tenant__plan").get(pk=store.pk))
    helm = access.helm(lambda invocation: None)

    def upgrade():
        try:
            helm.upgrade_install(
                release=spec.release, chart=spec.chart, namespace=spec.namespace, values=dict(spec.values),
                timeout_seconds=helm_timeout,
            )  # fmt: skip
        except HelmError:
            pass  # killed: what it leaves behind is the point

    upgrading = threading.Thread(target=upgrade)
    upgrading.start()
    wait_for(
        lambda: kube_api.helm_release(store.namespace, store.release_name)["info"]["status"] == until_status,
        timeout=60,
        what=f"the release {until_status}",
    )
    for pid in helm_pids(store.namespace):
        os.kill(pid, signal.SIGKILL)
    upgrading.join(30)
    kube_api.set_never_ready(store.namespace, enabled=False)


def _install_again(store, access):
    """What a rollout's upgrade or rollback does: queue another install of the store, and run it."""
    from django.db import transaction

    from provisioning.services import provisioning_run_create
    from stores.transitions import store_transition

    with transaction.atomic():
        assert store_transition(store_id=store.pk, to=StoreStatus.REQUESTED, reason="Upgrading.")
        run = provisioning_run_create(store_id=store.pk, kind=RunKind.PROVISION, cluster_id=store.cluster_id)
    return run, store_run_execute(run_id=run.pk, access=access)


def _revisions(kube_api, store):
    return {
        int(secret["metadata"]["labels"]["version"]): secret["metadata"]["labels"]["status"]
        for secret in kube_api.objects(
            "secrets", store.namespace, label_selector=f"owner=helm,name={store.release_name}"
        )
    }


@pytest.mark.parametrize("helm_binary", helm_params())
def test_a_run_settles_an_upgrade_an_interrupted_run_left_pending_and_installs(
    helm_binary, kube_api, tenant, tmp_path
):
    access = access_for(kube_api, helm_binary, tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="left-pending", engine="woocommerce")
    assert store_run_execute(run_id=_latest_run(store).pk, access=access).outcome == "succeeded"
    _interrupt_an_upgrade(kube_api, access, store, until_status="pending-upgrade", helm_timeout=120)
    assert _revisions(kube_api, store) == {1: "deployed", 2: "pending-upgrade"}

    run, outcome = _install_again(store, access)

    assert outcome.outcome == "succeeded", outcome.detail
    store.refresh_from_db()
    assert store.status == StoreStatus.READY
    # 3 is the rollback to 1 that settled 2 (helm leaves 2's own record as it was); 4 the install
    # this run came for.
    assert {n: s for n, s in _revisions(kube_api, store).items() if n != 2} == {
        1: "superseded", 3: "superseded", 4: "deployed"
    }  # fmt: skip
    assert kube_api.helm_release(store.namespace, store.release_name, revision=3)["info"]["description"] == (
        "Rollback to 1"
    )
    helm_calls = [c.argv[1] for c in CommandRecord.objects.filter(run=run, tool="helm").order_by("pk")]
    assert helm_calls == ["upgrade", "rollback", "upgrade"]
    settled = store.events.get(kind=StoreEventKind.STEP, step="helm-settle")
    assert "revision 2 was left pending-upgrade" in settled.reason


def test_an_upgrade_stopped_during_its_own_rollback_is_settled_onto_the_last_good_revision(
    kube_api, tenant, tmp_path
):
    """helm's --rollback-on-failure had begun: 2 failed (the broken version), 3 pending-rollback. The
    settle goes back to 1, the last revision that was ever good, never onto the broken 2."""
    from testkit.helm import HELM_BINARIES

    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    store, _ = store_create(tenant=tenant, name="mid-rollback", engine="woocommerce")
    assert store_run_execute(run_id=_latest_run(store).pk, access=access).outcome == "succeeded"
    _interrupt_an_upgrade(kube_api, access, store, until_status="pending-rollback", helm_timeout=3)
    assert _revisions(kube_api, store) == {1: "deployed", 2: "failed", 3: "pending-rollback"}

    run, outcome = _install_again(store, access)

    assert outcome.outcome == "succeeded", outcome.detail
    assert kube_api.helm_release(store.namespace, store.release_name, revision=4)["info"]["description"] == (
        "Rollback to 1"
    )
    assert _revisions(kube_api, store)[5] == "deployed"
