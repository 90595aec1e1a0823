"""API-server semantics over plain HTTP, the control endpoints, kubectl and the CLI entry point."""

from __future__ import annotations

import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from kubeapi_double import KubeApiDouble
from kubeapi_double.tests.conftest import Tool

REPO_ROOT = Path(__file__).resolve().parents[2]


def call(
    double: KubeApiDouble, method: str, path: str, body: Any = None, content_type: str = "application/json"
) -> tuple[int, Any]:
    """One HTTP request to the double; returns (status, parsed JSON body)."""
    status, raw = raw_call(
        double.url, method, path, json.dumps(body).encode() if body is not None else None, content_type
    )
    return status, json.loads(raw or b"null")


def raw_call(
    base_url: str, method: str, path: str, body: bytes | None = None, content_type: str = "application/json"
) -> tuple[int, bytes]:
    """A plain HTTP/1.1 request (http.client, so only http:// URLs are ever opened)."""
    parts = urlsplit(base_url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        connection.request(method, path, body=body, headers={"Content-Type": content_type})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def watch_events(double: KubeApiDouble, path: str) -> list[dict[str, Any]]:
    """Every event of a watch that the server ends (the path carries timeoutSeconds)."""
    _, raw = raw_call(double.url, "GET", path)
    return [json.loads(line) for line in raw.splitlines() if line]


def wait_for(predicate: Any, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.05)


DEPLOYMENT = {
    "metadata": {"name": "web", "labels": {"app": "web"}},
    "spec": {
        "replicas": 2,
        "selector": {"matchLabels": {"app": "web"}},
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
        },
    },
}


def test_create_errors_match_the_api_server(kube_api: KubeApiDouble) -> None:
    status, body = call(kube_api, "POST", "/api/v1/namespaces/nope/configmaps", {"metadata": {"name": "a"}})
    assert (status, body["reason"], body["message"]) == (404, "NotFound", 'namespaces "nope" not found')

    status, body = call(kube_api, "POST", "/api/v1/namespaces", {"metadata": {"name": "Bad_Name"}})
    assert (status, body["reason"]) == (422, "Invalid")
    assert body["details"]["causes"][0]["field"] == "metadata.name"
    assert "RFC 1123" in body["message"]

    assert (
        call(kube_api, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "a"}})[0] == 201
    )
    status, body = call(
        kube_api, "POST", "/api/v1/namespaces/default/configmaps", {"metadata": {"name": "a"}}
    )
    assert (status, body["reason"], body["message"]) == (
        409,
        "AlreadyExists",
        'configmaps "a" already exists',
    )

    status, body = call(kube_api, "GET", "/apis/apps/v1/namespaces/default/deployments/missing")
    assert (status, body["message"]) == (404, 'deployments.apps "missing" not found')


