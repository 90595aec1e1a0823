"""A real Kubernetes control plane on loopback: etcd, kube-apiserver, kube-controller-manager,
kube-scheduler and kwok (fake nodes whose pods go Running/Ready, and Job pods Succeeded, without
containers), all built from Go modules by `make tools`.

Why a launcher of our own rather than `kwokctl create cluster --runtime binary`: tests stop and start
single components (the apiserver during a provision), several clusters run side by side on free ports,
ServiceAccount tokens are minted against the signing key this launcher owns, and the real node of
deploy/cluster adds a kubelet, containerd and kube-proxy in a network namespace with flags kwokctl does
not manage. Every flag set here is one a real cluster sets; see README "Real clusters".
"""

from __future__ import annotations

import base64
import contextlib
import json
import shutil
import ssl
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from localcluster.binaries import ClusterBinaries
from localcluster.pki import CertPair, ClusterPKI
from localcluster.processes import Component, ComponentFailed, free_port

STAGES_FILE = Path(__file__).with_name("stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
KWOK_POD_CIDR = "10.244.0.1/16"
KWOK_NODE_IP = "10.240.0.1"
STORAGE_CLASSES = ("local-path", "hostpath")  # what values-prod and values-local name
NEVER_READY_LABEL = "platform.example/kwok-never-ready"


@dataclass(frozen=True)
class FakeNode:
    """A kwok node: schedulable, with the allocatable resources of a small real machine."""

    name: str
    cpu: str = "4"
    memory: str = "16Gi"
    pods: int = 110
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()


def kubeconfig_yaml(
    server: str, ca: Path, *, user: str, cert: CertPair | None = None, token: str = ""
) -> str:
    credentials: dict[str, str] = {}
    if cert is not None:
        credentials["client-certificate-data"] = base64.b64encode(cert.cert.read_bytes()).decode()
        credentials["client-key-data"] = base64.b64encode(cert.key.read_bytes()).decode()
    if token:
        credentials["token"] = token
    return yaml.safe_dump(
        {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {
                    "name": "local",
                    "cluster": {
                        "server": server,
                        "certificate-authority-data": base64.b64encode(ca.read_bytes()).decode(),
                    },
                }
            ],
            "users": [{"name": user, "user": credentials}],
            "contexts": [{"name": "local", "context": {"cluster": "local", "user": user}}],
            "current-context": "local",
        },
        sort_keys=False,
    )


