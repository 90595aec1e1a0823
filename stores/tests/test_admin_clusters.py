"""Staff manage clusters in the admin: add one with a kubeconfig (sealed, never shown again), see
health, stores and capacity, drain it, and check it now."""

import pytest

from provisioning.choices import ClusterHealth
from provisioning.clusters import cluster_default
from provisioning.models import Cluster, ProvisioningRun
from provisioning.tests.test_clusters import KUBECONFIG
from stores.lifecycle import store_run_claim
from stores.tests.factories import StoreFactory, TenantFactory, UserFactory

pytestmark = pytest.mark.django_db

ADD = "/admin/provisioning/cluster/add/"
LIST = "/admin/provisioning/cluster/"


@pytest.fixture
def staff(client):
    client.force_login(UserFactory(username="ops@example.com", is_staff=True, is_superuser=True))
    return client


def _form(**overrides):
    return {"name": "far-away", "region": "eu-west", "labels": "{}", "context": "", "helm_concurrency": "2",
            "kubeconfig": KUBECONFIG, **overrides}  # fmt: skip


def test_a_cluster_is_added_with_its_kubeconfig_sealed_and_never_shown_again(staff):
    response = staff.post(ADD, _form())
    assert response.status_code == 302, response.content.decode()[:2000]
    cluster = Cluster.objects.get(name="far-away")
    assert cluster.connection == "kubeconfig" and "very-secret-token" not in cluster.kubeconfig_sealed
    page = staff.get(f"{LIST}{cluster.pk}/change/").content.decode()
    assert "very-secret-token" not in page and "https://10.9.9.9:6443" not in page


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"kubeconfig": "{oops"}, "not valid YAML"),
        ({"context": "other"}, "no context"),
        ({"kubeconfig": ""}, "needs its kubeconfig"),
    ],
)
def test_a_bad_kubeconfig_is_a_form_error_and_adds_nothing(staff, overrides, message):
    response = staff.post(ADD, _form(**overrides))
    assert response.status_code == 200 and message in response.content.decode()
    assert not Cluster.objects.filter(name="far-away").exists()


def test_the_list_shows_health_stores_and_capacity_and_drains(staff, tenant):
    cluster = cluster_default()
    Cluster.objects.filter(pk=cluster.pk).update(allocatable_cpu_millicores=4000, allocatable_memory_mib=8192)
    StoreFactory(tenant=tenant, cluster=cluster, name="counted", ready=True)
    text = staff.get(LIST).content.decode()
    assert "CPU 1/4, memory 1.0/8.0 GiB" in text and ">1<" in text

    staff.post(LIST, {"action": "drain", "_selected_action": [cluster.pk]})
    cluster.refresh_from_db()
    assert cluster.draining


def test_check_now_records_what_the_cluster_answers(staff, kube_api, settings):
    settings.KUBECONFIG = str(kube_api.kubeconfig_path)
    cluster = cluster_default()
    staff.post(LIST, {"action": "check_now", "_selected_action": [cluster.pk]})
    cluster.refresh_from_db()
    assert cluster.health == ClusterHealth.HEALTHY and cluster.health_checked_at is not None


def test_a_cluster_with_stores_cannot_be_deleted(staff, tenant):
    cluster = cluster_default()
    StoreFactory(tenant=tenant, cluster=cluster, name="keeps-it")
    assert staff.post(f"{LIST}{cluster.pk}/delete/", {"post": "yes"}).status_code == 403
    assert Cluster.objects.filter(pk=cluster.pk).exists()


def test_raising_a_clusters_helm_cap_hands_the_new_slot_to_a_waiting_run(
    staff, settings, django_capture_on_commit_callbacks
):
    settings.PROVISIONING_CONCURRENCY = 10
    cluster = Cluster.objects.create(
        name="far-away", connection="kubeconfig", kubeconfig_sealed="sealed", helm_concurrency=1
    )
    StoreFactory(tenant=TenantFactory(), cluster=cluster, name="holds-the-slot", provisioning=True)
    waiting = StoreFactory(tenant=TenantFactory(), cluster=cluster, name="waits-for-one").runs.get()
    assert store_run_claim(run_id=waiting.pk, worker="w:1").status == "busy"
    sent = ProvisioningRun.objects.get(pk=waiting.pk).dispatch_count

    with django_capture_on_commit_callbacks(execute=True):
        response = staff.post(f"{LIST}{cluster.pk}/change/", _form(helm_concurrency="2", kubeconfig=""))

    assert response.status_code == 302, response.content.decode()[:2000]
    assert ProvisioningRun.objects.get(pk=waiting.pk).dispatch_count == sent + 1
