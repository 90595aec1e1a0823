"""The platform chart's RBAC and admission policy, installed into a real apiserver: a worker holding
only the platform ServiceAccount's token provisions, upgrades, reconciles, reveals credentials and
tears down; the same token is refused (403) everything the chart claims it cannot do."""

import shutil
from pathlib import Path

import pytest
from django.conf import settings
from django.db import transaction
from kubernetes import config

from provisioning.choices import RunKind
from provisioning.cluster_access import ClusterAccess
from provisioning.services import provisioning_run_create
from stores.choices import StoreStatus
from stores.credentials import store_credentials_reveal
from stores.lifecycle import store_create, store_request_teardown
from stores.models import Store
from stores.reconcile import fleet_reconcile as reconcile
from stores.tests.real_cluster.support import (
    WEB_ACCOUNT,
    forbidden,
    install_platform_identity,
    release_states,
    status_of,
    unique_name,
)
from stores.transitions import store_transition
from testkit.helm import HELM_BINARIES, access_for
from testkit.waiting import wait_for

ENFORCE = "pod-security.kubernetes.io/enforce"
LEGACY_WP_CRON = Path(__file__).with_name("legacy_wp_cron.yaml")
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]


@pytest.fixture
def platform_identity(cluster, tmp_path):
    return install_platform_identity(cluster, tmp_path)


@pytest.fixture
def web_identity(cluster, tmp_path, platform_identity):
    return install_platform_identity(cluster, tmp_path, service_account=WEB_ACCOUNT)


class _TokenCluster:
    """What start_worker needs: the ServiceAccount's kubeconfig instead of the admin's."""

    is_simulated = False

    def __init__(self, kubeconfig):
        self.kubeconfig_path = kubeconfig


def _reprovision(store: Store) -> None:
    # What the reconciler does for a drifted store: back to requested, and a new provision run.
    with transaction.atomic():
        assert store_transition(
            store_id=store.pk, to=StoreStatus.REQUESTED, reason="upgrade", only_from=[StoreStatus.READY]
        )
        provisioning_run_create(store_id=store.pk, kind=RunKind.PROVISION, cluster_id=store.cluster_id)


def test_a_worker_with_only_the_platform_token_runs_the_whole_lifecycle(
    cluster, platform_identity, web_identity, tenant, start_worker, tmp_path
):
    helm = HELM_BINARIES["helm4"]
    start_worker(
        _TokenCluster(platform_identity.kubeconfig),
        helm,
        PLATFORM_SERVICE_ACCOUNT=platform_identity.setting,
        PLATFORM_WEB_SERVICE_ACCOUNT=web_identity.setting,
    )
    store, _ = store_create(tenant=tenant, name=unique_name("least"), engine="woocommerce")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready")
    rbac = "rbac.authorization.k8s.io/v1"
    deployer = cluster.get("rolebindings", "store-deployer", store.namespace, api=rbac)
    assert deployer["subjects"] == [{"kind": "ServiceAccount", "name": "platform", "namespace": "platform"}]
    reader = cluster.get("rolebindings", "store-credentials-reader", store.namespace, api=rbac)
    assert reader["subjects"] == [{"kind": "ServiceAccount", "name": WEB_ACCOUNT, "namespace": "platform"}]
    # Store namespaces enforce Pod Security restricted by default.
    assert cluster.get("namespaces", store.namespace)["metadata"]["labels"][ENFORCE] == "restricted"

    _reprovision(store)
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store upgraded")
    revisions = sorted(
        int(s["metadata"]["labels"]["version"])
        for s in cluster.objects("secrets", store.namespace, label_selector="owner=helm")
    )
    assert revisions == [1, 2] and release_states(cluster, store.namespace) == ["deployed", "superseded"]

    token_access = access_for(_TokenCluster(platform_identity.kubeconfig), helm, tmp_path / "helm")
    report = reconcile(access=token_access)
    assert report.errors == []
    # A page's reveal runs with the web pods' token, which may read this one Secret and nothing else.
    credentials = store_credentials_reveal(
        store=Store.objects.get(pk=store.pk),
        actor="test",
        access=ClusterAccess(
            api_client_factory=lambda: config.new_client_from_config(config_file=str(web_identity.kubeconfig))
        ),
    )
    assert credentials.username and len(credentials.password) >= 20
    _assert_the_web_token_reads_nothing_else(cluster, web_identity.token, store.namespace)

    store_request_teardown(store=store)
    wait_for(lambda: status_of(store) == StoreStatus.DELETED, timeout=120, what="store deleted")
    assert cluster.get("namespaces", store.namespace) is None


