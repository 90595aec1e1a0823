"""/healthz and /readyz: no auth, ok/fail per dependency only; readiness gates on the database alone."""

from __future__ import annotations

import pytest
from django.core.cache import cache
from django.test import Client

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fresh_cluster_status():
    cache.delete("cluster-status")
    yield
    cache.delete("cluster-status")


def test_healthz_needs_no_auth():
    response = Client().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}


def test_readyz_is_ok_when_database_broker_and_cluster_answer(kube_api, settings):
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)

    response = Client().get("/readyz")

    assert response.status_code == 200
    assert response.json() == {
        "status": "ok",
        "checks": {"database": "ok", "broker": "ok", "cluster": "ok"},
    }


def test_readyz_reports_an_unreachable_cluster_and_stays_ready(settings, tmp_path):
    # A kubeconfig pointing at a port nobody listens on.
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\n"
        "clusters: [{name: nowhere, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "contexts: [{name: nowhere, context: {cluster: nowhere, user: nobody}}]\n"
        "users: [{name: nobody, user: {}}]\n"
    )
    settings.KUBECONFIG = str(kubeconfig)

    response = Client().get("/readyz")

    # The dashboard stays in rotation to show its banner while the cluster is away.
    assert response.status_code == 200
    body = response.json()
    assert body == {"status": "ok", "checks": {"database": "ok", "broker": "ok", "cluster": "fail"}}
    assert "127.0.0.1" not in response.content.decode()  # no details leak


def test_probes_are_get_only():
    assert Client().post("/healthz").status_code == 405
    assert Client().post("/readyz").status_code == 405
