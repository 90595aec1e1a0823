"""Runs waiting for a helm slot: the run that frees a slot hands it to the oldest waiting run it can
start, and every message but a run's latest drops itself."""

from datetime import timedelta

import pytest
from django.utils import timezone

from provisioning.choices import RunKind, RunStatus
from provisioning.models import Cluster, ProvisioningRun
from provisioning.reconcile import redispatch_orphaned_runs
from provisioning.services import (
    provisioning_run_dispatch,
    provisioning_run_finish,
    provisioning_run_message_superseded,
    provisioning_runs_hand_off,
)
from stores.lifecycle import RunOutcome, store_request_teardown, store_run_claim, store_run_execute
from stores.tests.factories import StoreFactory, TenantFactory

pytestmark = pytest.mark.django_db


def _cluster(name, helm_concurrency):
    return Cluster.objects.create(
        name=name, connection="kubeconfig", kubeconfig_sealed="sealed", helm_concurrency=helm_concurrency
    )


def _running(cluster, name):
    store = StoreFactory(tenant=TenantFactory(), cluster=cluster, name=name, provisioning=True)
    return store.runs.get(status=RunStatus.RUNNING)


def _waiting(cluster, name):
    run = StoreFactory(tenant=TenantFactory(), cluster=cluster, name=name).runs.get()
    assert store_run_claim(run_id=run.pk, worker="w:1").status == "busy"
    run.refresh_from_db()
    assert run.told_busy_at is not None and run.status == RunStatus.QUEUED
    return run


def _dispatches(run):
    return ProvisioningRun.objects.get(pk=run.pk).dispatch_count


def _finish(run, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        assert provisioning_run_finish(run_id=run.pk, succeeded=True)


def test_a_freed_slot_goes_to_the_oldest_waiting_run_at_once(settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_CONCURRENCY = 10
    Cluster.objects.all().delete()
    one = _cluster("one-at-a-time", helm_concurrency=1)
    holder = _running(one, "holds-the-slot")
    oldest, younger = _waiting(one, "waited-longest"), _waiting(one, "waited-less")
    sent = {run.pk: _dispatches(run) for run in (oldest, younger)}

    _finish(holder, django_capture_on_commit_callbacks)

    assert _dispatches(oldest) == sent[oldest.pk] + 1  # handed the slot: sent again, now
    assert _dispatches(younger) == sent[younger.pk]
    # While its message travels the handed-off run holds the slot: a second hand-off gives nothing.
    assert provisioning_runs_hand_off() == []
    # The message it had before is superseded and drops itself; the new one claims the slot.
    outcome = store_run_execute(run_id=oldest.pk, dispatch=sent[oldest.pk])
    assert outcome.outcome is RunOutcome.SKIPPED and "sent again" in outcome.detail
    assert ProvisioningRun.objects.get(pk=oldest.pk).status == RunStatus.QUEUED
    assert store_run_claim(run_id=oldest.pk, worker="w:2").status == "claimed"
    assert store_run_claim(run_id=younger.pk, worker="w:2").status == "busy"


def test_a_freed_slot_skips_runs_it_could_not_start(settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_CONCURRENCY = 2
    Cluster.objects.all().delete()
    one, two = _cluster("one", helm_concurrency=1), _cluster("two", helm_concurrency=1)
    on_one, on_two = _running(one, "running-on-one"), _running(two, "running-on-two")
    full_cluster = _waiting(two, "waits-on-two")  # oldest, but its cluster stays full
    store_request_teardown(store=on_two.store)  # its own provision still runs
    same_store = on_two.store.runs.get(kind=RunKind.TEARDOWN)
    assert store_run_claim(run_id=same_store.pk, worker="w:1").status == "busy"
    startable = _waiting(one, "waits-on-one")
    before = {run.pk: _dispatches(run) for run in (full_cluster, same_store, startable)}

    _finish(on_one, django_capture_on_commit_callbacks)

    assert [_dispatches(run) - before[run.pk] for run in (full_cluster, same_store, startable)] == [0, 0, 1]


def test_a_slot_freed_on_one_cluster_can_start_a_run_on_another(settings, django_capture_on_commit_callbacks):
    settings.PROVISIONING_CONCURRENCY = 1  # the platform's cap is what keeps the other run waiting
    Cluster.objects.all().delete()
    one, two = _cluster("one", helm_concurrency=5), _cluster("two", helm_concurrency=5)
    holder = _running(one, "holds-the-platform-slot")
    elsewhere = _waiting(two, "waits-elsewhere")
    before = _dispatches(elsewhere)

    _finish(holder, django_capture_on_commit_callbacks)

    assert _dispatches(elsewhere) == before + 1


def test_a_run_sent_again_supersedes_its_earlier_messages(tenant):
    run = StoreFactory(tenant=tenant, name="sent-twice").runs.get()
    assert provisioning_run_dispatch(run_id=run.pk) and provisioning_run_dispatch(run_id=run.pk)
    run.refresh_from_db()
    assert run.dispatch_count == 2 and run.dispatched_at is not None
    assert provisioning_run_message_superseded(run_id=run.pk, dispatch=1)
    assert not provisioning_run_message_superseded(run_id=run.pk, dispatch=2)
    # A message queued before dispatches were numbered is still honoured.
    assert not provisioning_run_message_superseded(run_id=run.pk, dispatch=None)
    ProvisioningRun.objects.filter(pk=run.pk).update(status=RunStatus.CANCELLED)
    assert provisioning_run_message_superseded(run_id=run.pk, dispatch=2)


def test_a_message_that_was_not_sent_leaves_the_earlier_one_live(tenant, monkeypatch):
    from platform_site.celery import app

    run = StoreFactory(tenant=tenant, name="broker-blinks").runs.get()
    assert provisioning_run_dispatch(run_id=run.pk)
    first_sent_at = ProvisioningRun.objects.get(pk=run.pk).dispatched_at

    def broker_down(*args, **kwargs):
        raise ConnectionRefusedError("broker down")

    monkeypatch.setattr(app, "send_task", broker_down)
    assert not provisioning_run_dispatch(run_id=run.pk)
    run.refresh_from_db()
    assert (run.dispatch_count, run.dispatched_at) == (1, first_sent_at)
    assert not provisioning_run_message_superseded(run_id=run.pk, dispatch=1)


def test_the_reconciler_resends_a_run_not_sent_for_longer_than_the_visibility_timeout(tenant, settings):
    quiet = StoreFactory(tenant=tenant, name="sent-long-ago").runs.get()
    recent = StoreFactory(tenant=TenantFactory(), name="sent-just-now").runs.get()
    now = timezone.now()
    long_ago = now - timedelta(seconds=settings.PROVISIONING_VISIBILITY_TIMEOUT + 60)
    ProvisioningRun.objects.filter(pk__in=[quiet.pk, recent.pk]).update(
        dispatch_count=3, created_at=long_ago - timedelta(hours=1)
    )
    ProvisioningRun.objects.filter(pk=quiet.pk).update(dispatched_at=long_ago)
    ProvisioningRun.objects.filter(pk=recent.pk).update(dispatched_at=now - timedelta(seconds=30))

    assert redispatch_orphaned_runs(now=now) == [quiet.pk]
    assert _dispatches(quiet) == 4 and _dispatches(recent) == 3
