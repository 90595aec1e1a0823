import pytest

from provisioning.choices import RunKind, RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreEventKind, StoreStatus
from stores.exceptions import (
    AccountExists,
    EngineUnavailable,
    InvalidStoreState,
    PlanLimitReached,
    StoreNameInvalid,
    StoreNameTaken,
)
from stores.lifecycle import store_create, store_request_teardown, store_retry
from stores.models import Store, StoreEvent
from stores.services import tenant_create, user_signup
from stores.tests.factories import UserFactory
from stores.transitions import store_transition

pytestmark = pytest.mark.django_db


def test_create_stores_requested_store_with_queued_run_and_event(
    tenant, owner, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks() as callbacks:
        store, created = store_create(tenant=tenant, name="coffee", engine="woocommerce", actor=owner)
    assert created
    assert store.status == StoreStatus.REQUESTED
    assert store.namespace == "store-coffee"
    assert store.release_name == "coffee"
    assert store.public_url == "http://coffee.127.0.0.1.nip.io/"
    run = ProvisioningRun.objects.get(store=store)
    assert (run.kind, run.status, run.attempt) == (RunKind.PROVISION, RunStatus.QUEUED, 1)
    assert run.celery_task_id
    event = StoreEvent.objects.get(store=store)
    assert (event.old_status, event.new_status, event.actor) == ("", StoreStatus.REQUESTED, owner)
    # Dispatch waits for the commit; nothing was sent inside the transaction.
    assert len(callbacks) == 1


def test_create_is_idempotent_for_the_same_tenant(tenant):
    first, created_first = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    second, created_second = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    assert (created_first, created_second) == (True, False)
    assert first.pk == second.pk
    assert Store.objects.count() == 1
    assert ProvisioningRun.objects.count() == 1


def test_same_name_other_engine_for_same_tenant_is_a_conflict(tenant):
    store_create(tenant=tenant, name="coffee", engine="woocommerce")
    with pytest.raises(StoreNameTaken, match="WooCommerce store"):
        store_create(tenant=tenant, name="coffee", engine="medusa")


def test_other_tenant_gets_a_conflict(tenant, other_tenant):
    store_create(tenant=tenant, name="coffee", engine="woocommerce")
    with pytest.raises(StoreNameTaken) as raised:
        store_create(tenant=other_tenant, name="coffee", engine="woocommerce")
    assert raised.value.http_status == 409
    assert "already taken" in raised.value.message
    assert Store.objects.count() == 1


def test_invalid_name_is_refused_and_nothing_is_written(tenant):
    with pytest.raises(StoreNameInvalid) as raised:
        store_create(tenant=tenant, name="Bad_Name", engine="woocommerce")
    assert "lowercase" in raised.value.fields["name"][0]
    assert Store.objects.count() == 0 and ProvisioningRun.objects.count() == 0


def test_unknown_engine_is_refused(tenant):
    with pytest.raises(EngineUnavailable, match="medusa, woocommerce"):
        store_create(tenant=tenant, name="coffee", engine="magento")


def test_plan_limit_is_enforced_and_named(tenant):
    for name in ["one-shop", "two-shop", "three-shop"]:
        store_create(tenant=tenant, name=name, engine="woocommerce")
    with pytest.raises(PlanLimitReached, match="“Starter” allows 3 stores"):
        store_create(tenant=tenant, name="four-shop", engine="woocommerce")


def test_deleted_store_frees_name_and_plan_slot_only_after_teardown(tenant, other_tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    store_request_teardown(store=store)
    with pytest.raises(StoreNameTaken):
        store_create(tenant=other_tenant, name="coffee", engine="woocommerce")
    assert store_transition(store_id=store.pk, to=StoreStatus.DELETED, reason="gone")
    again, created = store_create(tenant=other_tenant, name="coffee", engine="woocommerce")
    assert created and again.pk != store.pk


def test_teardown_cancels_queued_provision_and_queues_teardown(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    store = store_request_teardown(store=store)
    assert store.status == StoreStatus.DELETING
    runs = {run.kind: run.status for run in ProvisioningRun.objects.filter(store=store)}
    assert runs == {RunKind.PROVISION: RunStatus.CANCELLED, RunKind.TEARDOWN: RunStatus.QUEUED}


def test_teardown_twice_is_harmless(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    store_request_teardown(store=store)
    store_request_teardown(store=store)
    assert ProvisioningRun.objects.filter(store=store, kind=RunKind.TEARDOWN).count() == 1


def test_retry_only_from_failed_and_creates_a_new_attempt(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    with pytest.raises(InvalidStoreState, match="Only a failed store"):
        store_retry(store=store)
    first_run = ProvisioningRun.objects.get(store=store)
    ProvisioningRun.objects.filter(pk=first_run.pk).update(status=RunStatus.FAILED)
    assert store_transition(store_id=store.pk, to=StoreStatus.FAILED, reason="boom")
    run = store_retry(store=store)
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert (run.kind, run.attempt, run.status) == (RunKind.PROVISION, 2, RunStatus.QUEUED)
    first_run.refresh_from_db()
    assert first_run.status == RunStatus.FAILED  # history kept


def test_retry_after_failed_teardown_retries_the_teardown(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    store_request_teardown(store=store)
    ProvisioningRun.objects.filter(store=store, kind=RunKind.TEARDOWN).update(status=RunStatus.FAILED)
    assert store_transition(store_id=store.pk, to=StoreStatus.FAILED, reason="namespace stuck")
    run = store_retry(store=store)
    store.refresh_from_db()
    assert (store.status, run.kind, run.attempt) == (StoreStatus.DELETING, RunKind.TEARDOWN, 2)


def test_transition_refuses_moves_not_in_the_map(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    assert not store_transition(store_id=store.pk, to=StoreStatus.READY, reason="skip ahead")
    assert not store_transition(store_id=store.pk, to=StoreStatus.DELETED, reason="skip ahead")
    store.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED
    assert StoreEvent.objects.filter(store=store, kind=StoreEventKind.TRANSITION).count() == 1


def test_transition_writes_event_with_old_new_reason_actor(tenant, owner):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    assert store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING, reason="started", actor=owner)
    event = StoreEvent.objects.filter(store=store).last()
    assert (event.old_status, event.new_status, event.reason, event.actor) == (
        StoreStatus.REQUESTED,
        StoreStatus.PROVISIONING,
        "started",
        owner,
    )


def test_transition_with_only_from_loses_when_status_moved(tenant):
    store, _ = store_create(tenant=tenant, name="coffee", engine="woocommerce")
    assert not store_transition(
        store_id=store.pk, to=StoreStatus.FAILED, only_from=[StoreStatus.PROVISIONING]
    )


def test_signup_creates_user_tenant_on_default_plan_and_owner_membership():
    user = user_signup(email="Ann@Example.com", password="a long passphrase 42", organisation="Ann's Coffee")
    membership = user.memberships.get()
    assert user.username == "ann@example.com"
    assert membership.role == "owner"
    assert membership.tenant.plan.is_default
    assert membership.tenant.slug == "anns-coffee"


def test_signup_with_existing_email_is_refused():
    UserFactory(username="ann@example.com")
    with pytest.raises(AccountExists, match="already exists"):
        user_signup(email="ANN@example.com", password="a long passphrase 42", organisation="Other")


def test_tenant_slugs_stay_unique():
    first = tenant_create(name="Acme")
    second = tenant_create(name="Acme")
    assert (first.slug, second.slug) == ("acme", "acme-2")


def _fail_the_queued_attempt_transiently(store):
    from provisioning.failure_reasons import Failure
    from provisioning.recording import RunRecorder
    from stores.lifecycle import store_attempt_failed, store_run_claim

    run = ProvisioningRun.objects.filter(store=store, status=RunStatus.QUEUED).get()
    claim = store_run_claim(run_id=run.pk, worker="test:1")
    store_attempt_failed(
        run=claim.run,
        failure=Failure("The cluster did not answer.", transient=True),
        recorder=RunRecorder(run.pk),
    )
    store.refresh_from_db()
    return store


def test_a_long_lived_stores_earlier_installs_spend_none_of_its_automatic_retries(tenant):
    from provisioning.retry_policy import AUTO_RETRY_LIMIT

    store, _ = store_create(tenant=tenant, name="veteran", engine="woocommerce")
    # Installed, then upgraded, suspended and resumed: five provision runs that all succeeded.
    ProvisioningRun.objects.filter(store=store).update(status=RunStatus.SUCCEEDED)
    for attempt in range(2, 6):
        ProvisioningRun.objects.create(
            store=store, kind=RunKind.PROVISION, status=RunStatus.SUCCEEDED, attempt=attempt
        )
    assert store_transition(store_id=store.pk, to=StoreStatus.PROVISIONING, reason="installing")
    assert store_transition(store_id=store.pk, to=StoreStatus.READY, reason="installed")
    assert store_transition(store_id=store.pk, to=StoreStatus.REQUESTED, reason="Upgrading.")
    ProvisioningRun.objects.create(store=store, kind=RunKind.PROVISION, status=RunStatus.QUEUED, attempt=6)

    for attempt in range(1, AUTO_RETRY_LIMIT + 1):
        store = _fail_the_queued_attempt_transiently(store)
        assert store.status == StoreStatus.REQUESTED, f"attempt {attempt} was not retried"
    store = _fail_the_queued_attempt_transiently(store)

    assert store.status == StoreStatus.FAILED
    assert store.status_reason.endswith("Retry when the cluster is healthy.")
    failures = StoreEvent.objects.filter(store=store, new_status=StoreStatus.FAILED).order_by("pk")
    retried = ["Retrying automatically" in event.reason for event in failures]
    assert retried == [True] * AUTO_RETRY_LIMIT + [False]
