"""The world the NetworkPolicy proof runs in (charts/tests/test_network_enforced.py): a real node with
kube-router enforcing, two stores installed from the store charts with the values the platform sends
in production, the platform chart's PostgreSQL, Redis and NetworkPolicies, an "internet" beside the
node, and probe pods placed where each case needs them.

Why the stores are installed with helm here rather than through a worker: on this node neither store
reaches `ready` yet (the WooCommerce setup Job needs wp-cli, which cannot be fetched, and the Medusa
image cannot run its migrations; see deploy/images/README.md), and the worker then rolls the release
back, NetworkPolicies and all. The values are still the platform's own: `release_spec_for` renders
them from a store on the default plan, under the settings the platform chart's production worker
runs with, and the namespace and credentials Secret are made by the executor's own functions; only
the hooks (the setup and bootstrap Jobs) are left out (`--no-hooks`), since nothing they do is a
network path of their own (their pods carry the web pods' labels, which the web stand-ins test).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import tempfile
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import environ
import kubernetes
import pytest
from django.db import transaction
from django.test import override_settings
from kubernetes.stream import stream

from charts.tests.platform_support import NAMESPACE as PLATFORM_NAMESPACE
from charts.tests.platform_support import RELEASE as PLATFORM_RELEASE
from charts.tests.platform_support import rendered_platform
from charts.tests.rendering import REPO_ROOT, render_chart, run_helm
from localcluster.netpol import Internet, Listener, NetworkPolicyEngine, engine_missing
from localcluster.node import missing_requirements, real_node_cluster

HELM = REPO_ROOT / ".tools" / "bin" / "helm3"
PROBE_IMAGE = "localhost/netpol-probe:1"
# What the pods of this world run: the probe, both stores' datastores, WordPress and its wp-cron
# sidecar, and the platform's PostgreSQL and Redis (the same stand-ins as the stores'). Medusa's image
# is left out on purpose: it cannot run its migrations here, and the web stand-in carries its labels
# instead.
IMAGES = (
    PROBE_IMAGE,
    "mariadb:11.4.7",
    "wordpress:6.8.2-php8.3-apache",
    "wordpress:cli-2.12.0-php8.3",
    "postgres:16.9-bookworm",
    "redis:7.4.2-bookworm",
)
STORES = {"a": ("netpol-a", "woocommerce"), "b": ("netpol-b", "medusa")}
OUTSIDER_NAMESPACE = "netpol-outsider"
# The settings a store's values and namespace are made of, as the platform chart's worker gets them
# in production (values-prod.yaml), parsed with the types platform_site/settings.py reads them with.
STORE_SETTINGS = {
    "STORE_BASE_DOMAIN": "str",
    "STORE_URL_SCHEME": "str",
    "STORE_INGRESS_CLASS": "str",
    "STORE_STORAGE_CLASS": "str",
    "STORE_INGRESS_CONTROLLER_NAMESPACE": "str",
    "STORE_INGRESS_CONTROLLER_POD_LABELS": "dict",
    "STORE_CLUSTER_CIDRS": "list",
    "STORE_POD_SECURITY_LEVEL": "str",
}
# Only what the proof needs of the platform: its datastores, their policies and what they mount. The
# requests are lowered to fit beside two stores on this 2-core node; no policy reads them.
PLATFORM_KINDS = {"NetworkPolicy", "ServiceAccount", "Secret", "Service", "StatefulSet"}
PLATFORM_TEST_VALUES = {
    "postgres": {"resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}},
    "redis": {"resources": {"requests": {"cpu": "50m", "memory": "64Mi"}}},
}
PROBE_RESOURCES = {"requests": {"cpu": "5m", "memory": "8Mi"}, "limits": {"cpu": "20m", "memory": "32Mi"}}


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def requirements_or_skip() -> None:
    """Skip without what the proof needs; with CI=true that is a failure, so CI cannot pass by skipping."""
    problems = [*missing_requirements(IMAGES), *engine_missing()]
    if not HELM.is_file():
        problems.append(f"{HELM} (make tools)")
    if problems:
        message = "NetworkPolicy proof unavailable: missing " + "; ".join(dict.fromkeys(problems))
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)


def production_worker_env() -> dict[str, str]:
    """The literal environment of the platform chart's worker, rendered with values-prod.yaml."""
    [worker] = [
        obj
        for obj in rendered_platform("prod")
        if obj["kind"] == "Deployment" and obj["metadata"]["name"] == f"{PLATFORM_RELEASE}-worker"
    ]
    [container] = worker["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


# Backups on, with the "internet" host standing for the object store on 443 (its 80 stays a port the
# backup Jobs may not use). values-prod.yaml ships backups off, so these are set here.
OBJECT_STORE_ADDRESS = f"{Internet.prefix}.10"
BACKUP_SETTINGS = {
    "BACKUP_S3_ENDPOINT": f"https://{OBJECT_STORE_ADDRESS}",
    "BACKUP_S3_EGRESS": [f"{OBJECT_STORE_ADDRESS}/32"],
    "BACKUP_S3_EGRESS_PORT": 443,
}


def production_store_settings() -> dict[str, Any]:
    reader = environ.Env()
    reader.ENVIRON = production_worker_env()
    return {
        **{name: getattr(reader, kind)(name) for name, kind in STORE_SETTINGS.items()},
        **BACKUP_SETTINGS,
    }


def release_specs(django_db_blocker: Any) -> dict[str, Any]:
    """The platform's ReleaseSpec of each store, computed on the default plan and rolled back."""
    from stores.models import Store, Tenant
    from stores.release import release_spec_for
    from stores.tests.factories import default_plan
    from stores.validators import host_for_store, namespace_for_store, release_name_for_store

    specs = {}
    settings = production_store_settings()
    with django_db_blocker.unblock(), override_settings(**settings), transaction.atomic():
        tenant = Tenant(name="Netpol", slug="netpol", plan=default_plan())
        for key, (name, engine) in STORES.items():
            store = Store(
                tenant=tenant,
                name=name,
                engine=engine,
                namespace=namespace_for_store(name),
                release_name=release_name_for_store(name),
                host=host_for_store(name, settings["STORE_BASE_DOMAIN"]),
            )
            specs[key] = release_spec_for(store)
        transaction.set_rollback(True)
    return specs


@dataclass
class Position:
    """A probe pod: where it runs, the labels it carries (a workload's, copied from the cluster) and
    the ports it listens on, so that it is also a target."""

    name: str
    namespace: str
    labels: dict[str, str]
    ports: tuple[int, ...]
    ip: str = ""


@dataclass
class World:
    cluster: Any
    node: Any
    engine: NetworkPolicyEngine
    internet: Internet
    positions: dict[str, Position] = field(default_factory=dict)
    addresses: dict[str, str] = field(default_factory=dict)
    specs: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def core(self) -> kubernetes.client.CoreV1Api:
        return kubernetes.client.CoreV1Api(
            kubernetes.config.new_client_from_config(config_file=str(self.cluster.kubeconfig))
        )

    def probe(self, source: str, *checks: str, timeout: str = "2s") -> list[dict[str, Any]]:
        """Run `probe check` inside the source's pod (its network namespace, so its policies apply)."""
        position = self.positions[source]
        output = stream(
            self.core.connect_get_namespaced_pod_exec,
            position.name,
            position.namespace,
            command=["/probe", "check", "-timeout", timeout, *checks],
            stderr=True,
            stdin=False,
            stdout=True,
            tty=False,
        )
        return json.loads(output)["results"]

    def wait_fenced(self, timeout: float = 90) -> float:
        """Seconds until the engine has written the chain of every probe pod and of every datastore, and
        a rule for every NetworkPolicy in the cluster (so a probe never runs ahead of the rules)."""
        started = time.monotonic()
        policies = {
            p["metadata"]["name"]
            for p in self.cluster.request("GET", "/apis/networking.k8s.io/v1/networkpolicies")["items"]
        }
        pods = [(p.namespace, p.name) for p in self.positions.values()]

        def fenced() -> bool:
            rules = self.engine.rules()
            return all(
                f"from POD name:{name} namespace: {ns} to chain" in rules for ns, name in pods
            ) and all(f"run through nw policy {policy}" in rules for policy in policies)

        self.cluster.wait(fenced, timeout, "the engine's chains for every probe pod and policy")
        return time.monotonic() - started


@contextlib.contextmanager
def network_world(work_dir: Path, django_db_blocker: Any) -> Iterator[World]:
    """Everything the proof probes, torn down (processes, namespaces, mounts) when the block ends."""
    requirements_or_skip()
    specs = release_specs(django_db_blocker)
    begun = time.monotonic()
    with real_node_cluster(work_dir, images=IMAGES) as (cluster, node):
        timings = {"node": time.monotonic() - begun}
        engine = NetworkPolicyEngine(node)
        internet = Internet.beside(node)
        listeners: list[Listener] = []
        try:
            engine.start(cluster)
            timings["engine start"] = engine.started_seconds
            internet.create(node)
            listeners = [
                # The internet host and the metadata address: the ports stores may use, and one they may not.
                Listener("internet", internet.wrapper, (80, 443, 8443), log_dir=node.logs).start(),
                # A port the stores may use towards the internet, on the node's own address.
                Listener(
                    "node", node.network.wrapper, (80,), log_dir=node.logs, address=node.network.node_address
                ).start(),
            ]
            world = World(cluster, node, engine, internet, specs=specs, timings=timings)
            step = time.monotonic()
            _install_stores(world)
            _install_platform(world)
            timings["install"] = time.monotonic() - step
            step = time.monotonic()
            _wait_datastores(world)
            timings["datastores Ready"] = time.monotonic() - step
            step = time.monotonic()
            _place_probes(world)
            timings["probes Running"] = time.monotonic() - step
            timings["engine fenced them"] = world.wait_fenced()
            _resolve_addresses(world)
            yield world
        finally:
            for listener in listeners:
                listener.stop()
            engine.stop()
            internet.delete()


def _api(cluster: Any) -> kubernetes.client.ApiClient:
    return kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))


