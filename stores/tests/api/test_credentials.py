"""Credentials reveal: POST only, read from the store's Secret in the cluster, audited, never cached,
and absent from every other response."""

from __future__ import annotations

import base64

import pytest
from django.core.cache import cache

from stores.choices import StoreEventKind, StoreStatus
from stores.engines import CREDENTIALS_OBJECT_NAME
from stores.models import IdempotencyKey, StoreEvent
from stores.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Vq8-unguessable-Zr41"


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


@pytest.fixture
def ready_store(tenant, kube_api, settings):
    """A ready store whose credentials Secret exists in the Kubernetes API double."""
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    cache.delete("cluster-status")
    store = StoreFactory(tenant=tenant, name="with-login", status=StoreStatus.READY)
    kube_api.create(
        "namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": store.namespace}}
    )
    kube_api.create(
        "secrets",
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": CREDENTIALS_OBJECT_NAME, "namespace": store.namespace},
            "data": {
                "admin-username": _b64("admin"),
                "admin-email": _b64("owner@example.com"),
                "admin-password": _b64(PASSWORD),
            },
        },
        namespace=store.namespace,
    )
    return store


def test_reveal_returns_the_login_uncached_and_audited(api, owner, ready_store):
    response = api.post("/api/v1/stores/with-login/credentials/", HTTP_IDEMPOTENCY_KEY="never-stored")

    assert response.status_code == 200
    assert response.json() == {
        "admin_url": f"{ready_store.public_url}wp-admin/",
        "username": "admin",
        "email": "owner@example.com",
        "password": PASSWORD,
    }
    assert response["Cache-Control"] == "no-store"
    audit = StoreEvent.objects.get(store=ready_store, kind=StoreEventKind.AUDIT)
    assert audit.step == "credentials-revealed" and audit.actor == owner
    assert not IdempotencyKey.objects.exists()  # a secret is never kept for replay


def test_the_password_appears_in_no_other_response(api, ready_store):
    api.post("/api/v1/stores/with-login/credentials/")
    responses = [
        api.get("/api/v1/stores/"),
        api.get("/api/v1/stores/with-login/"),
        api.get("/api/v1/stores/with-login/events/"),
        api.get("/api/v1/plan/"),
        api.get("/api/schema/"),
    ]
    for response in responses:
        assert response.status_code == 200
        assert PASSWORD not in response.content.decode()


def test_reveal_is_post_only(api, ready_store):
    response = api.get("/api/v1/stores/with-login/credentials/")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"
    assert not StoreEvent.objects.filter(kind=StoreEventKind.AUDIT).exists()


def test_reveal_before_ready_is_a_409(api, tenant):
    StoreFactory(tenant=tenant, name="not-yet")
    response = api.post("/api/v1/stores/not-yet/credentials/")
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "credentials_unavailable"


def test_reveal_with_the_cluster_down_is_a_503(api, tenant, settings, tmp_path):
    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    StoreFactory(tenant=tenant, name="cluster-down", status=StoreStatus.READY)
    response = api.post("/api/v1/stores/cluster-down/credentials/")
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "cluster_unavailable"
