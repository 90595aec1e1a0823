"""Real threads, real database connections: the race for one live name has exactly one winner."""

import threading

import pytest
from django.db import connection, connections

from provisioning.models import ProvisioningRun
from stores.exceptions import StoreNameTaken
from stores.lifecycle import store_create
from stores.models import Store
from stores.tests.factories import TenantFactory

pytestmark = pytest.mark.django_db(transaction=True)


def _race(callables):
    barrier = threading.Barrier(len(callables))
    results: list[object] = [None] * len(callables)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        except Exception as exc:  # the assertion below inspects every outcome
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(callables)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    return results


def test_two_tenants_racing_for_one_name_end_with_exactly_one_store():
    first, second = TenantFactory(), TenantFactory()
    results = _race(
        [
            lambda: store_create(tenant=first, name="contested", engine="woocommerce"),
            lambda: store_create(tenant=second, name="contested", engine="woocommerce"),
        ]
    )
    assert Store.objects.filter(name="contested").count() == 1
    assert ProvisioningRun.objects.count() == 1
    winners = [r for r in results if isinstance(r, tuple)]
    losers = [r for r in results if isinstance(r, StoreNameTaken)]
    assert len(winners) == 1 and len(losers) == 1, results


def test_twenty_identical_creates_of_one_tenant_make_one_store():
    tenant = TenantFactory()
    results = _race([lambda: store_create(tenant=tenant, name="samename", engine="medusa")] * 20)
    assert all(isinstance(r, tuple) for r in results), [r for r in results if not isinstance(r, tuple)]
    assert sum(1 for _, created in results if created) == 1
    assert len({store.pk for store, _ in results}) == 1
    assert Store.objects.count() == 1 and ProvisioningRun.objects.count() == 1


def test_database_vendor_is_reported(record_property):
    record_property("database", connection.vendor)
    assert connection.vendor in {"sqlite", "postgresql"}