class LocalCluster:
    """One control plane under `work_dir` (certificates, etcd data, logs, kubeconfigs).

    `start()` brings everything up and returns once the fake nodes are Ready; `stop()` ends it. The
    admin kubeconfig (`kubeconfig`) authenticates as system:masters; `service_account_kubeconfig()`
    mints a real ServiceAccount token through the TokenRequest API.
    """

    def __init__(
        self,
        work_dir: Path,
        *,
        binaries: ClusterBinaries | None = None,
        nodes: tuple[FakeNode, ...] = (FakeNode("kwok-node-1"), FakeNode("kwok-node-2")),
        name: str = "local",
        address: str = "127.0.0.1",
    ) -> None:
        self.binaries = binaries or ClusterBinaries.find()
        self.work_dir = work_dir
        self.name = name
        self.nodes = nodes
        self.pki = ClusterPKI(work_dir / "pki")
        self.logs = work_dir / "logs"
        self.etcd_port, self.etcd_peer_port = free_port(), free_port()
        self.apiserver_port = free_port()
        # Loopback unless a real node must reach the apiserver from its network namespace: then the
        # host end of the node's veth pair (see localcluster.node), which is also the kubernetes
        # Service's endpoint.
        self.address = address
        self.server = f"https://{address}:{self.apiserver_port}"
        self.kubeconfig = work_dir / "kubeconfig"
        self.components: dict[str, Component] = {}
        self.started_seconds: float | None = None

    # The Kubernetes API double and this class both offer these, so fixtures take either.
    is_simulated = False

    @property
    def kubeconfig_path(self) -> Path:
        """The admin kubeconfig (system:masters)."""
        return self.kubeconfig

    # ---- life cycle --------------------------------------------------------------------------------

    def start(self, *, timeout: float = 120) -> LocalCluster:
        """Start every component in dependency order; ComponentFailed names the one that did not."""
        begun = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities()
        self.components = {
            "etcd": self._etcd(),
            "kube-apiserver": self._apiserver(),
            "kube-controller-manager": self._controller_manager(),
            "kube-scheduler": self._scheduler(),
            "kwok": self._kwok(),
        }
        try:
            for component_name in ("etcd", "kube-apiserver"):
                self.components[component_name].start(timeout=timeout)
            self._install_kwok_stages()
            for component_name in ("kube-controller-manager", "kube-scheduler", "kwok"):
                self.components[component_name].start(timeout=timeout)
            self._create_storage_classes()
            self._create_nodes()
            self._wait_nodes_ready(timeout)
            self._wait_default_service_account(timeout)
        except BaseException:
            self.stop()
            raise
        self.started_seconds = time.monotonic() - begun
        return self

    def stop(self) -> None:
        """Stop every component, newest first. The work directory stays for the logs."""
        for component in reversed(list(self.components.values())):
            component.stop()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def stop_component(self, name: str) -> None:
        """Stop one component (e.g. the apiserver, to simulate an outage)."""
        self.components[name].stop()

    def start_component(self, name: str, *, timeout: float = 90) -> None:
        """Start a stopped component again with the same flags, data and ports."""
        self.components[name].start(timeout=timeout)

    # ---- identities and kubeconfigs ----------------------------------------------------------------

    def _write_identities(self) -> None:
        self.serving = self.pki.serving(
            "apiserver",
            names=(
                "kubernetes",
                "kubernetes.default",
                "kubernetes.default.svc",
                "kubernetes.default.svc.cluster.local",
                "localhost",
            ),
            ips=tuple(dict.fromkeys(("127.0.0.1", self.address, "10.96.0.1"))),
        )
        self.sa_keys = self.pki.service_account_keys()
        # The controller-manager and scheduler serve /healthz with a certificate of our CA, so their
        # readiness is checked with verification on, like the apiserver's.
        self.component_serving = self.pki.serving("components", names=("localhost",), ips=("127.0.0.1",))
        identities = {
            "admin": ("kubernetes-admin", ("system:masters",)),
            "controller-manager": ("system:kube-controller-manager", ()),
            "scheduler": ("system:kube-scheduler", ()),
            # kwok acts as the kubelet of many nodes at once, so it cannot be one system:node:<name>.
            "kwok": ("kwok-controller", ("system:masters",)),
            "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
        }
        for stem, (user, groups) in identities.items():
            pair = self.pki.client(stem, user=user, groups=groups)
            path = self.kubeconfig if stem == "admin" else self.work_dir / f"{stem}.kubeconfig"
            path.write_text(kubeconfig_yaml(self.server, self.pki.ca.cert, user=user, cert=pair))
            path.chmod(0o600)

    def identity_kubeconfig(self, stem: str) -> Path:
        """The kubeconfig written for one component identity (controller-manager, scheduler, ...)."""
        return self.work_dir / f"{stem}.kubeconfig"

    def service_account_kubeconfig(
        self, *, namespace: str, name: str, path: Path, expiration_seconds: int = 86400
    ) -> Path:
        """Mint a token for the ServiceAccount through TokenRequest and write a kubeconfig using only it."""
        response = self.request(
            "POST",
            f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token",
            {
                "apiVersion": "authentication.k8s.io/v1",
                "kind": "TokenRequest",
                "spec": {"expirationSeconds": expiration_seconds},
            },
        )
        token = response["status"]["token"]
        path.write_text(
            kubeconfig_yaml(self.server, self.pki.ca.cert, user=f"{namespace}-{name}", token=token)
        )
        path.chmod(0o600)
        return path

    # ---- raw API access (no client library needed by the launcher) ---------------------------------

    def _ssl_context(self, *, as_admin: bool = True) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        if as_admin:
            admin = self.pki.client("admin", user="kubernetes-admin", groups=("system:masters",))
            context.load_cert_chain(str(admin.cert), str(admin.key))
        return context

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        content_type: str = "application/json",
        timeout: float = 15,
        token: str = "",
    ) -> Any:
        """One request to the apiserver, as the admin or (with `token`) as whoever holds the token;
        returns the decoded JSON (urllib.error.HTTPError on 4xx/5xx)."""
        data = None
        if body is not None:
            data = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the URL is this cluster's own https endpoint
            f"{self.server}{path}", data=data, method=method
        )
        if data is not None:
            request.add_header("Content-Type", content_type)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        context = self._ssl_context(as_admin=not token)
        with urllib.request.urlopen(request, context=context, timeout=timeout) as response:  # noqa: S310
            payload = response.read()
        return json.loads(payload) if payload else None

    def objects(
        self, resource: str, namespace: str | None = None, *, api: str = "v1", label_selector: str = ""
    ) -> list[dict[str, Any]]:
        """Every object of one resource (`secrets`, `deployments` with api="apps/v1", ...)."""
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        query = f"?labelSelector={urllib.parse.quote(label_selector)}" if label_selector else ""
        return self.request("GET", f"{base}{scope}/{resource}{query}")["items"]

    def get(self, resource: str, name: str, namespace: str | None = None, *, api: str = "v1") -> Any:
        """One object, or None when the apiserver says 404."""
        base = f"/api/{api}" if "/" not in api else f"/apis/{api}"
        scope = f"/namespaces/{namespace}" if namespace else ""
        try:
            return self.request("GET", f"{base}{scope}/{resource}/{name}")
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                return None
            raise

    def apply(self, manifest: dict[str, Any], *, field_manager: str = "localcluster") -> Any:
        """Server-side apply one object (cluster-scoped or namespaced) as the admin."""
        api_version, kind = manifest["apiVersion"], manifest["kind"]
        metadata = manifest["metadata"]
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        resource = self._resource_name(api_version, kind)
        namespace = metadata.get("namespace")
        scope = f"/namespaces/{namespace}" if namespace else ""
        return self.request(
            "PATCH",
            f"{base}{scope}/{resource}/{metadata['name']}?fieldManager={field_manager}&force=true",
            json.dumps(manifest),
            content_type="application/apply-patch+yaml",
        )

    def _resource_name(self, api_version: str, kind: str) -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        for resource in self.request("GET", base)["resources"]:
            if resource["kind"] == kind and "/" not in resource["name"]:
                return resource["name"]
        raise KeyError(f"{api_version} {kind} is not served")

    def _https_ready(self, port: int, path: str, *, host: str = "127.0.0.1") -> bool:
        with urllib.request.urlopen(  # noqa: S310 - health endpoint of a component we started
            f"https://{host}:{port}{path}", context=self._ssl_context(), timeout=3
        ) as response:
            return response.status == 200

    # ---- components --------------------------------------------------------------------------------

    def _etcd(self) -> Component:
        peer = f"http://127.0.0.1:{self.etcd_peer_port}"
        client_url = f"http://127.0.0.1:{self.etcd_port}"

        def ready() -> bool:
            with urllib.request.urlopen(f"{client_url}/health", timeout=2) as response:  # noqa: S310
                return json.loads(response.read()).get("health") == "true"

        return Component(
            "etcd",
            [
                self.binaries.path("etcd"),
                "--name=etcd0",
                f"--data-dir={self.work_dir / 'etcd'}",
                f"--listen-client-urls={client_url}",
                f"--advertise-client-urls={client_url}",
                f"--listen-peer-urls={peer}",
                f"--initial-advertise-peer-urls={peer}",
                f"--initial-cluster=etcd0={peer}",
                # A test cluster: losing the last writes on a crash of the whole machine is acceptable.
                "--unsafe-no-fsync",
                "--quota-backend-bytes=4294967296",
                "--log-level=warn",
            ],
            log_path=self.logs / "etcd.log",
            ready=ready,
        )

    def _apiserver(self) -> Component:
        return Component(
            "kube-apiserver",
            [
                self.binaries.path("kube-apiserver"),
                f"--etcd-servers=http://127.0.0.1:{self.etcd_port}",
                f"--bind-address={self.address}",
                f"--advertise-address={self.address}",
                f"--secure-port={self.apiserver_port}",
                f"--tls-cert-file={self.serving.cert}",
                f"--tls-private-key-file={self.serving.key}",
                f"--client-ca-file={self.pki.ca.cert}",
                f"--kubelet-certificate-authority={self.pki.ca.cert}",
                f"--kubelet-client-certificate={self.work_dir / 'pki' / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={self.work_dir / 'pki' / 'apiserver-kubelet-client.key'}",
                # A real node's name is not in any DNS the apiserver uses (logs, exec): dial its IP.
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
                f"--service-account-key-file={self.sa_keys.cert}",
                f"--service-account-signing-key-file={self.sa_keys.key}",
                "--authorization-mode=Node,RBAC",
                # The defaults (NamespaceLifecycle, LimitRanger, ServiceAccount, ResourceQuota,
                # PodSecurity, ValidatingAdmissionPolicy, the webhooks, ...) stay on; NodeRestriction
                # is what real clusters add.
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                # Loopback cannot be a Service endpoint (kwok pods never call the API anyway); an address
                # a real node reaches is published as the `kubernetes` Service's endpoint, as usual.
                f"--endpoint-reconciler-type={'none' if self.address == '127.0.0.1' else 'lease'}",
                # Flow control costs CPU on a 2-core machine and changes nothing that is tested here.
                "--enable-priority-and-fairness=false",
                "--profiling=false",
                "--event-ttl=1h",
            ],
            log_path=self.logs / "kube-apiserver.log",
            ready=lambda: self._https_ready(self.apiserver_port, "/readyz", host=self.address),
        )

    def _controller_manager(self) -> Component:
        port = free_port()
        kubeconfig = self.identity_kubeconfig("controller-manager")
        return Component(
            "kube-controller-manager",
            [
                self.binaries.path("kube-controller-manager"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--tls-cert-file={self.component_serving.cert}",
                f"--tls-private-key-file={self.component_serving.key}",
                "--leader-elect=false",
                # Each controller acts as its own ServiceAccount, under the bootstrap RBAC a real
                # cluster has (the namespace controller's deletes are then authorised for real).
                "--use-service-account-credentials=true",
                f"--service-account-private-key-file={self.sa_keys.key}",
                f"--root-ca-file={self.pki.ca.cert}",
                f"--cluster-signing-cert-file={self.pki.ca.cert}",
                f"--cluster-signing-key-file={self.pki.ca.key}",
                # The in-tree hostPath provisioner binds the charts' PVCs on one machine (what
                # local-up-cluster.sh does); its volumes live under /tmp and are deleted with the PVC.
                "--enable-hostpath-provisioner=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--profiling=false",
            ],
            log_path=self.logs / "kube-controller-manager.log",
            ready=lambda: self._https_ready(port, "/healthz"),
        )

    def _scheduler(self) -> Component:
        port = free_port()
        kubeconfig = self.identity_kubeconfig("scheduler")
        return Component(
            "kube-scheduler",
            [
                self.binaries.path("kube-scheduler"),
                f"--kubeconfig={kubeconfig}",
                f"--authentication-kubeconfig={kubeconfig}",
                f"--authorization-kubeconfig={kubeconfig}",
                "--bind-address=127.0.0.1",
                f"--secure-port={port}",
                f"--tls-cert-file={self.component_serving.cert}",
                f"--tls-private-key-file={self.component_serving.key}",
                "--leader-elect=false",
                "--profiling=false",
            ],
            log_path=self.logs / "kube-scheduler.log",
            ready=lambda: self._https_ready(port, "/healthz"),
        )

    def _kwok(self) -> Component:
        config = self.work_dir / "kwok.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
                    "kind": "KwokConfiguration",
                    "options": {
                        "enableCRDs": ["Stage"],
                        "manageNodesWithAnnotationSelector": "kwok.x-k8s.io/node=fake",
                        "cidr": KWOK_POD_CIDR,
                        "nodeIP": KWOK_NODE_IP,
                        "nodeLeaseDurationSeconds": 40,
                        # kwok applies its defaults only to a configuration it generates itself.
                        "podPlayStageParallelism": 4,
                        "nodePlayStageParallelism": 4,
                        "nodeLeaseParallelism": 4,
                        "podsOnNodeSyncParallelism": 1,
                    },
                }
            )
        )
        health_port = free_port()

        def ready() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{health_port}/healthz", timeout=2) as response:  # noqa: S310
                return response.status == 200

        return Component(
            "kwok",
            [
                self.binaries.path("kwok"),
                f"--kubeconfig={self.identity_kubeconfig('kwok')}",
                f"--config={config}",
                f"--server-address=127.0.0.1:{health_port}",
            ],
            log_path=self.logs / "kwok.log",
            ready=ready,
        )

    # ---- objects every cluster starts with ---------------------------------------------------------

    def _install_kwok_stages(self) -> None:
        crd = yaml.safe_load(self.binaries.stage_crd.read_text())
        self.apply(crd)
        self.wait(lambda: self._crd_established(crd["metadata"]["name"]), 30, "kwok Stage CRD established")
        text = STAGES_FILE.read_text().replace("__KUBERNETES_VERSION__", self.binaries.kubernetes_version)
        for stage in yaml.safe_load_all(text):
            self.apply(stage)

    def _crd_established(self, name: str) -> bool:
        crd = self.request("GET", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}")
        return any(
            c["type"] == "Established" and c["status"] == "True"
            for c in crd.get("status", {}).get("conditions", [])
        )

    def _create_storage_classes(self) -> None:
        for index, class_name in enumerate(STORAGE_CLASSES):
            annotations = {"storageclass.kubernetes.io/is-default-class": "true"} if index == 0 else {}
            self.apply(
                {
                    "apiVersion": "storage.k8s.io/v1",
                    "kind": "StorageClass",
                    "metadata": {"name": class_name, "annotations": annotations},
                    "provisioner": "kubernetes.io/host-path",
                    "reclaimPolicy": "Delete",
                    # As k3s' local-path: bound once the pod is scheduled, so no FailedScheduling noise.
                    "volumeBindingMode": "WaitForFirstConsumer",
                }
            )

    def _create_nodes(self) -> None:
        for node in self.nodes:
            self.add_fake_node(node)

    def add_fake_node(self, node: FakeNode) -> None:
        """Register one kwok node (capacity as given); kwok marks it Ready and keeps its lease."""
        resources = {
            "cpu": node.cpu,
            "memory": node.memory,
            "pods": str(node.pods),
            "ephemeral-storage": "100Gi",
        }
        body = {
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {
                "name": node.name,
                "annotations": {"kwok.x-k8s.io/node": "fake", "node.alpha.kubernetes.io/ttl": "0"},
                "labels": {
                    "kubernetes.io/hostname": node.name,
                    "kubernetes.io/os": "linux",
                    "kubernetes.io/arch": "amd64",
                    "type": "kwok",
                    **node.labels,
                },
            },
            "spec": {"taints": list(node.taints)} if node.taints else {},
            "status": {"allocatable": resources, "capacity": resources},
        }
        with contextlib.suppress(urllib.error.HTTPError):  # already registered on a restart
            self.request("POST", "/api/v1/nodes", body)

    def _wait_nodes_ready(self, timeout: float) -> None:
        def ready() -> bool:
            items = self.request("GET", "/api/v1/nodes")["items"]
            names = {node.name for node in self.nodes}
            ready_names = {
                item["metadata"]["name"]
                for item in items
                if any(
                    c["type"] == "Ready" and c["status"] == "True"
                    for c in item.get("status", {}).get("conditions", [])
                )
            }
            return names <= ready_names

        self.wait(ready, timeout, "kwok nodes Ready")

    def _wait_default_service_account(self, timeout: float) -> None:
        # Pods are refused until the serviceaccount controller has made `default` in their namespace.
        self.wait(
            lambda: self.request("GET", "/api/v1/namespaces/default/serviceaccounts/default"),
            timeout,
            "the default ServiceAccount",
        )

    def wait(self, predicate: Any, timeout: float, what: str) -> None:
        """Poll `predicate` until it is true; ComponentFailed after `timeout` seconds names `what`."""
        deadline = time.monotonic() + timeout
        last_error: Exception | None = None
        while time.monotonic() < deadline:
            try:
                if predicate():
                    return
            except Exception as exc:  # the API may answer 404/503 while it settles
                last_error = exc
            time.sleep(0.3)
        raise ComponentFailed(f"timed out waiting for {what} ({last_error})")

    # ---- test helpers ------------------------------------------------------------------------------

    def make_never_ready(self, namespace: str, *, image: str | None = None) -> None:
        """From now on, pods created in `namespace` (only those whose first container runs `image`,
        if given: a broken version) start but never become Ready (a kwok Stage)."""
        stages = {s["metadata"]["name"]: s for s in yaml.safe_load_all(STAGES_FILE.read_text())}
        stage = json.loads(json.dumps(stages["pod-never-ready-by-label"]))
        stage["metadata"] = {"name": f"never-ready-{namespace}"[:63]}
        expressions = [
            e for e in stage["spec"]["selector"]["matchExpressions"] if NEVER_READY_LABEL not in e["key"]
        ]
        expressions.append({"key": ".metadata.namespace", "operator": "In", "values": [namespace]})
        if image is not None:
            expressions.append({"key": ".spec.containers[0].image", "operator": "In", "values": [image]})
        stage["spec"]["selector"]["matchExpressions"] = expressions
        self.apply(stage)

    def clear_never_ready(self, namespace: str) -> None:
        """Undo make_never_ready for `namespace` (pods created afterwards become Ready again)."""
        with contextlib.suppress(urllib.error.HTTPError):
            self.request("DELETE", f"/apis/kwok.x-k8s.io/v1alpha1/stages/{f'never-ready-{namespace}'[:63]}")

    def remove(self) -> None:
        """Stop and delete the work directory (etcd data, certificates, logs)."""
        self.stop()
        shutil.rmtree(self.work_dir, ignore_errors=True)


def temporary_cluster(**kwargs: Any) -> LocalCluster:
    """A LocalCluster in a fresh temporary directory (not started)."""
    return LocalCluster(Path(tempfile.mkdtemp(prefix="localcluster-")), **kwargs)