def _install_stores(world: World) -> None:
    from provisioning import cluster as platform_cluster

    api = _api(world.cluster)
    for spec in world.specs.values():
        # The executor's own steps: the namespace with the platform's labels (Pod Security
        # restricted), the credentials Secret it generates.
        platform_cluster.ensure_namespace(api, name=spec.namespace, labels=dict(spec.namespace_labels))
        platform_cluster.ensure_credentials_secret(
            api,
            namespace=spec.namespace,
            name=spec.credentials.name,
            keys=spec.credentials.keys,
            admin_email=spec.credentials.admin_email,
            labels=dict(spec.credentials.labels),
        )
        with tempfile.TemporaryDirectory(prefix="netpol-values-") as tmp:
            values = Path(tmp) / "values.json"
            values.touch(mode=0o600)
            values.write_text(json.dumps(spec.values))
            result = run_helm(
                [
                    "install",
                    spec.release,
                    spec.chart,
                    "--namespace",
                    spec.namespace,
                    "--kubeconfig",
                    str(world.cluster.kubeconfig),
                    "--values",
                    str(values),
                    "--no-hooks",
                ],
                helm=str(HELM),
            )
        assert result.returncode == 0, result.stderr
    api.close()


def _install_platform(world: World) -> None:
    cluster = world.cluster
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": PLATFORM_NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    cluster.wait(
        lambda: cluster.get("serviceaccounts", "default", PLATFORM_NAMESPACE),
        30,
        "the platform's ServiceAccount",
    )
    from charts.tests.platform_support import PLATFORM, VALUES_FILES, extra_values
    from charts.tests.rendering import deep_merge

    manifests = render_chart(
        str(PLATFORM),
        [VALUES_FILES["prod"]],
        deep_merge(extra_values("prod") or {}, PLATFORM_TEST_VALUES),
        helm=str(HELM),
        namespace=PLATFORM_NAMESPACE,
        release=PLATFORM_RELEASE,
    )
    for obj in manifests:
        if obj["kind"] in PLATFORM_KINDS:
            obj["metadata"]["namespace"] = PLATFORM_NAMESPACE
            cluster.apply(obj)
    # The web and worker stand-ins copy the labels of the Deployments that are not installed.
    world.specs["platform"] = {
        obj["metadata"]["name"]: obj["spec"]["template"]["metadata"]["labels"]
        for obj in manifests
        if obj["kind"] == "Deployment"
    }


