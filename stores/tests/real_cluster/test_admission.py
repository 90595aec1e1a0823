"""Admission for real: Pod Security `restricted` admits every pod of both charts, the ResourceQuota and
LimitRange admit them at their plan sizes and the apiserver's own refusal of an undersized plan
reaches the store's reason; the platform's ValidatingAdmissionPolicy refuses what it claims to."""

import urllib.error

import pytest

from stores.choices import StoreStatus
from stores.lifecycle import store_create
from stores.models import PlanResources
from stores.tests.real_cluster.support import (
    forbidden,
    install_platform_identity,
    reason_of,
    release_states,
    status_of,
    unique_name,
)
from testkit.helm import HELM_BINARIES
from testkit.waiting import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


def _privileged_pod(namespace: str) -> dict:
    return {
        "metadata": {"name": "privileged", "namespace": namespace},
        "spec": {
            "containers": [{"name": "x", "image": "busybox", "securityContext": {"privileged": True}}],
        },
    }


def test_pod_security_restricted_admits_every_pod_of_both_charts(cluster, tenant, start_worker):
    start_worker(cluster, HELM_BINARIES["helm4"], STORE_POD_SECURITY_LEVEL="restricted")
    stores = [
        store_create(tenant=tenant, name=unique_name("psa-woo"), engine="woocommerce")[0],
        store_create(tenant=tenant, name=unique_name("psa-medusa"), engine="medusa")[0],
    ]
    for store in stores:
        wait_for(lambda s=store: status_of(s) == StoreStatus.READY, timeout=120, what=f"{store.name} ready")
        labels = cluster.get("namespaces", store.namespace)["metadata"]["labels"]
        assert labels["pod-security.kubernetes.io/enforce"] == "restricted"
        # Every workload got its pods: PodSecurity refused none of them (it would show as FailedCreate).
        events = cluster.objects("events", store.namespace)
        assert not [e for e in events if e["reason"] == "FailedCreate"], events
        assert cluster.objects("pods", store.namespace)
        # ...and the level is really enforced: a privileged pod is refused in the same namespace.
        with pytest.raises(urllib.error.HTTPError) as refused:
            cluster.request(
                "POST", f"/api/v1/namespaces/{store.namespace}/pods", _privileged_pod(store.namespace)
            )
        assert refused.value.code == 403
        assert "violates PodSecurity" in refused.value.read().decode()


def test_an_undersized_plan_is_refused_by_the_apiserver_and_rolled_back(cluster, tenant, start_worker):
    PlanResources.objects.filter(plan=tenant.plan, engine="woocommerce").update(memory_mib=256)
    start_worker(cluster, HELM_BINARIES["helm4"], PROVISIONING_TIMEOUT="15")
    store, _ = store_create(tenant=tenant, name=unique_name("small"), engine="woocommerce")

    wait_for(lambda: status_of(store) == StoreStatus.FAILED, timeout=120, what="the install to fail")
    reason = reason_of(store)
    # The ResourceQuota admission plugin's own words, as the ReplicaSet/StatefulSet controllers got them.
    assert reason.startswith(
        "The cluster refused the store's pods because they exceed the plan's resource quota"
    )
    assert "exceeded quota: store-quota" in reason and "memory=256Mi" in reason
    assert "Retrying automatically" not in reason  # a person has to change the plan; retrying cannot help
    # Rolled back: no release record, no workload left; only the namespace and credentials stay for a retry.
    assert release_states(cluster, store.namespace) == []
    for resource, api in (("deployments", "apps/v1"), ("statefulsets", "apps/v1"), ("jobs", "batch/v1")):
        assert cluster.objects(resource, store.namespace, api=api) == [], resource
    assert cluster.get("secrets", "store-credentials", store.namespace) is not None


def test_a_never_ready_store_fails_within_the_time_budget_with_the_cluster_reason(
    cluster, tenant, start_worker
):
    start_worker(cluster, HELM_BINARIES["helm3"], PROVISIONING_TIMEOUT="15")
    name = unique_name("never")
    cluster.make_never_ready(f"store-{name}")
    store, _ = store_create(tenant=tenant, name=name, engine="woocommerce")

    wait_for(lambda: status_of(store) == StoreStatus.FAILED, timeout=90, what="the install to fail")
    reason = reason_of(store)
    # The worker's own soft limit stopped helm (not helm's longer --timeout).
    assert "did not become ready within the 15 s provisioning budget" in reason
    assert "BackOff: Back-off restarting failed container" in reason
    assert release_states(cluster, store.namespace) == []
    run = store.runs.get()
    assert run.status == "failed" and run.finished_at is not None


def test_the_admission_policy_refuses_what_it_claims_and_admits_a_normal_store(cluster, tmp_path):
    identity = install_platform_identity(cluster, tmp_path)
    token = identity.token
    managed = {"app.kubernetes.io/managed-by": "store-platform"}

    def create_namespace(name, labels):
        body = {"metadata": {"name": name, "labels": labels}}
        return lambda: cluster.request("POST", "/api/v1/namespaces", body, token=token)

    # Not named store-*, or not carrying the platform's label: refused.
    assert "ValidatingAdmissionPolicy" in forbidden(create_namespace(unique_name("shop"), managed))
    assert "ValidatingAdmissionPolicy" in forbidden(create_namespace(f"store-{unique_name('bare')}", {}))
    # A namespace someone else made cannot be adopted by relabelling it.
    foreign = f"store-{unique_name('foreign')}"
    cluster.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": foreign}})
    message = forbidden(
        lambda: cluster.request(
            "PATCH",
            f"/api/v1/namespaces/{foreign}",
            {"metadata": {"labels": managed}},
            content_type="application/merge-patch+json",
            token=token,
        )
    )
    assert "may not adopt" in message
    # RoleBindings outside store-* namespaces are refused (RBAC would have allowed the create).
    message = forbidden(
        lambda: cluster.request(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/namespaces/default/rolebindings",
            {
                "metadata": {"name": "store-deployer"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "store-deployer",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "platform", "namespace": "platform"}],
            },
            token=token,
        )
    )
    assert "store-* namespaces" in message

    # A normal store namespace (managed, enforcing restricted), its label update and its deletion are
    # admitted.
    normal = f"store-{unique_name('normal')}"
    create_namespace(
        normal,
        {**managed, "platform.example/store": normal[6:], "pod-security.kubernetes.io/enforce": "restricted"},
    )()
    cluster.request(
        "PATCH",
        f"/api/v1/namespaces/{normal}",
        {"metadata": {"labels": {"pod-security.kubernetes.io/warn": "restricted"}}},
        content_type="application/merge-patch+json",
        token=token,
    )
    cluster.request("DELETE", f"/api/v1/namespaces/{normal}", token=token)
