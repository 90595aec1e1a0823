"""Clusters: sealed credentials, adding one, the health writer and reading capacity from nodes."""

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from kubernetes import client

from provisioning.choices import ClusterConnection, ClusterHealth
from provisioning.cluster_access import ClusterAccess
from provisioning.clusters import (
    ClusterCheck,
    ClusterInvalid,
    cluster_check,
    cluster_create,
    cluster_default,
    cluster_health_transition,
    cluster_record_check,
)
from provisioning.credential_box import SealedCredentialsUnreadable, seal, unseal
from provisioning.models import Cluster, ClusterEvent

pytestmark = pytest.mark.django_db

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: far, cluster: {server: "https://10.9.9.9:6443", certificate-authority-data: Y2E=}}]
users: [{name: far-admin, user: {token: very-secret-token}}]
contexts: [{name: far, context: {cluster: far, user: far-admin}}]
current-context: far
"""


def test_sealed_credentials_open_with_the_key_and_not_without(settings):
    settings.CLUSTER_CREDENTIALS_KEY = Fernet.generate_key().decode()
    sealed = seal(KUBECONFIG)
    assert "very-secret-token" not in sealed and unseal(sealed) == KUBECONFIG
    settings.CLUSTER_CREDENTIALS_KEY = Fernet.generate_key().decode()  # the key changed
    with pytest.raises(SealedCredentialsUnreadable, match="paste its kubeconfig again"):
        unseal(sealed)


def test_production_refuses_to_seal_without_an_explicit_key(settings):
    settings.PLATFORM_ENV = "prod"
    settings.CLUSTER_CREDENTIALS_KEY = ""
    with pytest.raises(ImproperlyConfigured, match="CLUSTER_CREDENTIALS_KEY"):
        seal(KUBECONFIG)


def test_a_cluster_keeps_its_kubeconfig_only_sealed():
    cluster = cluster_create(name="far-away", kubeconfig=KUBECONFIG, region="eu-west")
    row = Cluster.objects.values().get(pk=cluster.pk)
    assert not any("very-secret-token" in str(value) for value in row.values())
    assert (
        cluster.connection == ClusterConnection.KUBECONFIG and unseal(cluster.kubeconfig_sealed) == KUBECONFIG
    )
    api = ClusterAccess.for_cluster(cluster).api_client_factory()
    assert api.configuration.host == "https://10.9.9.9:6443"


@pytest.mark.parametrize(
    ("kubeconfig", "context", "message"),
    [
        ("{not yaml", "", "not valid YAML"),
        ("apiVersion: v1\nkind: Config\n", "", "no clusters or contexts"),
        (KUBECONFIG, "elsewhere", "no context 'elsewhere'; it has: far"),
    ],
)
def test_an_unusable_kubeconfig_is_refused_with_the_reason(kubeconfig, context, message):
    with pytest.raises(ClusterInvalid, match=message):
        cluster_create(name="broken", kubeconfig=kubeconfig, context=context)
    assert not Cluster.objects.filter(name="broken").exists()


def test_the_default_cluster_is_made_once():
    first, second = cluster_default(), cluster_default()
    assert first.pk == second.pk and first.connection == ClusterConnection.AMBIENT and first.is_default


def test_health_changes_through_one_writer_with_an_event_per_change():
    cluster = cluster_default()
    assert cluster_health_transition(cluster_id=cluster.pk, to=ClusterHealth.HEALTHY, reason="answered")
    assert not cluster_health_transition(cluster_id=cluster.pk, to=ClusterHealth.HEALTHY, reason="again")
    assert cluster_health_transition(cluster_id=cluster.pk, to=ClusterHealth.UNREACHABLE, reason="refused")
    events = list(
        ClusterEvent.objects.filter(cluster=cluster).values_list("old_health", "new_health", "reason")
    )
    assert events == [("unknown", "healthy", "answered"), ("healthy", "unreachable", "refused")]


def _node(name, cpu, memory, *, ready=True, unschedulable=False):
    return client.V1Node(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1NodeSpec(unschedulable=unschedulable),
        status=client.V1NodeStatus(
            allocatable={"cpu": cpu, "memory": memory},
            conditions=[client.V1NodeCondition(type="Ready", status="True" if ready else "False")],
        ),
    )


class _Nodes:
    def __init__(self, nodes):
        self.nodes = nodes

    def list_node(self, **_):
        return client.V1NodeList(items=self.nodes)


def test_capacity_counts_ready_schedulable_nodes_only(monkeypatch):
    nodes = [
        _node("a", "4", "16Gi"),
        _node("b", "3500m", "8192Mi"),
        _node("down", "8", "32Gi", ready=False),
        _node("cordoned", "8", "32Gi", unschedulable=True),
    ]
    monkeypatch.setattr("provisioning.clusters.CoreV1Api", lambda api: _Nodes(nodes))
    check = cluster_check(access=ClusterAccess(api_client_factory=client.ApiClient))
    assert check == ClusterCheck(True, allocatable_cpu_millicores=7500, allocatable_memory_mib=24576)


def test_a_check_that_fails_marks_the_cluster_unreachable_and_keeps_its_capacity():
    cluster = cluster_default()
    cluster_record_check(
        cluster=cluster,
        check=ClusterCheck(True, allocatable_cpu_millicores=4000, allocatable_memory_mib=8192),
    )
    cluster_record_check(cluster=cluster, check=ClusterCheck(False, "connection refused"))
    cluster.refresh_from_db()
    assert cluster.health == ClusterHealth.UNREACHABLE and cluster.health_reason == "connection refused"
    assert (cluster.allocatable_cpu_millicores, cluster.allocatable_memory_mib) == (4000, 8192)