def test_resource_version_generation_and_status_subresource(kube_api: KubeApiDouble) -> None:
    kube_api.set_controllers(False)
    _, created = call(kube_api, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
    base = "/apis/apps/v1/namespaces/default/deployments/web"
    assert created["metadata"]["generation"] == 1 and created["metadata"]["uid"]

    _, labelled = call(
        kube_api, "PATCH", base, {"metadata": {"labels": {"x": "1"}}}, "application/merge-patch+json"
    )
    assert labelled["metadata"]["generation"] == 1
    _, scaled = call(
        kube_api, "PATCH", base, {"spec": {"replicas": 3}}, "application/strategic-merge-patch+json"
    )
    assert scaled["metadata"]["generation"] == 2

    status, body = call(kube_api, "PUT", base, created)  # carries the first, stale resourceVersion
    assert (status, body["reason"]) == (409, "Conflict")

    call(
        kube_api, "PUT", base + "/status", {**scaled, "spec": {"replicas": 9}, "status": {"readyReplicas": 3}}
    )
    current = kube_api.get("deployments", "web", "default")
    assert current["status"] == {"readyReplicas": 3} and current["spec"]["replicas"] == 3
    # Writes to the main resource cannot change status.
    call(kube_api, "PATCH", base, {"status": {"readyReplicas": 0}}, "application/merge-patch+json")
    assert kube_api.get("deployments", "web", "default")["status"] == {"readyReplicas": 3}


def test_list_selectors_and_watch_from_resource_version(kube_api: KubeApiDouble) -> None:
    for name, tier in (("a", "front"), ("b", "back"), ("c", "front")):
        call(
            kube_api,
            "POST",
            "/api/v1/namespaces/default/configmaps",
            {"metadata": {"name": name, "labels": {"tier": tier}}},
        )
    _, listed = call(
        kube_api, "GET", "/api/v1/namespaces/default/configmaps?labelSelector=tier%20in%20(front)"
    )
    assert [i["metadata"]["name"] for i in listed["items"]] == ["a", "c"]
    _, listed = call(kube_api, "GET", "/api/v1/configmaps?fieldSelector=metadata.name%3Db")
    assert [i["metadata"]["name"] for i in listed["items"]] == ["b"]

    since = listed["metadata"]["resourceVersion"]
    call(
        kube_api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/a",
        {"data": {"k": "v"}},
        "application/merge-patch+json",
    )
    call(
        kube_api,
        "PATCH",
        "/api/v1/namespaces/default/configmaps/c",
        {"metadata": {"labels": {"tier": "back"}}},
        "application/merge-patch+json",
    )
    call(kube_api, "DELETE", "/api/v1/namespaces/default/configmaps/b")
    events = watch_events(
        kube_api,
        f"/api/v1/namespaces/default/configmaps?watch=1&resourceVersion={since}"
        "&labelSelector=tier%3Dfront&timeoutSeconds=1",
    )

    # "c" leaving the selector shows up as DELETED to this watcher; "b" never matched.
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("MODIFIED", "a"),
        ("DELETED", "c"),
    ]
    assert int(events[0]["object"]["metadata"]["resourceVersion"]) > int(since)


def test_watch_list_sends_initial_events_then_bookmark(kube_api: KubeApiDouble) -> None:
    call(kube_api, "POST", "/api/v1/namespaces/default/secrets", {"metadata": {"name": "s"}})
    events = watch_events(
        kube_api,
        "/api/v1/namespaces/default/secrets?watch=1&sendInitialEvents=true"
        "&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=1",
    )

    assert [e["type"] for e in events] == ["ADDED", "BOOKMARK"]
    assert events[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_controllers_and_garbage_collection(kube_api: KubeApiDouble) -> None:
    call(kube_api, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
    wait_for(
        lambda: kube_api.get("deployments", "web", "default").get("status", {}).get("readyReplicas") == 2
    )

    status = kube_api.get("deployments", "web", "default")["status"]
    assert status["observedGeneration"] == 1 and status["availableReplicas"] == 2
    assert {c["type"]: c["reason"] for c in status["conditions"]}["Progressing"] == "NewReplicaSetAvailable"
    (rs,) = kube_api.objects("replicasets", "default")
    assert rs["metadata"]["ownerReferences"][0]["kind"] == "Deployment"
    assert "pod-template-hash" in rs["spec"]["template"]["metadata"]["labels"]
    assert len(kube_api.objects("pods", "default", label_selector="app=web")) == 2

    call(kube_api, "DELETE", "/apis/apps/v1/namespaces/default/deployments/web")

    assert kube_api.objects("replicasets", "default") == []
    assert kube_api.objects("pods", "default") == []


def test_job_with_never_ready_image_fails(kube_api: KubeApiDouble) -> None:
    job = {
        "metadata": {"name": "migrate"},
        "spec": {
            "template": {
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "m", "image": "registry.test/never-ready:2"}],
                }
            }
        },
    }
    kube_api.controllers.job_failure_delay = 0.5
    call(kube_api, "POST", "/apis/batch/v1/namespaces/default/jobs", job)

    def failed() -> bool:
        conditions = kube_api.get("jobs", "migrate", "default").get("status", {}).get("conditions", [])
        return any(c["type"] == "Failed" and c["status"] == "True" for c in conditions)

    wait_for(failed, timeout=6)
    reasons = {
        c["type"]: c["reason"] for c in kube_api.get("jobs", "migrate", "default")["status"]["conditions"]
    }
    assert reasons["Failed"] == "BackoffLimitExceeded"