def test_a_store_made_while_wp_cron_was_a_cronjob_upgrades_under_the_platform_token(
    cluster, platform_identity, web_identity, tenant, start_worker, tmp_path
):
    # The WooCommerce chart as it was: today's plus the wp-cron CronJob it rendered until wp-cron became
    # a sidecar. Upgrading such a store, helm deletes the CronJob, with the platform token's rights.
    old_charts = tmp_path / "charts"
    shutil.copytree(Path(settings.STORE_CHARTS_DIR) / "woocommerce", old_charts / "woocommerce")
    shutil.copy(LEGACY_WP_CRON, old_charts / "woocommerce" / "templates" / "cron.yaml")
    helm = HELM_BINARIES["helm4"]
    token = _TokenCluster(platform_identity.kubeconfig)
    identity = {
        "PLATFORM_SERVICE_ACCOUNT": platform_identity.setting,
        "PLATFORM_WEB_SERVICE_ACCOUNT": web_identity.setting,
    }
    old_worker = start_worker(token, helm, STORE_CHARTS_DIR=str(old_charts), **identity)
    store, _ = store_create(tenant=tenant, name=unique_name("legacy"), engine="woocommerce")
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store ready on the old chart")
    cronjobs = [c["metadata"]["name"] for c in cluster.objects("cronjobs", store.namespace, api="batch/v1")]
    assert cronjobs == ["wp-cron"]
    old_worker.stop()

    start_worker(token, helm, **identity)
    _reprovision(store)
    wait_for(lambda: status_of(store) == StoreStatus.READY, timeout=120, what="store upgraded")

    assert cluster.objects("cronjobs", store.namespace, api="batch/v1") == []
    assert release_states(cluster, store.namespace) == ["deployed", "superseded"]
    (web,) = cluster.objects("deployments", store.namespace, api="apps/v1")
    assert [c["name"] for c in web["spec"]["template"]["spec"]["containers"]] == ["wordpress", "wp-cron"]


def _assert_the_web_token_reads_nothing_else(cluster, token, namespace):
    def as_web(method, path, body=None):
        return lambda: cluster.request(method, path, body, token=token)

    # In the store's own namespace: not the helm release record, not a list, not a write.
    release_secret = cluster.objects("secrets", namespace, label_selector="owner=helm")[0]["metadata"]["name"]
    forbidden(as_web("GET", f"/api/v1/namespaces/{namespace}/secrets/{release_secret}"))
    forbidden(as_web("GET", f"/api/v1/namespaces/{namespace}/secrets"))
    forbidden(as_web("DELETE", f"/api/v1/namespaces/{namespace}/secrets/store-credentials"))
    # Pods, their logs and events are readable here (a store's activity page), but never written,
    # watched, or read in any other namespace.
    forbidden(as_web("DELETE", f"/api/v1/namespaces/{namespace}/pods/any"))
    forbidden(as_web("GET", f"/api/v1/namespaces/{namespace}/pods?watch=true"))
    forbidden(as_web("GET", "/api/v1/namespaces/kube-system/pods"))
    forbidden(as_web("GET", "/api/v1/namespaces/kube-system/events"))
    forbidden(as_web("GET", "/api/v1/pods"))
    # Anywhere else: nothing.
    forbidden(as_web("GET", "/api/v1/namespaces/kube-system/secrets/store-credentials"))
    forbidden(as_web("GET", "/api/v1/secrets"))
    forbidden(as_web("POST", "/api/v1/namespaces", {"metadata": {"name": "store-from-the-web"}}))
    forbidden(
        as_web(
            "POST",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings",
            {
                "metadata": {"name": "more"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "store-deployer",
                },
                "subjects": [{"kind": "ServiceAccount", "name": WEB_ACCOUNT, "namespace": "platform"}],
            },
        )
    )


