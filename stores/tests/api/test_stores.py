"""The store endpoints: list, create, detail, delete, retry, events and plan, and each of their errors."""

from __future__ import annotations

import pytest

from provisioning.choices import RunKind
from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.models import Plan, Store
from stores.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

STORES = "/api/v1/stores/"


def _error(response):
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}, body
    return body["error"]


# --- create ------------------------------------------------------------------------------------------


def test_create_is_accepted_with_the_store_and_its_queued_run(api, tenant):
    response = api.post(STORES, {"name": "acme-shop", "engine": "woocommerce"}, format="json")

    assert response.status_code == 202
    body = response.json()
    assert body["name"] == "acme-shop" and body["engine"] == "woocommerce" and body["status"] == "requested"
    assert body["public_url"].startswith("http") and "acme-shop." in body["public_url"]
    assert body["latest_run"]["kind"] == "provision" and body["latest_run"]["status"] == "queued"
    assert response["Location"] == body["url"] and body["url"].endswith("/api/v1/stores/acme-shop/")
    assert type(response.headers["Location"]) is str  # wsgiref rejects str subclasses in headers
    store = Store.objects.get(name="acme-shop")
    assert store.tenant == tenant and body["latest_run"]["id"] == store.runs.get().pk
    assert "namespace" not in body and "tenant" not in body


def test_a_create_never_touches_the_kubernetes_client(api, monkeypatch):
    # The request path writes rows and enqueues; only the worker talks to a cluster. A client made
    # here (even an idle one) would cost the request its setup and tie the web tier to the cluster.
    def refuse(*args, **kwargs):
        raise AssertionError("the request path made a Kubernetes API client")

    monkeypatch.setattr("kubernetes.client.ApiClient.__init__", refuse)

    response = api.post(STORES, {"name": "no-cluster-call", "engine": "woocommerce"}, format="json")

    assert response.status_code == 202, response.json()


def test_repeating_a_create_returns_the_existing_store_with_200(api):
    first = api.post(STORES, {"name": "twice", "engine": "medusa"}, format="json")
    second = api.post(STORES, {"name": "twice", "engine": "medusa"}, format="json")

    assert (first.status_code, second.status_code) == (202, 200)
    assert (
        second.json()["name"] == "twice"
        and second.json()["latest_run"]["id"] == first.json()["latest_run"]["id"]
    )
    assert Store.objects.filter(name="twice").count() == 1
    assert ProvisioningRun.objects.filter(store__name="twice").count() == 1


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("Acme", "Store name must be lowercase. Try “acme”."),
        ("my shop", "Store name cannot contain spaces or other whitespace. Try “my-shop”."),
        ("ab", "Store name must be at least 3 characters long. Try “ab-shop”."),
        ("admin", "“admin” is reserved by the platform. Try “admin-shop”."),
        ("", "This field may not be blank."),
    ],
)
def test_invalid_name_is_a_400_with_the_shared_validators_message(api, name, message):
    response = api.post(STORES, {"name": name, "engine": "woocommerce"}, format="json")

    assert response.status_code == 400
    error = _error(response)
    assert error["code"] == "invalid" and error["fields"] == {"name": [message]}
    assert not Store.objects.exists()


def test_missing_fields_and_unknown_engine_are_reported_per_field(api):
    response = api.post(STORES, {"engine": "magento"}, format="json")

    assert response.status_code == 400
    fields = _error(response)["fields"]
    assert fields["name"] == ["This field is required."]
    assert fields["engine"] == ['"magento" is not a valid choice.']


@pytest.mark.parametrize("field", ["status", "tenant", "namespace", "colour"])
def test_unknown_or_read_only_fields_are_rejected_by_name(api, field):
    response = api.post(STORES, {"name": "sneaky", "engine": "woocommerce", field: "x"}, format="json")

    assert response.status_code == 400
    assert _error(response)["fields"] == {
        field: ["Unknown or read-only field; this endpoint accepts only: engine, name."]
    }
    assert not Store.objects.exists()


