"""A store's activity (events, pods, logs, usage) read on a real control plane with the web pods' own
least-privilege token: one store's events and pods are shown and another's never are; the log of a
kwok pod (no kubelet behind it) comes back as the apiserver's own error in plain words; usage is "not
available" without metrics-server."""

from __future__ import annotations

import json
import urllib.error

import pytest
from kubernetes import config

from provisioning.cluster_access import ClusterAccess
from stores.activity import ActivityRequestInvalid, store_activity
from stores.tests.factories import StoreFactory
from stores.tests.real_cluster.support import (
    PLATFORM_NAMESPACE,
    WEB_ACCOUNT,
    install_platform_identity,
    unique_name,
)
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]
MANAGED = {"app.kubernetes.io/managed-by": "store-platform"}


def _store_namespace(cluster, store, *, bind_web: bool = True) -> str:
    """The store's namespace with one pod on a kwok node and one warning event naming the store, and
    (as the worker does after creating it) the web pods' reader binding."""
    namespace = store.namespace
    cluster.apply(
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace, "labels": MANAGED}}
    )
    if bind_web:
        cluster.apply(
            {
                "apiVersion": "rbac.authorization.k8s.io/v1",
                "kind": "RoleBinding",
                "metadata": {"name": "store-credentials-reader", "namespace": namespace},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "store-credentials-reader",
                },
                "subjects": [
                    {"kind": "ServiceAccount", "name": WEB_ACCOUNT, "namespace": PLATFORM_NAMESPACE}
                ],
            }
        )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": f"web-{store.name}", "namespace": namespace},
            "spec": {
                "nodeName": "kwok-node-1",
                "containers": [{"name": "app", "image": "localhost/app:1"}],
            },
        }
    )
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"name": f"backoff-{store.name}", "namespace": namespace},
            "involvedObject": {"kind": "Pod", "name": f"web-{store.name}", "namespace": namespace},
            "type": "Warning",
            "reason": "BackOff",
            "message": f"Back-off restarting failed container app of {store.name} password=hunter2hunter2",
            "count": 3,
            "source": {"component": "test"},
        }
    )
    wait_for(
        lambda: cluster.get("pods", f"web-{store.name}", namespace)["status"].get("phase") == "Running",
        timeout=60,
        what="the kwok pod running",
    )
    return namespace


def test_one_stores_activity_never_shows_another_and_log_errors_are_plain(cluster, tmp_path, tenant, owner):
    web = install_platform_identity(cluster, tmp_path, service_account=WEB_ACCOUNT)
    access = ClusterAccess(
        api_client_factory=lambda: config.new_client_from_config(config_file=str(web.kubeconfig))
    )
    mine = StoreFactory(tenant=tenant, name=unique_name("act-a"), ready=True)
    theirs = StoreFactory(name=unique_name("act-b"), ready=True)
    namespace = _store_namespace(cluster, mine)
    _store_namespace(cluster, theirs)

    activity = store_activity(store=mine, actor=owner, access=access)

    assert activity.problems == []
    assert [pod.name for pod in activity.pods] == [f"web-{mine.name}"]
    assert activity.pods[0].node == "kwok-node-1" and activity.pods[0].restarts == 0
    sentences = [event.sentence for event in activity.events]
    assert any(
        f"pod web-{mine.name}: BackOff: Back-off restarting failed container app of {mine.name}" in s
        for s in sentences
    )
    assert all(theirs.name not in sentence for sentence in sentences)
    assert all("hunter2hunter2" not in sentence for sentence in sentences)  # the log redaction filter
    # kwok runs no kubelet, so the apiserver cannot fetch the log; its own words are shown.
    try:
        cluster.request(
            "GET",
            f"/api/v1/namespaces/{namespace}/pods/web-{mine.name}/log"
            "?container=app&limitBytes=262144&tailLines=100&timestamps=true",
        )
    except urllib.error.HTTPError as exc:
        apiserver_says = json.loads(exc.read())["message"]
    else:
        raise AssertionError("the apiserver returned a log for a kwok pod")
    assert [(log.pod, log.container, log.text) for log in activity.logs] == [(f"web-{mine.name}", "app", "")]
    assert activity.logs[0].error == f"The cluster could not give this log: {apiserver_says}"
    assert activity.usage is None and activity.usage_note.startswith("not available: ")

    # Naming the other store's pod reads nothing: it is not one of this store's pods.
    with pytest.raises(ActivityRequestInvalid, match="no pod named"):
        store_activity(store=mine, actor=owner, access=access, pod=f"web-{theirs.name}")


def test_without_the_reader_binding_the_web_token_reads_nothing_and_says_so(cluster, tmp_path, tenant, owner):
    web = install_platform_identity(cluster, tmp_path, service_account=WEB_ACCOUNT)
    access = ClusterAccess(
        api_client_factory=lambda: config.new_client_from_config(config_file=str(web.kubeconfig))
    )
    store = StoreFactory(tenant=tenant, name=unique_name("act-c"), ready=True)
    _store_namespace(cluster, store, bind_web=False)

    activity = store_activity(store=store, actor=owner, access=access)

    assert activity.pods == [] and activity.events == [] and activity.logs == []
    assert any(
        p.startswith("The platform is not allowed to read the store's pods here:") for p in activity.problems
    )
    assert any("forbidden" in p for p in activity.problems)
