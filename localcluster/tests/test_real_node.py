"""The real node, end to end: a control plane, a kubelet with containerd and runc in its own network
namespace, kube-proxy and CoreDNS; a redis pod from the stand-in image built by deploy/images runs
under Pod Security `restricted`, becomes Ready, is reached by another pod through a ClusterIP Service
by its DNS name, and is deleted with its containers.

Needs root, the node's binaries (deploy/node/build.sh) and the images (deploy/images/build.sh redis).
Without them the module is skipped with what is missing; with CI=true that is a failure instead.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.node import DNS_SERVICE_IP, KWOK_TAINT
from localcluster.tests.support import node_cluster_or_skip, pod_log

REDIS_IMAGE = "redis:7.4.2-bookworm"
NAMESPACE = "real-node-proof"

pytestmark = [pytest.mark.real_node, pytest.mark.real_cluster]

RESTRICTED_POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    with node_cluster_or_skip(Path(tmp_path_factory.mktemp("real-node")), (REDIS_IMAGE,), helm=False) as pair:
        yield pair


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.25)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def _pod_ready(cluster, name: str) -> bool:
    pod = cluster.get("pods", name, NAMESPACE)
    return bool(pod) and any(
        c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", [])
    )


def _redis_pod() -> dict:
    # As charts/medusa and charts/platform run redis: uid 999, read-only root, /data an emptyDir.
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "redis", "namespace": NAMESPACE, "labels": {"app": "redis"}},
        "spec": {
            "automountServiceAccountToken": False,
            "securityContext": {
                **RESTRICTED_POD_SECURITY,
                "runAsUser": 999,
                "runAsGroup": 999,
                "fsGroup": 999,
            },
            "containers": [
                {
                    "name": "redis",
                    "image": REDIS_IMAGE,
                    "imagePullPolicy": "IfNotPresent",
                    "args": ["redis-server", "--save", "", "--appendonly", "no", "--maxmemory", "32mb"],
                    "ports": [{"name": "redis", "containerPort": 6379, "protocol": "TCP"}],
                    "readinessProbe": {"exec": {"command": ["redis-cli", "ping"]}, "periodSeconds": 1},
                    "resources": {"requests": {"cpu": "25m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}],
                }
            ],
            "volumes": [{"name": "data", "emptyDir": {"sizeLimit": "16Mi"}}],
        },
    }


def _client_pod(script: str) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "client", "namespace": NAMESPACE},
        "spec": {
            "restartPolicy": "Never",
            "automountServiceAccountToken": False,
            "securityContext": {**RESTRICTED_POD_SECURITY, "runAsUser": 999, "runAsGroup": 999},
            "containers": [
                {
                    "name": "client",
                    "image": REDIS_IMAGE,
                    "imagePullPolicy": "Never",
                    "command": ["sh", "-c", script],
                    "securityContext": RESTRICTED_CONTAINER_SECURITY,
                }
            ],
        },
    }


def test_the_node_joined_with_containerd_and_the_kwok_nodes_are_tainted(node_cluster):
    cluster, node = node_cluster
    real = cluster.get("nodes", node.name)
    info = real["status"]["nodeInfo"]
    assert info["containerRuntimeVersion"] == "containerd://2.4.2"
    assert info["kubeletVersion"] == cluster.binaries.kubernetes_version
    assert {"type": "InternalIP", "address": node.network.node_address} in real["status"]["addresses"]
    assert not real["spec"].get("taints")
    for fake in cluster.nodes:
        assert KWOK_TAINT in cluster.get("nodes", fake.name)["spec"]["taints"]
    # The apiserver publishes its own address behind the `kubernetes` Service, which the node reaches.
    [slice_] = cluster.objects(
        "endpointslices",
        "default",
        api="discovery.k8s.io/v1",
        label_selector="kubernetes.io/service-name=kubernetes",
    )
    assert slice_["endpoints"][0]["addresses"] == [node.network.host_address]
    dns = cluster.get("services", "kube-dns", "kube-system")
    assert dns["spec"]["clusterIP"] == DNS_SERVICE_IP
    print(f"\nreal node: started in {node.timings['total']:.1f} s {node.timings}")


def test_a_redis_pod_under_restricted_serves_another_pod_through_a_service_by_dns_name(node_cluster):
    cluster, node = node_cluster
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {"name": NAMESPACE, "labels": {"pod-security.kubernetes.io/enforce": "restricted"}},
        }
    )
    cluster.wait(
        lambda: cluster.get("serviceaccounts", "default", NAMESPACE),
        30,
        f"the default ServiceAccount in {NAMESPACE}",
    )
    # Pod Security really is enforced here: the same pod without its hardening is refused.
    unhardened = _redis_pod()
    unhardened["metadata"]["name"] = "redis-unhardened"
    del unhardened["spec"]["securityContext"]
    del unhardened["spec"]["containers"][0]["securityContext"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        cluster.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", unhardened)
    assert refused.value.code == 403

    started = time.monotonic()
    cluster.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", _redis_pod())
    cluster.request(
        "POST",
        f"/api/v1/namespaces/{NAMESPACE}/services",
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "redis", "namespace": NAMESPACE},
            "spec": {
                "selector": {"app": "redis"},
                "ports": [{"name": "redis", "port": 6379, "targetPort": "redis"}],
            },
        },
    )
    _wait(lambda: _pod_ready(cluster, "redis"), 90, "the redis pod Ready")
    ready_seconds = time.monotonic() - started
    pod = cluster.get("pods", "redis", NAMESPACE)
    assert pod["spec"]["nodeName"] == node.name
    assert pod["status"]["podIP"].startswith("10.88.")
    service_ip = cluster.get("services", "redis", NAMESPACE)["spec"]["clusterIP"]

    def endpoint_ready() -> bool:
        slices = cluster.objects(
            "endpointslices",
            NAMESPACE,
            api="discovery.k8s.io/v1",
            label_selector="kubernetes.io/service-name=redis",
        )
        return any(
            endpoint["conditions"].get("ready") and pod["status"]["podIP"] in endpoint["addresses"]
            for slice_ in slices
            for endpoint in slice_.get("endpoints") or []
        )

    _wait(endpoint_ready, 30, "the redis pod behind its Service")
    fqdn = f"redis.{NAMESPACE}.svc.cluster.local"
    # kube-proxy programs a new endpoint a moment after the EndpointSlice says so (its sync period),
    # as on any cluster: the client retries its first connection, as a real client would.
    script = (
        f"set -e; getent hosts {fqdn}; getent hosts kubernetes.default.svc.cluster.local; "
        f"for attempt in 1 2 3 4 5 6 7 8 9 10; do redis-cli -h {fqdn} ping 2>/dev/null | grep -q PONG && break; sleep 0.5; done; "
        f"echo attempts=$attempt; redis-cli -h redis set proof real-node; redis-cli -h {fqdn} get proof"
    )
    started = time.monotonic()
    cluster.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", _client_pod(script))
    phase = _wait(
        lambda: (
            (
                cluster.get("pods", "client", NAMESPACE).get("status", {}).get("phase")
                in {"Succeeded", "Failed"}
            )
            and cluster.get("pods", "client", NAMESPACE)["status"]["phase"]
        ),
        90,
        "the client pod to finish",
    )
    client_seconds = time.monotonic() - started
    output = pod_log(cluster, NAMESPACE, "client")
    assert phase == "Succeeded", output
    lines = output.split()
    assert [service_ip, fqdn] == lines[0:2]  # the name resolved by CoreDNS to the ClusterIP
    assert lines[2:4] == ["10.96.0.1", "kubernetes.default.svc.cluster.local"]
    assert lines[4].startswith("attempts=")
    assert lines[5:] == ["OK", "real-node"]
    print(
        f"\nredis pod Ready in {ready_seconds:.1f} s; client pod finished in {client_seconds:.1f} s "
        f"(connections tried before the Service answered: {lines[4]})"
    )

    for name in ("client", "redis"):
        cluster.request("DELETE", f"/api/v1/namespaces/{NAMESPACE}/pods/{name}")
    _wait(lambda: not cluster.objects("pods", NAMESPACE), 60, "the pods deleted by the kubelet")
    # Their containers stopped on the node too, not only left the API (the kubelet's garbage collector
    # removes the stopped ones later, on its own clock).
    assert f"docker.io/library/{REDIS_IMAGE}" not in node.running_images()


def _mounts_under(directory: Path) -> list[str]:
    prefix = str(directory.resolve()) + "/"
    lines = Path("/proc/self/mountinfo").read_text().splitlines()
    return [line.split()[4] for line in lines if line.split()[4].startswith(prefix)]


def _size_on_disk(directory: Path) -> int:
    # du -x: the disk the directory is on, not the overlay and tmpfs mounts inside it.
    usage = subprocess.run(["du", "-sxb", str(directory)], capture_output=True, text=True, timeout=60)
    return int(usage.stdout.split()[0])


def test_leaving_the_node_with_a_pod_running_unmounts_everything_and_keeps_only_its_logs(tmp_path):
    # A test run starts several nodes; each imports every image into its own containerd. One run that
    # left them behind filled a CI machine's disk, so a node must take its runtime state with it, even
    # when a pod (sandbox, overlay rootfs, volume tmpfs, pinned network namespace) still runs.
    with node_cluster_or_skip(tmp_path, (REDIS_IMAGE,), helm=False) as (cluster, node):
        cluster.apply(
            {
                "apiVersion": "v1",
                "kind": "Namespace",
                "metadata": {
                    "name": NAMESPACE,
                    "labels": {"pod-security.kubernetes.io/enforce": "restricted"},
                },
            }
        )
        cluster.wait(
            lambda: cluster.get("serviceaccounts", "default", NAMESPACE), 30, "the default ServiceAccount"
        )
        cluster.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods", _redis_pod())
        _wait(lambda: _pod_ready(cluster, "redis"), 90, "the redis pod Ready")
        running_size = _size_on_disk(node.work_dir)
        assert _mounts_under(node.work_dir), "a running pod has mounts under the node's directory"
    assert _mounts_under(tmp_path) == []
    for bulky in ("containerd", "kubelet", "cni", "pod-logs"):
        assert not (node.work_dir / bulky).exists(), bulky
    assert (node.logs / "kubelet.log").is_file()
    left = _size_on_disk(tmp_path)
    print(
        f"\nnode directory with a pod running: {running_size / 2**20:.0f} MiB; left after it: {left / 2**20:.1f} MiB"
    )
    assert left < running_size / 4
