"""20 identical POSTs at once: one store, one run, one helm install."""

from __future__ import annotations

import threading

import pytest
from django.db import connections
from django.test import Client

from provisioning.models import CommandRecord, ProvisioningRun
from stores.choices import StoreStatus
from stores.lifecycle import store_run_execute
from stores.models import IdempotencyKey, Store
from stores.tests.api.conftest import token_for
from testkit.helm import HELM_BINARIES, access_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REQUESTS = 20


def _post_all_at_once(token: str, body: dict, headers: dict | None = None) -> list:
    """POST `body` from REQUESTS threads released together; returns the responses."""
    barrier = threading.Barrier(REQUESTS)
    responses: list = [None] * REQUESTS

    def post(index: int) -> None:
        client = Client(HTTP_AUTHORIZATION=f"Token {token}", **(headers or {}))
        try:
            barrier.wait(timeout=30)
            responses[index] = client.post("/api/v1/stores/", body, content_type="application/json")
        finally:
            connections.close_all()  # each thread has its own connection; leave none open

    threads = [threading.Thread(target=post, args=(i,)) for i in range(REQUESTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return responses


def test_twenty_identical_posts_make_one_store_and_one_helm_install(owner, tenant, kube_api, tmp_path):
    responses = _post_all_at_once(token_for(owner), {"name": "stampede", "engine": "woocommerce"})

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * (REQUESTS - 1) + [202], statuses
    assert {r.json()["name"] for r in responses} == {"stampede"}
    assert len({r.json()["latest_run"]["id"] for r in responses}) == 1
    store = Store.objects.get(name="stampede")
    assert ProvisioningRun.objects.filter(store=store).count() == 1

    # The engine in-process rather than a worker: the filesystem broker folder is shared by every
    # checkout's workers on this machine, and another one could consume the task. Run twice, as a
    # duplicate delivery would.
    access = access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm")
    run = ProvisioningRun.objects.get(store=store)
    first = store_run_execute(run_id=run.pk, access=access)
    store_run_execute(run_id=run.pk, access=access)
    assert Store.objects.get(pk=store.pk).status == StoreStatus.READY, first
    helm_installs = [
        record
        for record in CommandRecord.objects.filter(run__store=store, tool="helm")
        if "upgrade" in record.argv
    ]
    assert len(helm_installs) == 1


def test_twenty_posts_with_one_idempotency_key_run_the_command_once(owner, tenant):
    responses = _post_all_at_once(
        token_for(owner), {"name": "keyed-stampede", "engine": "medusa"}, {"HTTP_IDEMPOTENCY_KEY": "one-key"}
    )

    # The first runs the command; the others replay its 202 or are told it is still in progress.
    assert {r.status_code for r in responses} <= {202, 409}
    accepted = [r for r in responses if r.status_code == 202]
    assert accepted and len({r.json()["latest_run"]["id"] for r in accepted}) == 1
    for response in responses:
        if response.status_code == 409:
            assert response.json()["error"]["code"] == "idempotency_key_in_progress"
    assert Store.objects.filter(name="keyed-stampede").count() == 1
    assert IdempotencyKey.objects.get().response_status == 202
