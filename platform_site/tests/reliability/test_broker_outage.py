"""Suite 2, broker: a create while the broker is unreachable is stored and answered at once; the
reconciler dispatches it when the broker is back, and a real worker makes the store ready.

The shared Redis is never stopped (other test runs use it): the web process is given a broker address
where nothing listens, which is what a client sees while Redis is down.
"""

from __future__ import annotations

import pytest

from platform_site.tests.reliability.support import free_port, http, web_process
from provisioning.choices import RunStatus
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.models import Store
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.api.conftest import token_for
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# The request must answer, not hang on broker reconnects (CELERY_BROKER_CONNECTION_TIMEOUT is 3 s).
ANSWER_WITHIN_SECONDS = 5


def _status(store_pk: int) -> str | None:
    return Store.objects.filter(pk=store_pk).values_list("status", flat=True).first()


def test_create_during_a_broker_outage_is_stored_and_dispatched_when_it_returns(
    owner, tenant, kube_api, start_worker, tmp_path
):
    token = token_for(owner, expiry=None)
    dead_broker = f"redis://127.0.0.1:{free_port()}/0"
    with web_process(tmp_path, CELERY_BROKER_URL=dead_broker) as base:
        reply = http(
            "POST",
            f"{base}/api/v1/stores/",
            body={"name": "outage-shop", "engine": "woocommerce"},
            headers={"Authorization": f"Token {token}"},
        )
        readiness = http("GET", f"{base}/readyz")

    assert reply.status == 202, reply.body
    assert reply.seconds < ANSWER_WITHIN_SECONDS, f"the API took {reply.seconds:.1f} s"
    assert reply.json()["status"] == StoreStatus.REQUESTED
    # Reported, not gated on: the web pods stay in rotation through a broker outage.
    assert readiness.status == 200 and '"broker": "fail"' in readiness.body
    store = Store.objects.get(name="outage-shop")
    run = ProvisioningRun.objects.get(store=store)
    assert (run.status, run.dispatch_count) == (RunStatus.QUEUED, 0)

    # The broker is back (the normal one) and a worker listens; the reconciler's next pass finds the
    # run that was never sent once it is older than the grace period.
    start_worker(kube_api, HELM_BINARIES["helm4"])
    ProvisioningRun.objects.filter(pk=run.pk).update(created_at=run.created_at.replace(year=2000))
    report = reconcile(access=access_for(kube_api, HELM_BINARIES["helm4"], tmp_path / "helm"))

    assert report.redispatched == [run.pk]
    wait_for(lambda: _status(store.pk) == StoreStatus.READY, timeout=90, what="store ready")
    run.refresh_from_db()
    assert (run.status, run.dispatch_count) == (RunStatus.SUCCEEDED, 1)
    assert ProvisioningRun.objects.filter(store=store).count() == 1


def test_create_while_all_of_redis_is_down_is_still_stored(owner, tenant, tmp_path):
    """In production one Redis is broker and cache (throttle counters); losing both must not turn a
    create into a 500."""
    token = token_for(owner, expiry=None)
    dead = f"redis://127.0.0.1:{free_port()}"
    with web_process(tmp_path, CELERY_BROKER_URL=f"{dead}/0", REDIS_URL=f"{dead}/1") as base:
        reply = http(
            "POST",
            f"{base}/api/v1/stores/",
            body={"name": "no-redis-shop", "engine": "medusa"},
            headers={"Authorization": f"Token {token}"},
        )
    assert reply.status == 202, reply.body
    assert reply.seconds < ANSWER_WITHIN_SECONDS, f"the API took {reply.seconds:.1f} s"
    run = ProvisioningRun.objects.get(store__name="no-redis-shop")
    assert (run.status, run.dispatch_count) == (RunStatus.QUEUED, 0)
