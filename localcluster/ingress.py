"""Traefik as the real node's ingress controller, as k3s ships it and as `values-prod` targets: a
Deployment in kube-system labelled `app.kubernetes.io/name: traefik` (the only pods the store charts'
NetworkPolicies let reach a store's web pods), the Kubernetes Ingress provider, IngressClass
`traefik`, and host port 80 on the node's address, which the host (the test process, a person's
browser through a proxy) reaches over the node's veth pair.

There is no DNS outside the cluster: a client sends the store's or the dashboard's host name to the
node's address, either as a Host header or through `http_proxy=http://<node address>:80`, which makes
every standard-library client (deploy/e2e-cluster.sh, testkit.storefront) send absolute-form requests
that Traefik routes by their host. `ingress_opener()` is that proxy for code in this process.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from localcluster.cluster import LocalCluster

TRAEFIK_IMAGE = "localhost/traefik:v3.6.12"
INGRESS_CLASS = "traefik"
NAMESPACE = "kube-system"
# What charts/platform values-prod.yaml and STORE_INGRESS_CONTROLLER_POD_LABELS name.
LABELS = {"app.kubernetes.io/name": "traefik"}
HTTP_PORT = 80
# Unprivileged ports inside the pod: Traefik runs as uid 65532 without NET_BIND_SERVICE; the CNI
# portmap plugin maps the node's port 80 to the web entry point.
WEB_PORT = 8000
PING_PORT = 8082


def traefik_manifests(node_address: str) -> list[dict[str, Any]]:
    """ServiceAccount, RBAC, IngressClass and Deployment of Traefik, publishing `node_address` as the
    address of every Ingress it serves (what `kubectl get ingress` then shows)."""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "traefik", "namespace": NAMESPACE, "labels": LABELS},
        },
        {
            # The Ingress provider's needs (Traefik's own reference RBAC): Ingresses and
            # IngressClasses, the Services and EndpointSlices behind them, TLS Secrets, and nodes,
            # which its cluster-scoped informer lists alongside IngressClasses.
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "traefik-ingress-controller", "labels": LABELS},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["services", "secrets", "nodes"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["ingresses", "ingressclasses"],
                    "verbs": ["get", "list", "watch"],
                },
                {
                    "apiGroups": ["networking.k8s.io"],
                    "resources": ["ingresses/status"],
                    "verbs": ["update"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "traefik-ingress-controller", "labels": LABELS},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "traefik-ingress-controller",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "traefik", "namespace": NAMESPACE}],
        },
        {
            "apiVersion": "networking.k8s.io/v1",
            "kind": "IngressClass",
            "metadata": {
                "name": INGRESS_CLASS,
                "labels": LABELS,
                # As on k3s: an Ingress that names no class is Traefik's too.
                "annotations": {"ingressclass.kubernetes.io/is-default-class": "true"},
            },
            "spec": {"controller": "traefik.io/ingress-controller"},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "traefik", "namespace": NAMESPACE, "labels": LABELS},
            "spec": {
                "replicas": 1,
                # One node, one host port: the old pod must free port 80 before the new one starts.
                "strategy": {"type": "Recreate"},
                "selector": {"matchLabels": LABELS},
                "template": {
                    "metadata": {"labels": LABELS},
                    "spec": {
                        "serviceAccountName": "traefik",
                        "priorityClassName": "system-cluster-critical",
                        "terminationGracePeriodSeconds": 10,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [
                            {
                                "name": "traefik",
                                "image": TRAEFIK_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": [
                                    f"--entryPoints.web.address=:{WEB_PORT}",
                                    f"--entryPoints.ping.address=:{PING_PORT}",
                                    "--ping=true",
                                    "--ping.entryPoint=ping",
                                    "--providers.kubernetesIngress=true",
                                    f"--providers.kubernetesIngress.ingressEndpoint.ip={node_address}",
                                    # As deploy/k3s/traefik-config.yaml sets on k3s: a suspended store's
                                    # Ingress points at an ExternalName Service (the paused page).
                                    "--providers.kubernetesIngress.allowExternalNameServices=true",
                                    # No internet here, and nothing to report to.
                                    "--global.checkNewVersion=false",
                                    "--global.sendAnonymousUsage=false",
                                    "--log.level=INFO",
                                    "--accessLog=true",
                                ],
                                "ports": [
                                    {
                                        "name": "web",
                                        "containerPort": WEB_PORT,
                                        "hostPort": HTTP_PORT,
                                        "protocol": "TCP",
                                    },
                                    {"name": "ping", "containerPort": PING_PORT, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ping", "port": PING_PORT},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/ping", "port": PING_PORT},
                                    "periodSeconds": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "64Mi"},
                                    "limits": {"memory": "256Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                            }
                        ],
                        "volumes": [{"name": "tmp", "emptyDir": {"sizeLimit": "16Mi"}}],
                    },
                },
            },
        },
    ]


def ingress_opener(node_address: str) -> urllib.request.OpenerDirector:
    """A urllib opener whose http requests all go to Traefik on the node, host names intact (no DNS
    outside the cluster knows them). Errors are raised as urllib raises them."""
    return urllib.request.build_opener(
        urllib.request.ProxyHandler({"http": f"http://{node_address}:{HTTP_PORT}"})
    )


def deploy_traefik(cluster: LocalCluster, node_address: str, timeout: float) -> None:
    """Apply the manifests and return once Traefik answers on the node's port 80 from this host."""
    for manifest in traefik_manifests(node_address):
        cluster.apply(manifest)

    def ready() -> bool:
        deployment = cluster.get("deployments", "traefik", NAMESPACE, api="apps/v1")
        return bool(deployment) and deployment.get("status", {}).get("readyReplicas", 0) >= 1

    cluster.wait(ready, timeout, "Traefik Ready")
    opener = ingress_opener(node_address)

    def answers() -> bool:
        # A host no Ingress names: Traefik's own 404 proves the host port reaches it.
        try:
            opener.open("http://no-such-host.invalid/", timeout=3)
        except urllib.error.HTTPError as exc:
            return exc.code == 404
        return False

    cluster.wait(answers, timeout, f"Traefik on http://{node_address}:{HTTP_PORT}")


def wait_routed(
    node_address: str, url: str, *, timeout: float, statuses: frozenset[int] = frozenset({200})
) -> float:
    """Seconds until `url` (a host only the cluster knows) answers through Traefik with one of
    `statuses`; TimeoutError naming the last answer otherwise."""
    opener = ingress_opener(node_address)
    started = time.monotonic()
    last = "no answer"
    while time.monotonic() - started < timeout:
        try:
            with opener.open(url, timeout=10) as response:
                status = response.status
        except urllib.error.HTTPError as exc:
            status = exc.code
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
            time.sleep(0.5)
            continue
        if status in statuses:
            return time.monotonic() - started
        last = f"HTTP {status}"
        time.sleep(0.5)
    raise TimeoutError(f"{url} through Traefik on {node_address}: {last} after {timeout:.0f} s")


__all__ = [
    "HTTP_PORT",
    "INGRESS_CLASS",
    "LABELS",
    "TRAEFIK_IMAGE",
    "deploy_traefik",
    "ingress_opener",
    "traefik_manifests",
    "wait_routed",
]