def _ready(pod: dict[str, Any]) -> bool:
    return any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


def _wait_datastores(world: World, timeout: float = 240) -> None:
    cluster = world.cluster
    wanted = {
        (world.specs["a"].namespace, "statefulsets", "mariadb"),
        (world.specs["a"].namespace, "deployments", "wordpress"),
        (world.specs["b"].namespace, "statefulsets", "postgres"),
        (world.specs["b"].namespace, "deployments", "redis"),
        (PLATFORM_NAMESPACE, "statefulsets", f"{PLATFORM_RELEASE}-postgres"),
        (PLATFORM_NAMESPACE, "statefulsets", f"{PLATFORM_RELEASE}-redis"),
    }

    def ready() -> bool:
        return all(
            (cluster.get(kind, name, namespace, api="apps/v1") or {}).get("status", {}).get("readyReplicas")
            == 1
            for namespace, kind, name in wanted
        )

    cluster.wait(ready, timeout, f"the datastores and WordPress Ready ({sorted(wanted)})")


def _template_labels(cluster: Any, namespace: str, kind: str, name: str) -> dict[str, str]:
    workload = cluster.get(kind, name, namespace, api="apps/v1")
    assert workload is not None, f"{kind}/{name} in {namespace}"
    return dict(workload["spec"]["template"]["metadata"]["labels"])


