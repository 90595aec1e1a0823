"""The official ``kubernetes`` Python client against the double."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from kubeapi_double import KubeApiDouble


@pytest.fixture
def api_client(kube_api: KubeApiDouble) -> Iterator[client.ApiClient]:
    """An ApiClient built from the double's kubeconfig, as the orchestrator would build one."""
    api = config.new_client_from_config(config_file=str(kube_api.kubeconfig_path))
    try:
        yield api
    finally:
        api.close()


def _namespace_events_until_gone(v1: client.CoreV1Api, name: str) -> list[str]:
    seen: list[str] = []
    stream = watch.Watch()
    for event in stream.stream(v1.list_namespace, field_selector=f"metadata.name={name}", timeout_seconds=10):
        seen.append(event["type"])
        if event["type"] == "DELETED":
            stream.stop()
    return seen


def test_namespace_create_delete_and_watch_until_gone(
    kube_api: KubeApiDouble, api_client: client.ApiClient
) -> None:
    # Slow the namespace controller down enough to observe the Terminating phase.
    kube_api.controllers.ready_delay = 0.5
    v1 = client.CoreV1Api(api_client)
    v1.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="store-1", labels={"tier": "a"}))
    )
    v1.create_namespaced_config_map("store-1", {"metadata": {"name": "cfg"}, "data": {"k": "v"}})
    assert v1.read_namespace("store-1").status.phase == "Active"

    v1.delete_namespace("store-1")

    terminating = v1.read_namespace("store-1")
    assert terminating.status.phase == "Terminating"
    assert terminating.spec.finalizers == ["kubernetes"]
    with pytest.raises(ApiException) as forbidden:
        v1.create_namespaced_secret("store-1", {"metadata": {"name": "late"}})
    assert forbidden.value.status == 403
    assert _namespace_events_until_gone(v1, "store-1")[-1] == "DELETED"
    with pytest.raises(ApiException) as gone:
        v1.read_namespace("store-1")
    assert gone.value.status == 404
    assert v1.list_namespaced_config_map("store-1").items == []


def test_stuck_namespace_reports_its_finalizer_until_released(
    kube_api: KubeApiDouble, api_client: client.ApiClient
) -> None:
    v1 = client.CoreV1Api(api_client)
    v1.create_namespace({"metadata": {"name": "stuck", "finalizers": ["example.com/hold"]}})

    v1.delete_namespace("stuck")
    time.sleep(0.8)

    ns = v1.read_namespace("stuck")
    assert ns.status.phase == "Terminating"
    remaining = next(c for c in ns.status.conditions if c.type == "NamespaceFinalizersRemaining")
    assert remaining.status == "True" and "example.com/hold" in remaining.message

    v1.patch_namespace("stuck", {"metadata": {"finalizers": None}})

    assert _namespace_events_until_gone(v1, "stuck")[-1] == "DELETED"
    assert kube_api.get("namespaces", "stuck") is None


def test_secret_round_trip_and_conflict(api_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api_client)
    created = v1.create_namespaced_secret(
        "default",
        client.V1Secret(metadata=client.V1ObjectMeta(name="db"), string_data={"password": "s3cret"}),
    )
    assert created.data == {"password": "czNjcmV0"}
    assert created.type == "Opaque"

    patched = v1.patch_namespaced_secret("db", "default", {"metadata": {"labels": {"app": "shop"}}})
    assert patched.metadata.labels == {"app": "shop"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    stale = v1.read_namespaced_secret("db", "default")
    stale.metadata.resource_version = created.metadata.resource_version
    with pytest.raises(ApiException) as conflict:
        v1.replace_namespaced_secret("db", "default", stale)
    assert conflict.value.status == 409

    with pytest.raises(ApiException) as duplicate:
        v1.create_namespaced_secret("default", {"metadata": {"name": "db"}})
    assert duplicate.value.status == 409 and "already exists" in duplicate.value.body

    v1.delete_namespaced_secret("db", "default")
    with pytest.raises(ApiException) as missing:
        v1.read_namespaced_secret("db", "default")
    assert missing.value.status == 404


def test_events_pods_and_never_ready_annotation(api_client: client.ApiClient) -> None:
    v1 = client.CoreV1Api(api_client)
    apps = client.AppsV1Api(api_client)
    apps.create_namespaced_deployment(
        "default",
        {
            "metadata": {"name": "stuck"},
            "spec": {
                "selector": {"matchLabels": {"app": "stuck"}},
                "template": {
                    "metadata": {
                        "labels": {"app": "stuck"},
                        "annotations": {"kubeapi-double.test/never-ready": "true"},
                    },
                    "spec": {"containers": [{"name": "c", "image": "nginx:1.27"}]},
                },
            },
        },
    )

    deadline = time.monotonic() + 5
    while not v1.list_namespaced_event("default").items:
        assert time.monotonic() < deadline
        time.sleep(0.1)

    event = v1.list_namespaced_event("default").items[0]
    assert (event.type, event.reason) == ("Warning", "Failed")
    assert event.message.startswith('Failed to pull image "nginx:1.27"')
    pod = v1.list_namespaced_pod("default", label_selector="app=stuck").items[0]
    assert event.involved_object.name == pod.metadata.name
    assert pod.status.phase == "Pending"
    assert pod.status.container_statuses[0].state.waiting.reason == "ImagePullBackOff"
    assert apps.read_namespaced_deployment("stuck", "default").status.ready_replicas is None


def test_role_binding_create(api_client: client.ApiClient) -> None:
    rbac = client.RbacAuthorizationV1Api(api_client)
    rbac.create_namespaced_role(
        "default",
        {
            "metadata": {"name": "store-operator"},
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}],
        },
    )

    binding = rbac.create_namespaced_role_binding(
        "default",
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name="store-operator"),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name="store-operator"
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name="default", namespace="default")],
        ),
    )

    assert binding.metadata.uid
    listed = rbac.list_namespaced_role_binding("default").items
    assert [b.role_ref.name for b in listed] == ["store-operator"]