def test_the_worker_token_cannot_turn_a_store_namespace_privileged(cluster, platform_identity):
    token = platform_identity.token
    managed = {"app.kubernetes.io/managed-by": "store-platform"}

    def create(name, labels):
        return lambda: cluster.request(
            "POST", "/api/v1/namespaces", {"metadata": {"name": name, "labels": labels}}, token=token
        )

    # The node-takeover path of the finding: a store-* namespace that enforces privileged.
    message = forbidden(create(f"store-{unique_name('evil')}", {**managed, ENFORCE: "privileged"}))
    assert "pod-security.kubernetes.io/enforce=baseline or restricted" in message
    forbidden(create(f"store-{unique_name('bare')}", managed))
    # A store namespace it made may not lose or lower its enforcement afterwards.
    name = f"store-{unique_name('kept')}"
    create(name, {**managed, ENFORCE: "restricted"})()
    for labels in ({ENFORCE: None}, {ENFORCE: "privileged"}):
        forbidden(
            lambda labels=labels: cluster.request(
                "PATCH",
                f"/api/v1/namespaces/{name}",
                {"metadata": {"labels": labels}},
                content_type="application/merge-patch+json",
                token=token,
            )
        )
    assert cluster.get("namespaces", name)["metadata"]["labels"][ENFORCE] == "restricted"


def test_the_platform_token_is_refused_what_the_chart_never_grants(cluster, platform_identity, tenant):
    token = platform_identity.token

    def as_platform(method, path, body=None):
        return lambda: cluster.request(method, path, body, token=token)

    # Secrets outside store namespaces (here kube-system and the platform's own namespace).
    forbidden(as_platform("GET", "/api/v1/namespaces/kube-system/secrets"))
    forbidden(as_platform("GET", "/api/v1/namespaces/platform/secrets"))
    forbidden(as_platform("GET", "/api/v1/secrets"))
    # Cluster-wide RBAC: no new ClusterRoles or ClusterRoleBindings, no changing existing ones.
    forbidden(
        as_platform(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterroles",
            {
                "metadata": {"name": "mine"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            },
        )
    )
    forbidden(
        as_platform(
            "POST",
            "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings",
            {
                "metadata": {"name": "mine"},
                "roleRef": {
                    "apiGroup": "rbac.authorization.k8s.io",
                    "kind": "ClusterRole",
                    "name": "cluster-admin",
                },
                "subjects": [{"kind": "ServiceAccount", "name": "platform", "namespace": "platform"}],
            },
        )
    )
    forbidden(
        as_platform("PATCH", "/apis/rbac.authorization.k8s.io/v1/clusterroles/store-deployer", {"rules": []})
    )
    # Pods in kube-system (or anywhere it was not bound).
    forbidden(
        as_platform(
            "POST",
            "/api/v1/namespaces/kube-system/pods",
            {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "busybox"}]}},
        )
    )

    # In a store namespace it manages, it may bind store-deployer to itself and nothing else.
    namespace = f"store-{unique_name('rbac')}"
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": namespace, "labels": {"app.kubernetes.io/managed-by": "store-platform"}},
        }
    )
    bindings = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/rolebindings"

    def binding(role: str, subject: str = "platform") -> dict:
        return {
            "metadata": {"name": f"to-{role}"},
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
            "subjects": [{"kind": "ServiceAccount", "name": subject, "namespace": "platform"}],
        }

    # RBAC's escalation check: binding a role needs `bind` on it or every permission it grants.
    message = forbidden(as_platform("POST", bindings, binding("cluster-admin")))
    assert "cluster-admin" in message
    forbidden(as_platform("POST", bindings, binding("admin")))
    # The admission policy: store-deployer, but to someone else, is refused too.
    message = forbidden(as_platform("POST", bindings, binding("store-deployer", subject="intruder")))
    assert "ValidatingAdmissionPolicy" in message
    # `escalate`: it cannot write a Role granting more than it holds.
    forbidden(
        as_platform(
            "POST",
            f"/apis/rbac.authorization.k8s.io/v1/namespaces/{namespace}/roles",
            {
                "metadata": {"name": "more"},
                "rules": [{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}],
            },
        )
    )
    # The allowed case, both ways: the binding the orchestrator makes is admitted.
    cluster.request("POST", bindings, binding("store-deployer"), token=token)