def test_a_body_that_is_not_json_is_a_415(api):
    response = api.post(
        STORES, "name=acme&engine=woocommerce", content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 415
    assert _error(response)["code"] == "unsupported_media_type"

    response = api.post(STORES, "acme", content_type="text/plain")
    assert response.status_code == 415


def test_malformed_json_is_a_400(api):
    response = api.post(STORES, '{"name": "acme",', content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["code"] == "parse_error"

    response = api.post(STORES, '["acme"]', content_type="application/json")
    assert response.status_code == 400
    assert _error(response)["fields"]["non_field_errors"]


def test_a_name_taken_by_another_tenant_is_a_409(api, other_tenant):
    StoreFactory(tenant=other_tenant, name="popular")

    response = api.post(STORES, {"name": "popular", "engine": "woocommerce"}, format="json")

    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "name_taken" and "already taken" in error["message"]
    assert error["fields"] == {"name": ["The name “popular” is already taken."]}


def test_the_same_name_with_another_engine_is_a_409(api, tenant):
    StoreFactory(tenant=tenant, name="dual")
    response = api.post(STORES, {"name": "dual", "engine": "medusa"}, format="json")
    assert response.status_code == 409 and _error(response)["code"] == "name_taken"


def test_the_plan_limit_is_a_409_naming_the_plan(api, tenant):
    tenant.plan = Plan.objects.create(name="Tiny", max_stores=1)
    tenant.save()
    StoreFactory(tenant=tenant, name="only-one")

    response = api.post(STORES, {"name": "one-more", "engine": "woocommerce"}, format="json")

    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "plan_limit"
    assert error["message"] == "Your plan “Tiny” allows 1 store; delete one or upgrade your plan."


# --- list and detail ---------------------------------------------------------------------------------


def test_list_shows_only_the_callers_stores_newest_first_with_pagination(api, tenant, other_tenant):
    for name in ["first", "second", "third"]:
        StoreFactory(tenant=tenant, name=name)
    StoreFactory(tenant=other_tenant, name="not-mine")

    response = api.get(STORES)

    assert response.status_code == 200
    body = response.json()
    assert body["count"] == 3 and [s["name"] for s in body["results"]] == ["third", "second", "first"]
    assert body["results"][0]["latest_run"]["status"] == "queued"

    page = api.get(STORES, {"page_size": 2, "page": 2}).json()
    assert [s["name"] for s in page["results"]] == ["first"] and page["previous"] and page["next"] is None


def test_list_filters_by_status_and_engine_and_orders(api, tenant):
    StoreFactory(tenant=tenant, name="woo-ready", status=StoreStatus.READY)
    StoreFactory(tenant=tenant, name="medusa-new", engine="medusa")
    gone = StoreFactory(tenant=tenant, name="woo-gone")
    Store.objects.filter(pk=gone.pk).update(status=StoreStatus.DELETED)

    def names(**params):
        return [s["name"] for s in api.get(STORES, params).json()["results"]]

    assert names(status="ready") == ["woo-ready"]
    assert names(engine="medusa") == ["medusa-new"]
    assert names(ordering="name") == ["medusa-new", "woo-ready"]  # deleted stores only when asked for
    assert names(status="deleted") == ["woo-gone"]

    response = api.get(STORES, {"status": "shipped"})
    assert response.status_code == 400
    assert _error(response)["fields"] == {"status": ['"shipped" is not a valid choice.']}


def test_detail_has_status_reason_urls_timestamps_and_latest_run(api, tenant):
    store = StoreFactory(tenant=tenant, name="detailed", status=StoreStatus.READY)

    response = api.get(f"{STORES}detailed/")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ready" and body["status_reason"] == "Store is ready."
    assert body["public_url"] == store.public_url and body["ready_at"] and body["created_at"]
    assert body["latest_run"]["id"] == store.runs.get().pk


def test_another_tenants_store_is_404_everywhere(api, other_tenant):
    StoreFactory(tenant=other_tenant, name="theirs", status=StoreStatus.FAILED)

    for method, path in [
        ("get", "theirs/"),
        ("delete", "theirs/"),
        ("post", "theirs/retry/"),
        ("get", "theirs/events/"),
        ("post", "theirs/credentials/"),
    ]:
        response = getattr(api, method)(f"{STORES}{path}")
        assert response.status_code == 404, (method, path)
        assert _error(response) == {"code": "not_found", "message": "Not found.", "fields": {}}
    assert Store.objects.get(name="theirs").status == StoreStatus.FAILED


def test_a_missing_store_is_404(api):
    response = api.get(f"{STORES}nothing-here/")
    assert response.status_code == 404 and _error(response)["code"] == "not_found"


def test_put_and_patch_are_not_allowed(api, tenant):
    StoreFactory(tenant=tenant, name="fixed")
    for method in ("put", "patch"):
        response = getattr(api, method)(f"{STORES}fixed/", {"status": "ready"}, format="json")
        assert response.status_code == 405 and _error(response)["code"] == "method_not_allowed"
    assert Store.objects.get(name="fixed").status == StoreStatus.REQUESTED


# --- delete and retry --------------------------------------------------------------------------------


def test_delete_is_accepted_and_repeating_it_is_harmless(api, tenant):
    store = StoreFactory(tenant=tenant, name="doomed", status=StoreStatus.READY)

    first = api.delete(f"{STORES}doomed/")
    second = api.delete(f"{STORES}doomed/")

    assert (first.status_code, second.status_code) == (202, 202)
    assert first.json()["status"] == second.json()["status"] == "deleting"
    assert first.json()["latest_run"]["kind"] == "teardown"
    assert ProvisioningRun.objects.filter(store=store, kind=RunKind.TEARDOWN).count() == 1

    Store.objects.filter(pk=store.pk).update(status=StoreStatus.DELETED)
    third = api.delete(f"{STORES}doomed/")
    assert third.status_code == 202 and third.json()["status"] == "deleted"


def test_retry_from_failed_queues_a_new_run(api, tenant):
    store = StoreFactory(tenant=tenant, name="flaky", status=StoreStatus.FAILED)

    response = api.post(f"{STORES}flaky/retry/")

    assert response.status_code == 202
    body = response.json()
    assert body["status"] == "requested"
    assert body["latest_run"]["attempt"] == 2 and body["latest_run"]["status"] == "queued"
    assert ProvisioningRun.objects.filter(store=store).count() == 2


@pytest.mark.parametrize("status", [StoreStatus.REQUESTED, StoreStatus.READY])
def test_retry_from_any_other_status_is_a_409(api, tenant, status):
    StoreFactory(tenant=tenant, name="steady", status=status)

    response = api.post(f"{STORES}steady/retry/")

    assert response.status_code == 409
    error = _error(response)
    assert error["code"] == "invalid_state" and error["message"].startswith(
        "Only a failed store can be retried"
    )


# --- events and plan ---------------------------------------------------------------------------------


def test_events_are_the_timeline_oldest_first(api, owner, tenant):
    StoreFactory(tenant=tenant, name="history", status=StoreStatus.READY)
    api.delete(f"{STORES}history/")

    response = api.get(f"{STORES}history/events/")

    assert response.status_code == 200
    events = response.json()["results"]
    assert [(e["old_status"], e["new_status"]) for e in events] == [
        ("", "requested"),
        ("requested", "provisioning"),
        ("provisioning", "ready"),
        ("ready", "deleting"),
    ]
    assert events[-1]["actor"] == owner.username and events[-1]["reason"] == "Teardown requested."


def test_plan_shows_limits_and_usage(api, tenant):
    StoreFactory(tenant=tenant, name="counted")
    gone = StoreFactory(tenant=tenant, name="not-counted")
    Store.objects.filter(pk=gone.pk).update(status=StoreStatus.DELETED)

    response = api.get("/api/v1/plan/")

    assert response.status_code == 200
    body = response.json()
    assert body["name"] == tenant.plan.name and body["max_stores"] == tenant.plan.max_stores
    assert body["live_stores"] == 1 and body["remaining_stores"] == tenant.plan.max_stores - 1
    assert {r["engine"]: r["cpu"] for r in body["resources"]} == {"medusa": "2", "woocommerce": "1"}
