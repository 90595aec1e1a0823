"""A store's activity through the pages and the API, against the Kubernetes API double: pods with
restarts and OOM kills, events in plain words, logs the double cannot serve reported with its own
error, usage "not available" without metrics-server, the rate limit, tenant scoping and bad input."""

from __future__ import annotations

import html
import re

import pytest
from django.core.cache import cache

from stores.choices import StoreStatus
from stores.tests.api.conftest import client_with_token, token_for
from stores.tests.factories import StoreFactory

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_limits():
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def store(tenant, kube_api, settings):
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    kube_api.set_controllers(False)  # the pod status below is written by hand, as a kubelet would
    store = StoreFactory(tenant=tenant, ready=True)
    kube_api.create("namespaces", {"metadata": {"name": store.namespace}})
    kube_api.create(
        "pods",
        {
            "metadata": {"name": "shop-web-0"},
            "spec": {"containers": [{"name": "wordpress", "image": "wp"}, {"name": "php", "image": "php"}]},
        },
        namespace=store.namespace,
    )
    kube_api.set_status(
        "pods",
        "shop-web-0",
        {
            "phase": "Running",
            "containerStatuses": [
                {
                    "name": "wordpress",
                    "ready": True,
                    "restartCount": 4,
                    "image": "wp",
                    "imageID": "",
                    "state": {"running": {"startedAt": "2026-12-01T10:00:00Z"}},
                    "lastState": {
                        "terminated": {
                            "reason": "OOMKilled",
                            "exitCode": 137,
                            "finishedAt": "2026-12-01T09:59:00Z",
                        }
                    },
                },
                {
                    "name": "php",
                    "ready": False,
                    "restartCount": 0,
                    "image": "php",
                    "imageID": "",
                    "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                },
            ],
        },
        namespace=store.namespace,
    )
    kube_api.create(
        "events",
        {
            "metadata": {"name": "oom"},
            "involvedObject": {"kind": "Pod", "name": "shop-web-0"},
            "type": "Warning",
            "reason": "OOMKilling",
            "message": "Memory cgroup out of memory: Killed process 42 (php-fpm) token=abcdef123456",
            "count": 2,
            "lastTimestamp": "2026-12-01T09:59:00Z",
        },
        namespace=store.namespace,
    )
    return store


def _text(response) -> str:
    return re.sub(r"\s+", " ", html.unescape(response.content.decode()))


def test_the_api_shows_pods_restarts_oom_kills_events_and_plain_log_errors(store, owner):
    response = client_with_token(token_for(owner)).get(f"/api/v1/stores/{store.name}/activity/")
    assert response.status_code == 200, response.json()
    body = response.json()
    [pod] = body["pods"]
    assert (pod["name"], pod["restarts"], pod["oom_kills"]) == ("shop-web-0", 4, 1)
    wordpress, php = pod["containers"]
    assert wordpress["oom_killed"] and wordpress["last_termination"].startswith("OOMKilled (exit 137)")
    assert php["state"] == "waiting: CrashLoopBackOff"
    [event] = body["events"]
    assert event["sentence"].startswith("pod shop-web-0: OOMKilling: Memory cgroup out of memory")
    assert "abcdef123456" not in event["sentence"] and "(2 times)" in event["sentence"]
    assert [(log["pod"], log["container"]) for log in body["logs"]] == [
        ("shop-web-0", "wordpress"),
        ("shop-web-0", "php"),
    ]
    # The double serves no pods/log: its own error is passed on in plain words.
    assert all(log["error"].startswith("The cluster could not give this log: ") for log in body["logs"])
    assert body["usage"]["note"].startswith("not available: the cluster has no working metrics-server")
    assert body["usage"]["cpu_millicores"] is None and body["usage"]["quota_cpu_millicores"] == 1000


def test_one_pod_and_container_can_be_chosen_and_unknown_ones_are_a_400(store, owner):
    api = client_with_token(token_for(owner))
    response = api.get(f"/api/v1/stores/{store.name}/activity/?pod=shop-web-0&container=php&lines=5")
    assert [(log["pod"], log["container"]) for log in response.json()["logs"]] == [("shop-web-0", "php")]
    for query, field in [
        ("pod=other-store-web-0", "pod"),
        ("container=mysql", "container"),
        ("lines=0", "lines"),
    ]:
        refused = api.get(f"/api/v1/stores/{store.name}/activity/?{query}")
        assert refused.status_code == 400 and field in refused.json()["error"]["fields"], query


def test_another_tenants_store_activity_is_a_404(store, other_owner):
    assert (
        client_with_token(token_for(other_owner)).get(f"/api/v1/stores/{store.name}/activity/").status_code
        == 404
    )


def test_reads_are_rate_limited_per_user(store, owner, settings):
    settings.STORE_ACTIVITY_RATE_LIMIT = 2
    api = client_with_token(token_for(owner))
    responses = [api.get(f"/api/v1/stores/{store.name}/activity/") for _ in range(3)]
    assert [response.status_code for response in responses] == [200, 200, 429]
    refused = responses[-1]
    assert refused.json()["error"]["code"] == "rate_limited"
    assert 0 < int(refused["Retry-After"]) <= 60  # seconds until the window lets the user in again


@pytest.mark.parametrize(
    ("status", "words"), [(StoreStatus.DELETED, "deleted"), (StoreStatus.REQUESTED, "waiting")]
)
def test_a_deleted_or_queued_store_has_no_activity(tenant, owner, kube_api, settings, status, words):
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    store = StoreFactory(tenant=tenant, status=status)
    kube_api.clear_requests()
    response = client_with_token(token_for(owner)).get(f"/api/v1/stores/{store.name}/activity/")
    assert response.status_code == 409 and words in response.json()["error"]["message"]
    assert kube_api.requests() == []  # refused before asking the cluster


def test_the_page_shows_the_same_in_plain_words(store, owner, client):
    client.force_login(owner)
    response = client.get(f"/stores/{store.name}/activity/")
    assert response.status_code == 200 and "no-store" in response["Cache-Control"]
    text = _text(response)
    assert "wordpress: running <strong>(killed for using too much memory)</strong>" in text
    assert "4 (1 out of memory)" in text
    assert "pod shop-web-0: OOMKilling: Memory cgroup out of memory" in text
    assert "CPU and memory use: not available" in text
    assert "The cluster could not give this log:" in text
    assert client.get(f"/stores/{store.name}/activity/?pod=nope").status_code == 400
    assert "Logs, events and usage" in _text(client.get(f"/stores/{store.name}/"))


def test_without_a_cluster_connection_the_page_says_so(tenant, owner, client, settings, tmp_path):
    settings.KUBECONFIG = str(tmp_path / "missing-kubeconfig")
    store = StoreFactory(tenant=tenant, ready=True)
    client.force_login(owner)
    response = client.get(f"/stores/{store.name}/activity/")
    assert response.status_code == 200
    assert "The platform cannot reach the store's cluster" in _text(response)