def _place_probes(world: World, timeout: float = 120) -> None:
    cluster = world.cluster
    a, b = world.specs["a"].namespace, world.specs["b"].namespace
    controller_namespace = world.specs["a"].values["ingress"]["controller"]["namespace"]
    controller_labels = dict(world.specs["a"].values["ingress"]["controller"]["podLabels"])
    platform_labels = world.specs["platform"]
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": OUTSIDER_NAMESPACE,
                "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
            },
        }
    )
    cluster.wait(
        lambda: cluster.get("serviceaccounts", "default", OUTSIDER_NAMESPACE), 30, "a ServiceAccount"
    )
    positions = [
        # Stand-ins carrying a store workload's pod labels: the chart's policies select them as they
        # select the real pods.
        Position("a-web", a, _template_labels(cluster, a, "deployments", "wordpress"), (8080,)),
        Position("a-db", a, _template_labels(cluster, a, "statefulsets", "mariadb"), (3306,)),
        Position("b-web", b, _template_labels(cluster, b, "deployments", "medusa"), (9000,)),
        # A backup Job's pod, with the labels provisioning/backup_jobs.py gives it.
        Position("a-backup", a, _backup_pod_labels(world.specs["a"]), (8000,)),
        # The ingress controller as the stores' values name it (Traefik in kube-system, as k3s runs it).
        Position("ingress", controller_namespace, controller_labels, (8000, 8443)),
        # The controller's namespace, without its labels; and its labels, in another namespace.
        Position("kube-system-other", controller_namespace, {"app": "netpol-probe"}, (8000,)),
        Position("outsider", OUTSIDER_NAMESPACE, controller_labels, (8000,)),
        Position("platform-web", PLATFORM_NAMESPACE, platform_labels[f"{PLATFORM_RELEASE}-web"], (8000,)),
        Position(
            "platform-worker", PLATFORM_NAMESPACE, platform_labels[f"{PLATFORM_RELEASE}-worker"], (8000,)
        ),
        Position(
            "platform-other",
            PLATFORM_NAMESPACE,
            {**platform_labels[f"{PLATFORM_RELEASE}-web"], "app.kubernetes.io/component": "shell"},
            (8000,),
        ),
    ]
    for position in positions:
        cluster.request("POST", f"/api/v1/namespaces/{position.namespace}/pods", _probe_pod(position))
        world.positions[position.name] = position

    def running() -> bool:
        for position in world.positions.values():
            pod = cluster.get("pods", position.name, position.namespace) or {}
            statuses = pod.get("status", {}).get("containerStatuses", [])
            if not (statuses and "running" in statuses[0].get("state", {}) and pod["status"].get("podIP")):
                return False
            position.ip = pod["status"]["podIP"]
        return True

    cluster.wait(running, timeout, "every probe pod running")


