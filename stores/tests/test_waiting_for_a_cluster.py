"""With no cluster configured at all, a new store waits in `requested`: no attempt is spent, no event
is written per try, and it provisions normally once a cluster is configured."""

import pytest
from celery.exceptions import Retry

from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.lifecycle import RunOutcome, store_create, store_run_execute
from stores.tasks import NO_CLUSTER_RETRY_SECONDS, execute_run

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_cluster(settings, monkeypatch, tmp_path):
    settings.KUBECONFIG = ""
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.kube/config
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)


def test_without_a_cluster_the_store_waits_and_spends_no_attempt(no_cluster, tenant):
    store, _ = store_create(tenant=tenant, name="patient", engine="woocommerce")
    run = ProvisioningRun.objects.get(store=store)
    events_before = store.events.count()

    for _ in range(5):
        assert store_run_execute(run_id=run.pk).outcome is RunOutcome.WAITING_FOR_CLUSTER

    store.refresh_from_db()
    run.refresh_from_db()
    assert store.status == StoreStatus.REQUESTED and run.status == RunStatus.QUEUED
    assert store.events.count() == events_before
    assert ProvisioningRun.objects.filter(store=store).count() == 1


def test_the_task_asks_again_later_instead_of_failing(no_cluster, tenant):
    store, _ = store_create(tenant=tenant, name="later", engine="medusa")
    run = ProvisioningRun.objects.get(store=store)
    with pytest.raises(Retry) as retry:
        execute_run.apply(args=[run.pk], throw=True)
    assert retry.value.when == NO_CLUSTER_RETRY_SECONDS