def test_control_endpoints(kube_api: KubeApiDouble) -> None:
    assert call(kube_api, "POST", "/_double/controllers", {"enabled": False})[1] == {"enabled": False}
    call(kube_api, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
    time.sleep(0.5)
    assert kube_api.objects("replicasets", "default") == []

    call(
        kube_api,
        "POST",
        "/_double/status",
        {"kind": "Deployment", "namespace": "default", "name": "web", "status": {"readyReplicas": 2}},
    )
    _, state = call(kube_api, "GET", "/_double/state?kind=deployments&namespace=default")
    assert state["objects"][0]["status"] == {"readyReplicas": 2}

    call(kube_api, "POST", "/_double/never-ready", {"namespace": "default", "name": "web"})
    call(kube_api, "POST", "/_double/controllers", {"enabled": True})
    wait_for(lambda: kube_api.objects("events", "default"))
    assert kube_api.get("deployments", "web", "default")["status"].get("readyReplicas") is None

    _, log = call(kube_api, "GET", "/_double/requests")
    assert {"method": "POST", "path": "/apis/apps/v1/namespaces/default/deployments"}.items() <= log[
        0
    ].items()
    assert not any(entry["path"].startswith("/_double/") for entry in log)
    _, hits = call(kube_api, "POST", "/_double/requests/search", {"needle": "nginx:1.27"})
    assert len(hits) == 1

    call(kube_api, "POST", "/_double/reset")
    assert kube_api.objects("deployments") == [] and kube_api.requests() == []
    assert [ns["metadata"]["name"] for ns in kube_api.objects("namespaces")] == [
        "default",
        "kube-node-lease",
        "kube-public",
        "kube-system",
    ]


def test_schema_validation_answers_422() -> None:
    with KubeApiDouble(validate_schema="1.35") as double:
        bad = {**DEPLOYMENT, "spec": {**DEPLOYMENT["spec"], "replicas": "two"}}
        status, body = call(double, "POST", "/apis/apps/v1/namespaces/default/deployments", bad)
        assert (status, body["reason"]) == (422, "Invalid")
        assert body["details"]["causes"][0]["field"] == "spec.replicas"

        status, _ = call(double, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
        assert status == 201


def test_kubectl_get_and_delete_namespace(kube_api: KubeApiDouble, kubectl: Tool) -> None:
    kube_api.create("namespaces", {"metadata": {"name": "shop"}})
    kube_api.create("deployments", {**DEPLOYMENT, "metadata": {"name": "web", "namespace": "shop"}})
    wait_for(lambda: kube_api.objects("pods", "shop"))

    assert "shop" in kubectl.run("get", "ns").stdout
    listing = kubectl.run("get", "all", "-n", "shop").stdout
    assert "deployment.apps/web" in listing and "pod/web-" in listing

    assert 'namespace "shop" deleted' in kubectl.run("delete", "ns", "shop", "--timeout=20s").stdout
    assert kube_api.get("namespaces", "shop") is None
    assert kube_api.objects("pods", "shop") == []


def test_module_entry_point_serves_until_sigterm(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "kubeapi_double",
            "--port",
            "0",
            "--kubeconfig",
            str(kubeconfig),
            "--ready-delay",
            "0.1",
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = [""]
        reader = threading.Thread(target=lambda: line.__setitem__(0, proc.stdout.readline()))
        reader.start()
        reader.join(timeout=15)
        assert line[0].startswith("READY http://127.0.0.1:")
        url = line[0].split()[1]
        assert f"server: {url}" in kubeconfig.read_text()
        assert oct(kubeconfig.stat().st_mode & 0o777) == "0o600"
        status, raw = raw_call(url, "GET", "/api/v1/namespaces/default")
        assert status == 200 and json.loads(raw)["status"]["phase"] == "Active"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0


@pytest.mark.parametrize("path", ["/version", "/api", "/apis", "/api/v1", "/apis/apps/v1", "/openapi/v3"])
def test_discovery_documents(kube_api: KubeApiDouble, path: str) -> None:
    status, body = call(kube_api, "GET", path)

    assert status == 200
    if path == "/api/v1":
        assert body["groupVersion"] == "v1"
        assert {"name": "namespaces/status"}.items() <= next(
            r for r in body["resources"] if r["name"] == "namespaces/status"
        ).items()


def test_controllers_repair_what_clients_change_underneath_them(kube_api: KubeApiDouble) -> None:
    """A tick handles only what changed (issue 18), so each relation a handler reads must mark it."""
    call(kube_api, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
    statefulset = {
        "metadata": {"name": "db"},
        "spec": {
            "selector": {"matchLabels": {"app": "db"}},
            "template": {
                "metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "c", "image": "registry.test/never-ready:1"}]},
            },
            "volumeClaimTemplates": [
                {"metadata": {"name": "data"}, "spec": {"resources": {"requests": {"storage": "1Gi"}}}}
            ],
        },
    }
    call(kube_api, "POST", "/apis/apps/v1/namespaces/default/statefulsets", statefulset)
    wait_for(
        lambda: (kube_api.get("deployments", "web", "default").get("status") or {}).get("readyReplicas") == 2
    )
    wait_for(
        lambda: (
            kube_api.objects("events", "default")
            and kube_api.get("persistentvolumeclaims", "data-db-0", "default")
        )
    )

    # A deleted pod of a ReplicaSet is replaced, and the Deployment's status follows.
    first = kube_api.objects("pods", "default", label_selector="app=web")[0]["metadata"]["name"]
    kube_api.delete("pods", first, "default")
    wait_for(lambda: len(kube_api.objects("pods", "default", label_selector="app=web")) == 2)
    assert first not in {
        p["metadata"]["name"] for p in kube_api.objects("pods", "default", label_selector="app=web")
    }
    wait_for(lambda: kube_api.get("deployments", "web", "default")["status"].get("readyReplicas") == 2)

    # A StatefulSet's claim (found by name, not owner) and a pull-failure Event come back.
    kube_api.delete("persistentvolumeclaims", "data-db-0", "default")
    (event,) = kube_api.objects("events", "default")
    kube_api.delete("events", event["metadata"]["name"], "default")
    wait_for(lambda: kube_api.get("persistentvolumeclaims", "data-db-0", "default") is not None)
    wait_for(lambda: len(kube_api.objects("events", "default")) == 1)

    # Status set by hand while the controllers are off is corrected when they come back on.
    kube_api.set_controllers(False)
    kube_api.set_status("deployments", "web", {"readyReplicas": 0}, "default")
    kube_api.set_controllers(True)
    wait_for(lambda: kube_api.get("deployments", "web", "default")["status"].get("readyReplicas") == 2)

    # A never-ready switch changes no object, yet the workloads it names follow it both ways.
    kube_api.set_never_ready("default", "web")
    wait_for(lambda: kube_api.get("deployments", "web", "default")["status"].get("readyReplicas") is None)
    kube_api.set_never_ready("default", "web", enabled=False)
    wait_for(lambda: kube_api.get("deployments", "web", "default")["status"].get("readyReplicas") == 2)


def test_garbage_collection_orphans_then_collects_by_owner(kube_api: KubeApiDouble) -> None:
    call(kube_api, "POST", "/apis/apps/v1/namespaces/default/deployments", DEPLOYMENT)
    wait_for(lambda: len(kube_api.objects("pods", "default", label_selector="app=web")) == 2)
    (rs,) = kube_api.objects("replicasets", "default")

    call(
        kube_api,
        "DELETE",
        "/apis/apps/v1/namespaces/default/deployments/web",
        {"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"},
    )

    (orphan,) = kube_api.objects("replicasets", "default")
    assert orphan["metadata"]["name"] == rs["metadata"]["name"]
    assert not orphan["metadata"].get("ownerReferences")
    assert len(kube_api.objects("pods", "default", label_selector="app=web")) == 2

    call(kube_api, "DELETE", f"/apis/apps/v1/namespaces/default/replicasets/{rs['metadata']['name']}")

    assert kube_api.objects("replicasets", "default") == []
    assert kube_api.objects("pods", "default") == []