def _backup_pod_labels(spec: Any) -> dict[str, str]:
    from provisioning.backup_jobs import job_manifest
    from provisioning.cluster import STORE_LABEL
    from provisioning.tests.test_backup_jobs import backup_spec

    # As stores.backups builds it for the store: its store label, the Job's own on top.
    labels = {STORE_LABEL: spec.namespace_labels[STORE_LABEL]}
    job = job_manifest(dataclasses.replace(backup_spec(), namespace=spec.namespace, labels=labels))
    return dict(job.spec.template.metadata.labels)


def _probe_pod(position: Position) -> dict[str, Any]:
    # Restricted, like every store pod. Never Ready (nothing listens on port 1): a stand-in carrying a
    # workload's selector labels must never become an endpoint of that workload's Service.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": position.name, "namespace": position.namespace, "labels": position.labels},
        "spec": {
            "automountServiceAccountToken": False,
            "enableServiceLinks": False,
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 65532,
                "runAsGroup": 65532,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "probe",
                    "image": PROBE_IMAGE,
                    "imagePullPolicy": "Never",
                    "args": ["serve", *map(str, position.ports)],
                    "readinessProbe": {"tcpSocket": {"port": 1}, "periodSeconds": 30},
                    "resources": PROBE_RESOURCES,
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "readOnlyRootFilesystem": True,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


def _pod_ip(cluster: Any, namespace: str, selector: str) -> str:
    # The workload's own pod: the probe stand-ins carrying the same labels are never Ready.
    pods = [p for p in cluster.objects("pods", namespace, label_selector=selector) if _ready(p)]
    assert len(pods) == 1, (
        f"one Ready pod for {selector} in {namespace}, found {[p['metadata']['name'] for p in pods]}"
    )
    return pods[0]["status"]["podIP"]


def _resolve_addresses(world: World) -> None:
    cluster = world.cluster
    a, b = world.specs["a"], world.specs["b"]
    apiserver = urllib.parse.urlsplit(cluster.server)
    addresses = {
        "a.mariadb": f"{_pod_ip(cluster, a.namespace, 'app.kubernetes.io/name=mariadb')}:3306",
        "a.wordpress": f"{_pod_ip(cluster, a.namespace, 'app.kubernetes.io/name=wordpress')}:8080",
        "b.postgres": f"{_pod_ip(cluster, b.namespace, 'app.kubernetes.io/name=postgres')}:5432",
        "b.redis": f"{_pod_ip(cluster, b.namespace, 'app.kubernetes.io/name=redis')}:6379",
        "platform.postgres": f"{_pod_ip(cluster, PLATFORM_NAMESPACE, 'app.kubernetes.io/component=postgres')}:5432",
        "platform.redis": f"{_pod_ip(cluster, PLATFORM_NAMESPACE, 'app.kubernetes.io/component=redis')}:6379",
        "coredns.health": f"{_pod_ip(cluster, 'kube-system', 'k8s-app=kube-dns')}:8080",
        "coredns.ready": f"{_pod_ip(cluster, 'kube-system', 'k8s-app=kube-dns')}:8181",
        "kube-dns": "10.96.0.10:53",
        "kubernetes-service": "10.96.0.1:443",
        "apiserver": f"{apiserver.hostname}:{apiserver.port}",
        "kubelet": f"{world.node.network.node_address}:10250",
        "node:80": f"{world.node.network.node_address}:80",
        "metadata": f"{world.internet.metadata_address}:80",
        "internet:80": f"{world.internet.address}:80",
        "internet:443": f"{world.internet.address}:443",
        "internet:8443": f"{world.internet.address}:8443",
    }
    for position in world.positions.values():
        for port in position.ports:
            addresses[f"{position.name}:{port}"] = f"{position.ip}:{port}"
    world.addresses = addresses
