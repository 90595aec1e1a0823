"""A real Kubernetes node on this machine: containerd + runc + the CNI bridge, the kubelet, kube-proxy
and CoreDNS, joined to a `LocalCluster` and running real containers from the images that
deploy/images/build.sh exported (there is no registry to pull from).

The node lives in a network namespace of its own (`NodeNetwork`) joined to the host by a veth pair:
its iptables rules, its bridge and its pods never touch the host's network. The apiserver listens on
the host end of the pair so that the node, and pods through the `kubernetes` Service, reach it.

Why `nsenter --net=...` and not `ip netns exec`: the latter also remounts /sys for the namespace,
which hides the cgroup mounts from runc and the kubelet. Everything else (mounts, cgroups, PIDs) is
shared with the host, as on a real machine. Needs root; see deploy/node/README.md for what the VM
must provide and what was measured.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import subprocess
import threading
import time
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from localcluster.binaries import ROOT
from localcluster.cluster import kubeconfig_yaml
from localcluster.processes import Component, ComponentFailed

if TYPE_CHECKING:
    from localcluster.cluster import LocalCluster

NODE_TOOLS = ROOT / ".tools" / "node"
CACHE_ROOT = Path(
    os.environ.get("STORE_PLATFORM_CACHE")
    or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "store-platform"
)
IMAGE_INDEX = CACHE_ROOT / "images" / "index.tsv"
PAUSE_IMAGE = "localhost/pause:3.10.2"
COREDNS_IMAGE = "localhost/coredns:v1.14.7"
POD_CIDR = "10.88.0.0/16"
DNS_SERVICE_IP = "10.96.0.10"
CLUSTER_DOMAIN = "cluster.local"
RUNC = "/usr/sbin/runc"
CNI_BIN_DIR = "/usr/lib/cni"
# The kubelet sets these host-wide at start (they are not per network namespace); they are put back
# when the node stops, so a test run leaves the machine's kernel settings as it found them.
KUBELET_SYSCTLS = ("vm/overcommit_memory", "kernel/panic", "kernel/panic_on_oops")
# The in-tree hostPath provisioner (`--enable-hostpath-provisioner`) makes each volume a root-owned
# 0750 directory here; non-root pods (every database of the charts) cannot write it, and hostPath
# volumes ignore fsGroup. k3s' local-path provisioner, which the charts target, creates them 0777.
HOSTPATH_PROVISIONER_DIR = "/tmp/hostpath_pv/"
# Where the cgroup hierarchies are mounted (v1 controllers, and the v2 mount holding hugetlb). Each
# node's kubelet gets a cgroup root of its own in them: a kubelet removes every pod cgroup under its
# root that it does not know, so two nodes sharing the default /kubepods (two test runs at once,
# seen here) kill each other's containers.
CGROUP_MOUNTS = Path("/sys/fs/cgroup")
# Pods of the charts must land on the real node, never on a kwok node where nothing runs.
KWOK_TAINT = {"key": "kwok.x-k8s.io/node", "value": "fake", "effect": "NoSchedule"}


class NodeUnavailable(RuntimeError):
    """This machine cannot run the real node; the message says what is missing and how to get it."""


def _run(argv: list[str], *, timeout: float = 60) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, check=False)
    if result.returncode != 0:
        raise ComponentFailed(f"{' '.join(argv)} exited with {result.returncode}: {result.stderr.strip()}")
    return result.stdout


def image_archives(index: Path = IMAGE_INDEX) -> dict[str, Path]:
    """The OCI archives deploy/images/build.sh exported, by image reference."""
    archives = {}
    with contextlib.suppress(FileNotFoundError):
        for line in index.read_text().splitlines():
            reference, _, archive = line.partition("\t")
            if archive and Path(archive).is_file():
                archives[reference] = Path(archive)
    return archives


def normalised_reference(image: str) -> str:
    """The fully qualified name the CRI gives a short image name (redis:7 -> docker.io/library/redis:7)."""
    # The tag or digest follows the last path segment; a registry host may carry a port of its own.
    path, _, last = image.partition("@")[0].rpartition("/")
    repository = f"{path}/{last.partition(':')[0]}" if path else last.partition(":")[0]
    domain = repository.split("/")[0]
    if "/" not in repository:
        return f"docker.io/library/{image}"
    if "." not in domain and ":" not in domain and domain != "localhost":
        return f"docker.io/{image}"
    return image


def missing_requirements(images: Iterable[str] = ()) -> list[str]:
    """What this machine lacks for a real node with `images` (empty when it can run one)."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root (network namespaces, mounts, cgroups)")
    for binary in ("containerd", "containerd-shim-runc-v2", "ctr"):
        if not (NODE_TOOLS / binary).is_file():
            problems.append(f"{binary} (bash deploy/node/build.sh)")
    for tool in (RUNC, f"{CNI_BIN_DIR}/bridge", "/usr/sbin/iptables", "/usr/sbin/conntrack"):
        if not Path(tool).exists():
            problems.append(f"{tool} (bash deploy/node/build.sh installs it from Debian)")
    archives = image_archives()
    for image in (PAUSE_IMAGE, COREDNS_IMAGE, *images):
        if normalised_reference(image) not in archives:
            problems.append(f"image {image} (bash deploy/images/build.sh)")
    return problems


@dataclass(frozen=True)
class NodeNetwork:
    """The node's network namespace and the veth pair joining it to the host (a /24 of its own).

    The host end gets the first address (the apiserver binds it), the node end the second, with a
    default route back through the host so the node and its masqueraded pods reach the apiserver.
    """

    namespace: str
    host_interface: str
    link_prefix: str = "10.201.0"

    @classmethod
    def for_directory(cls, work_dir: Path) -> NodeNetwork:
        """Names and a link subnet (10.201.<1-250>.0/24) derived from the work directory, so nodes of
        two test runs at once do not share a namespace and, almost always, not a route either."""
        digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()
        suffix = digest[:6]
        return cls(
            namespace=f"spnode-{suffix}",
            host_interface=f"spn{suffix}",
            link_prefix=f"10.201.{int(digest[6:10], 16) % 250 + 1}",
        )

    @property
    def host_address(self) -> str:
        return f"{self.link_prefix}.1"

    @property
    def node_address(self) -> str:
        return f"{self.link_prefix}.2"

    @property
    def path(self) -> str:
        return f"/run/netns/{self.namespace}"

    @property
    def wrapper(self) -> list[str]:
        """The argv prefix that runs a command inside the namespace."""
        return ["nsenter", f"--net={self.path}"]

    @property
    def exists(self) -> bool:
        return Path(self.path).exists()

    def create(self) -> NodeNetwork:
        """Create the namespace and the veth pair (idempotent: an existing namespace is kept)."""
        if self.exists:
            return self
        _run(["ip", "netns", "add", self.namespace])
        try:
            _run(
                [
                    "ip",
                    "link",
                    "add",
                    self.host_interface,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    self.namespace,
                ]
            )
            _run(["ip", "addr", "add", f"{self.host_address}/24", "dev", self.host_interface])
            _run(["ip", "link", "set", self.host_interface, "up"])
            for argv in (
                ["link", "set", "lo", "up"],
                ["addr", "add", f"{self.node_address}/24", "dev", "eth0"],
                ["link", "set", "eth0", "up"],
                ["route", "add", "default", "via", self.host_address],
            ):
                _run(["ip", "-n", self.namespace, *argv])
            # Per-namespace switches: routing for the pods, and bridged pod-to-pod traffic through
            # iptables so a Service reply between two pods on the bridge is un-NATed (kube-proxy).
            _run(
                [
                    *self.wrapper,
                    "sysctl",
                    "-q",
                    "-w",
                    "net.ipv4.ip_forward=1",
                    "net.bridge.bridge-nf-call-iptables=1",
                    "net.ipv4.conf.all.route_localnet=1",
                ]
            )
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Remove the namespace; the veth pair and everything inside it go with it."""
        if self.exists:
            _run(["ip", "netns", "delete", self.namespace])
        with contextlib.suppress(ComponentFailed):
            _run(["ip", "link", "delete", self.host_interface])


class RealNode:
    """One real node under `work_dir`: containerd, kubelet and kube-proxy processes in `network`, with
    CoreDNS as a Deployment in kube-system. Start it after the cluster (whose apiserver must listen
    on `network.host_address`); `stop()` deletes its pods, stops it and cleans up its mounts."""

    def __init__(
        self,
        work_dir: Path,
        *,
        name: str = "real-node-1",
        images: tuple[str, ...] = (),
        network: NodeNetwork | None = None,
    ) -> None:
        problems = missing_requirements(images)
        if problems:
            raise NodeUnavailable("real node unavailable: missing " + "; ".join(problems))
        self.work_dir = work_dir.resolve()
        self.name = name
        self.images = images
        self.network = network or NodeNetwork.for_directory(self.work_dir)
        self.logs = self.work_dir / "logs"
        self.containerd_socket = self.work_dir / "containerd" / "containerd.sock"
        self.components: dict[str, Component] = {}
        self.cluster: LocalCluster | None = None
        self.timings: dict[str, float] = {}
        self._saved_sysctls: dict[str, str] = {}
        self._volumes_stop = threading.Event()
        self._volumes_thread: threading.Thread | None = None
        self.opened_volumes: set[Path] = set()

    # ---- life cycle --------------------------------------------------------------------------------

    def start(self, cluster: LocalCluster, *, timeout: float = 180) -> RealNode:
        """Start containerd, import the images, start the kubelet and kube-proxy, deploy CoreDNS, and
        return once the node is Ready and CoreDNS answers; ComponentFailed names what did not."""
        begun = time.monotonic()
        self.cluster = cluster
        self.network.create()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._write_identities(cluster)
        self._saved_sysctls = {key: Path("/proc/sys", key).read_text().strip() for key in KUBELET_SYSCTLS}
        self._create_cgroup_root()
        try:
            self.components["containerd"] = self._containerd()
            self._timed("containerd", lambda: self.components["containerd"].start(timeout=timeout))
            self._timed("image import", self._import_images)
            self.components["kubelet"] = self._kubelet(cluster)
            self._timed("kubelet", lambda: self.components["kubelet"].start(timeout=timeout))
            self.components["kube-proxy"] = self._kube_proxy(cluster)
            self._timed("kube-proxy", lambda: self.components["kube-proxy"].start(timeout=timeout))
            self._timed(
                "node Ready", lambda: cluster.wait(self._node_ready, timeout, f"node {self.name} Ready")
            )
            self._timed("CoreDNS", lambda: self._deploy_coredns(cluster, timeout))
            self._volumes_stop.clear()
            self._volumes_thread = threading.Thread(target=self._open_hostpath_volumes, daemon=True)
            self._volumes_thread.start()
        except BaseException:
            self.stop()
            raise
        self.timings["total"] = time.monotonic() - begun
        return self

    def _timed(self, what: str, step: Any) -> None:
        started = time.monotonic()
        step()
        self.timings[what] = time.monotonic() - started

    def stop(self, *, grace: float = 60) -> None:
        """Delete the node's pods (so the kubelet tears their sandboxes down), stop its processes, kill
        any container left behind, unmount what is left under the work directory and put back the
        kernel settings the kubelet changed. The network namespace stays until `remove_network()`."""
        self._volumes_stop.set()
        if self._volumes_thread is not None:
            self._volumes_thread.join(5)
            self._volumes_thread = None
        if self.cluster is not None and self.components.get("kubelet") and self.components["kubelet"].running:
            with contextlib.suppress(Exception):
                self._delete_pods(grace)
        for component_name in ("kube-proxy", "kubelet"):
            if component_name in self.components:
                self.components[component_name].stop()
        self._kill_containers()
        if "containerd" in self.components:
            self.components["containerd"].stop()
        self._kill_shims()
        self._remove_cgroup_root()
        self._unmount_leftovers()
        for key, value in self._saved_sysctls.items():
            with contextlib.suppress(OSError):
                Path("/proc/sys", key).write_text(value)
        self._saved_sysctls = {}

    def remove_network(self) -> None:
        """Delete the network namespace and veth pair (after `stop()` and after the cluster stopped)."""
        self.network.delete()

    # ---- identities and configuration --------------------------------------------------------------

    def _write_identities(self, cluster: LocalCluster) -> None:
        pki = cluster.pki
        kubelet_client = pki.client(
            f"kubelet-{self.name}", user=f"system:node:{self.name}", groups=("system:nodes",)
        )
        self.kubelet_serving = pki.serving(
            f"kubelet-{self.name}-serving", names=(self.name,), ips=(self.network.node_address,)
        )
        proxy_client = pki.client("kube-proxy", user="system:kube-proxy")
        for stem, pair, user in (
            ("kubelet", kubelet_client, f"system:node:{self.name}"),
            ("kube-proxy", proxy_client, "system:kube-proxy"),
        ):
            path = self.work_dir / f"{stem}.kubeconfig"
            path.write_text(kubeconfig_yaml(cluster.server, pki.ca.cert, user=user, cert=pair))
            path.chmod(0o600)
        # Pods get the cluster's DNS from the kubelet; this file is what the kubelet hands to pods with
        # dnsPolicy Default, and what it reads for its own search path. The host's resolver is a
        # private address that pods must not use, so there is no upstream here.
        (self.work_dir / "resolv.conf").write_text(f"nameserver {DNS_SERVICE_IP}\noptions ndots:1\n")

    def _containerd(self) -> Component:
        base = self.work_dir / "containerd"
        cni_conf = self.work_dir / "cni" / "net.d"
        cni_conf.mkdir(parents=True, exist_ok=True)
        (cni_conf / "10-bridge.conflist").write_text(
            json.dumps(
                {
                    "cniVersion": "1.0.0",
                    "name": "node-bridge",
                    "plugins": [
                        {
                            "type": "bridge",
                            "bridge": "cni0",
                            "isGateway": True,
                            # Pods leave the node with its address, so the host needs no route to them.
                            "ipMasq": True,
                            "hairpinMode": True,
                            "ipam": {
                                "type": "host-local",
                                "ranges": [[{"subnet": POD_CIDR}]],
                                "routes": [{"dst": "0.0.0.0/0"}],
                                "dataDir": str(self.work_dir / "cni" / "ipam"),
                            },
                        },
                        {"type": "portmap", "capabilities": {"portMappings": True}},
                    ],
                },
                indent=2,
            )
        )
        config = base / "config.toml"
        base.mkdir(parents=True, exist_ok=True)
        config.write_text(
            f"""# containerd 2.4 reads version 3 (the keys below) too, but migrates it with a warning at
# every start; version 4 is its current format and these keys are unchanged in it.
version = 4
root = "{base / "root"}"
state = "{base / "state"}"
# Nothing from the host's /etc/containerd: this node is configured here only.
imports = []

[plugins.'io.containerd.server.v1.grpc']
  address = "{self.containerd_socket}"
[plugins.'io.containerd.server.v1.ttrpc']
  address = "{self.containerd_socket}.ttrpc"
[plugins.'io.containerd.internal.v1.opt']
  path = "{base / "opt"}"
[plugins.'io.containerd.nri.v1.nri']
  disable = true

[plugins.'io.containerd.cri.v1.images']
  snapshotter = "overlayfs"
  # No registry: the sandbox image is imported with the others and never pulled.
  [plugins.'io.containerd.cri.v1.images'.pinned_images]
    sandbox = "{PAUSE_IMAGE}"

[plugins.'io.containerd.cri.v1.runtime']
  # Root here lacks CAP_SYS_RESOURCE, so a negative oom_score_adj (the kubelet asks for one for
  # Guaranteed pods) is refused; clamp to containerd's own score instead of failing the container.
  restrict_oom_score_adj = true
  # Pod network namespaces under the work directory, not /run/netns, so cleanup finds them all.
  netns_mounts_under_state_dir = true
  [plugins.'io.containerd.cri.v1.runtime'.containerd]
    default_runtime_name = "runc"
    [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins.'io.containerd.cri.v1.runtime'.containerd.runtimes.runc.options]
        # Debian's runc: crun fails on this cgroup v1 (hybrid) host.
        BinaryName = "{RUNC}"
        SystemdCgroup = false
  [plugins.'io.containerd.cri.v1.runtime'.cni]
    bin_dirs = ["{CNI_BIN_DIR}"]
    conf_dir = "{cni_conf}"
"""
        )
        env = dict(os.environ)
        # containerd finds its shim on PATH; iptables (for the CNI plugins) lives in /usr/sbin.
        env["PATH"] = f"{NODE_TOOLS}:/usr/sbin:/usr/bin:/sbin:/bin"

        def ready() -> bool:
            return self.containerd_socket.exists() and bool(self._ctr("version", timeout=5))

        return Component(
            "containerd",
            [str(NODE_TOOLS / "containerd"), f"--config={config}", "--log-level=info"],
            log_path=self.logs / "containerd.log",
            ready=ready,
            env=env,
            wrapper=self.network.wrapper,
        )

    def _ctr(self, *args: str, timeout: float = 120) -> str:
        return _run(
            [str(NODE_TOOLS / "ctr"), f"--address={self.containerd_socket}", "-n", "k8s.io", *args],
            timeout=timeout,
        )

    def _import_images(self) -> None:
        archives = image_archives()
        present = set(self._ctr("images", "list", "--quiet").split())
        for image in (PAUSE_IMAGE, COREDNS_IMAGE, *self.images):
            reference = normalised_reference(image)
            if reference not in present:
                self._ctr("images", "import", str(archives[reference]), timeout=300)

    def _kubelet(self, cluster: LocalCluster) -> Component:
        root_dir = self.work_dir / "kubelet"
        root_dir.mkdir(parents=True, exist_ok=True)
        config = self.work_dir / "kubelet.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubelet.config.k8s.io/v1beta1",
                    "kind": "KubeletConfiguration",
                    "authentication": {
                        "anonymous": {"enabled": False},
                        "webhook": {"enabled": True},
                        "x509": {"clientCAFile": str(cluster.pki.ca.cert)},
                    },
                    "authorization": {"mode": "Webhook"},
                    "address": self.network.node_address,
                    "readOnlyPort": 0,
                    "healthzBindAddress": self.network.node_address,
                    "healthzPort": 10248,
                    "tlsCertFile": str(self.kubelet_serving.cert),
                    "tlsPrivateKeyFile": str(self.kubelet_serving.key),
                    "containerRuntimeEndpoint": f"unix://{self.containerd_socket}",
                    # The machine's cgroups are v1 (a v2 mount holds no controllers) and PID 1 is not
                    # systemd; kubelet >= 1.35 refuses v1 unless told otherwise.
                    "cgroupDriver": "cgroupfs",
                    "failCgroupV1": False,
                    # Without CAP_SYS_RESOURCE the kubelet cannot lower its own OOM score.
                    "oomScoreAdj": 0,
                    "clusterDNS": [DNS_SERVICE_IP],
                    "clusterDomain": CLUSTER_DOMAIN,
                    "resolvConf": str(self.work_dir / "resolv.conf"),
                    # Nothing that is collected can be pulled back: there is no registry.
                    "imageGCHighThresholdPercent": 100,
                    "imageGCLowThresholdPercent": 99,
                    # The node shares the host's disk with everything else on the machine: the default
                    # percentages (imagefs 15 %) of a large disk put it under disk pressure with tens of
                    # GB free, and it evicted the platform's pods (seen with 35 GB free of 252 GB).
                    # Absolute floors evict only when the disk is really nearly full.
                    "evictionHard": {
                        "memory.available": "100Mi",
                        "nodefs.available": "2Gi",
                        "imagefs.available": "2Gi",
                        "nodefs.inodesFree": "5%",
                    },
                    "failSwapOn": False,
                    "serializeImagePulls": False,
                    "maxPods": 110,
                    # Container logs stay with the node, not in the host's /var/log/pods.
                    "podLogsDir": str(self.work_dir / "pod-logs"),
                    "cgroupRoot": self.cgroup_root,
                }
            )
        )
        return Component(
            "kubelet",
            [
                cluster.binaries.path("kubelet"),
                f"--config={config}",
                f"--kubeconfig={self.work_dir / 'kubelet.kubeconfig'}",
                f"--root-dir={root_dir}",
                f"--hostname-override={self.name}",
                f"--node-ip={self.network.node_address}",
                "--v=1",
            ],
            log_path=self.logs / "kubelet.log",
            ready=lambda: self._http_ok(f"http://{self.network.node_address}:10248/healthz"),
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            wrapper=self.network.wrapper,
        )

    def _kube_proxy(self, cluster: LocalCluster) -> Component:
        config = self.work_dir / "kube-proxy.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
                    "kind": "KubeProxyConfiguration",
                    "clientConnection": {"kubeconfig": str(self.work_dir / "kube-proxy.kubeconfig")},
                    "mode": "iptables",
                    "clusterCIDR": POD_CIDR,
                    "hostnameOverride": self.name,
                    "bindAddress": self.network.node_address,
                    "healthzBindAddress": f"{self.network.node_address}:10256",
                    "metricsBindAddress": "127.0.0.1:10249",
                    # nf_conntrack_max is global, not per namespace: leave the host's value alone.
                    "conntrack": {"maxPerCore": 0, "min": 0},
                    "nodePortAddresses": ["primary"],
                }
            )
        )
        return Component(
            "kube-proxy",
            [cluster.binaries.path("kube-proxy"), f"--config={config}", "--v=1"],
            log_path=self.logs / "kube-proxy.log",
            ready=lambda: self._http_ok(f"http://{self.network.node_address}:10256/healthz"),
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            wrapper=self.network.wrapper,
        )

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200

    # ---- cluster objects ---------------------------------------------------------------------------

    def _node_ready(self) -> bool:
        assert self.cluster is not None
        node = self.cluster.get("nodes", self.name)
        return node is not None and any(
            c["type"] == "Ready" and c["status"] == "True"
            for c in node.get("status", {}).get("conditions", [])
        )

    def _deploy_coredns(self, cluster: LocalCluster, timeout: float) -> None:
        for manifest in coredns_manifests():
            cluster.apply(manifest)

        def ready() -> bool:
            deployment = cluster.get("deployments", "coredns", "kube-system", api="apps/v1")
            return bool(deployment) and deployment.get("status", {}).get("readyReplicas", 0) >= 1

        cluster.wait(ready, timeout, "CoreDNS Ready")

    def _open_hostpath_volumes(self) -> None:
        # As local-path-provisioner does: a new volume is writable by whichever uid the pod runs as.
        # Polled, so a container that starts before its volume is opened fails once and is restarted.
        assert self.cluster is not None
        while not self._volumes_stop.wait(0.3):
            with contextlib.suppress(Exception):
                for volume in self.cluster.request("GET", "/api/v1/persistentvolumes")["items"]:
                    path = Path(volume["spec"].get("hostPath", {}).get("path", ""))
                    if str(path).startswith(HOSTPATH_PROVISIONER_DIR) and path.is_dir():
                        if path.stat().st_mode & 0o777 != 0o777:
                            path.chmod(0o777)
                            self.opened_volumes.add(path)

    def _delete_pods(self, grace: float) -> None:
        assert self.cluster is not None
        cluster = self.cluster
        # Cordoned first: the controllers' replacements for the deleted pods then stay Pending instead
        # of landing here again while the node is stopping.
        cluster.request(
            "PATCH",
            f"/api/v1/nodes/{self.name}",
            {"spec": {"unschedulable": True}},
            content_type="application/merge-patch+json",
        )
        selector = f"?fieldSelector=spec.nodeName%3D{self.name}"
        for pod in cluster.request("GET", f"/api/v1/pods{selector}")["items"]:
            metadata = pod["metadata"]
            with contextlib.suppress(Exception):
                cluster.request(
                    "DELETE", f"/api/v1/namespaces/{metadata['namespace']}/pods/{metadata['name']}"
                )
        # The kubelet confirms each termination by removing the pod; then its sandbox is gone too.
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and cluster.request("GET", f"/api/v1/pods{selector}")["items"]:
            time.sleep(0.5)

    def running_images(self) -> list[str]:
        """The image of every container running on this node now (pod sandboxes included)."""
        images = dict(
            line.split()[:2] for line in self._ctr("containers", "list", timeout=10).splitlines()[1:]
        )
        tasks = [line.split() for line in self._ctr("tasks", "list", timeout=10).splitlines()[1:]]
        return [images.get(task[0], "?") for task in tasks if task[-1] == "RUNNING"]

    # ---- cgroups -----------------------------------------------------------------------------------

    @property
    def cgroup_root(self) -> str:
        """This node's cgroup root (the kubelet's cgroupRoot): its pods live under <root>/kubepods."""
        return f"/{self.network.namespace}"

    def _cgroup_hierarchies(self) -> list[Path]:
        return sorted(
            path for path in CGROUP_MOUNTS.iterdir() if path.is_dir() and (path / "cgroup.procs").exists()
        )

    def _create_cgroup_root(self) -> None:
        # The kubelet refuses a cgroupRoot that does not exist in every hierarchy it checks.
        for hierarchy in self._cgroup_hierarchies():
            root = hierarchy / self.cgroup_root.lstrip("/")
            root.mkdir(exist_ok=True)
            if hierarchy.name == "cpuset":
                # A new v1 cpuset starts with no CPUs and no memory nodes: nothing could run in it.
                for key in ("cpuset.cpus", "cpuset.mems"):
                    if not (root / key).read_text().strip():
                        (root / key).write_text((hierarchy / key).read_text())

    def _remove_cgroup_root(self) -> None:
        # Deepest first: a cgroup directory can only be removed once it has no children (and no tasks,
        # which stop() has killed by now).
        for hierarchy in self._cgroup_hierarchies():
            root = hierarchy / self.cgroup_root.lstrip("/")
            if not root.is_dir():
                continue
            for directory in sorted((p for p in root.rglob("*") if p.is_dir()), key=lambda p: -len(p.parts)):
                with contextlib.suppress(OSError):
                    directory.rmdir()
            with contextlib.suppress(OSError):
                root.rmdir()

    # ---- cleanup -----------------------------------------------------------------------------------

    def _kill_containers(self) -> None:
        # Whatever the kubelet did not tear down (a timeout, a crash) must not outlive the node.
        if not (self.components.get("containerd") and self.components["containerd"].running):
            return
        with contextlib.suppress(ComponentFailed, subprocess.TimeoutExpired):
            for line in self._ctr("tasks", "list", timeout=10).splitlines()[1:]:
                task = line.split()[0]
                with contextlib.suppress(ComponentFailed, subprocess.TimeoutExpired):
                    self._ctr("tasks", "kill", "--signal", "SIGKILL", task, timeout=10)

    def _kill_shims(self) -> None:
        # Shims outlive containerd by design (containers survive its restarts). Only this node's shims
        # are ended: those started with this node's containerd socket as their address.
        marker = str(self.containerd_socket).encode()
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                cmdline = (proc / "cmdline").read_bytes()
                if b"containerd-shim-runc-v2" in cmdline and marker in cmdline:
                    os.kill(int(proc.name), signal.SIGKILL)

    def _unmount_leftovers(self) -> None:
        # Overlay snapshots, volume tmpfs and pinned pod network namespaces of this node only.
        prefix = str(self.work_dir) + "/"
        points = []
        with contextlib.suppress(OSError):
            for line in Path("/proc/self/mountinfo").read_text().splitlines():
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    points.append(point)
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False, timeout=30)

    def remove_volumes(self) -> None:
        """Delete the hostPath volumes this node's pods wrote (the provisioner would, with their claims;
        a cluster that is thrown away never deletes its claims)."""
        for path in self.opened_volumes:
            shutil.rmtree(path, ignore_errors=True)
        self.opened_volumes.clear()

    def remove_runtime_state(self) -> None:
        """Delete what the node's runtime wrote (containerd's image content and snapshots, the
        kubelet's pod directories, CNI state, pod logs) after `stop()`, keeping `logs/` for a
        failure's post-mortem. A test run starts several nodes, each importing every image again,
        and a run that kept them all once filled a CI machine's disk."""
        for bulky in ("containerd", "kubelet", "cni", "pod-logs"):
            shutil.rmtree(self.work_dir / bulky, ignore_errors=True)

    def remove(self) -> None:
        """Stop, remove the network namespace, the volumes and the work directory."""
        self.stop()
        self.remove_network()
        self.remove_volumes()
        shutil.rmtree(self.work_dir, ignore_errors=True)


@contextlib.contextmanager
def real_node_cluster(
    work_dir: Path,
    *,
    images: tuple[str, ...] = (),
    kwok_nodes: tuple[str, ...] = ("kwok-node-1",),
    timeout: float = 180,
    ingress: bool = False,
) -> Iterator[tuple[LocalCluster, RealNode]]:
    """A control plane whose apiserver the node can reach, a real node running `images`, and kwok
    nodes beside it, tainted so that pods without a toleration land on the real node; with `ingress`,
    Traefik too (localcluster.ingress), on the node's port 80. Everything (processes, containers,
    mounts, the network namespace) is gone when the block ends."""
    from localcluster.cluster import FakeNode, LocalCluster
    from localcluster.ingress import TRAEFIK_IMAGE, deploy_traefik

    node = RealNode(work_dir / "node", images=(*images, TRAEFIK_IMAGE) if ingress else images)

    # A SIGTERM (a timeout, a stopped CI run) must still tear the node down: its processes run in
    # sessions of their own and would outlive this one, with its mounts and namespace.
    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    previous = (
        signal.signal(signal.SIGTERM, interrupt)
        if threading.current_thread() is threading.main_thread()
        else None
    )
    node.network.create()
    cluster = LocalCluster(
        work_dir / "cluster",
        address=node.network.host_address,
        nodes=tuple(FakeNode(name, taints=(KWOK_TAINT,)) for name in kwok_nodes),
        name="real-node",
    )
    try:
        cluster.start(timeout=timeout)
        node.start(cluster, timeout=timeout)
        if ingress:
            node._timed("Traefik", lambda: deploy_traefik(cluster, node.network.node_address, timeout))
        yield cluster, node
    finally:
        node.stop()
        cluster.stop()
        node.remove_network()
        node.remove_volumes()
        node.remove_runtime_state()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def coredns_manifests() -> list[dict[str, Any]]:
    """CoreDNS serving cluster.local from the Kubernetes API, as a Deployment behind the kube-dns
    Service at DNS_SERVICE_IP. No `forward` (the host's resolver is a private address pods must not
    use) and so no `loop` plugin either.

    It listens on port 53 itself, as CoreDNS does in k3s and kubeadm clusters: a NetworkPolicy port is
    the pod's port, after the Service's translation, so the charts' `allow-dns` (UDP and TCP 53 to
    kube-dns) would block a CoreDNS behind `targetPort: 1053` on an enforcing node. It still runs as
    uid 65532 with no capability, under Pod Security `restricted`: the pod's own network namespace lets
    unprivileged processes bind from port 53 up (`net.ipv4.ip_unprivileged_port_start`, a sysctl the
    kubelet and Pod Security allow)."""
    labels = {"k8s-app": "kube-dns"}
    corefile = f""".:53 {{
    errors
    health :8080
    ready :8181
    kubernetes {CLUSTER_DOMAIN} in-addr.arpa ip6.arpa {{
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }}
    cache 30
}}
"""
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "system:coredns"},
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["endpoints", "services", "pods", "namespaces"],
                    "verbs": ["list", "watch"],
                },
                {
                    "apiGroups": ["discovery.k8s.io"],
                    "resources": ["endpointslices"],
                    "verbs": ["list", "watch"],
                },
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "system:coredns"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "system:coredns",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}],
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": "coredns", "namespace": "kube-system"},
            "data": {"Corefile": corefile},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "serviceAccountName": "coredns",
                        "priorityClassName": "system-cluster-critical",
                        "dnsPolicy": "Default",
                        "tolerations": [{"key": "CriticalAddonsOnly", "operator": "Exists"}],
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": 65532,
                            "runAsGroup": 65532,
                            "seccompProfile": {"type": "RuntimeDefault"},
                            "sysctls": [{"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"}],
                        },
                        "containers": [
                            {
                                "name": "coredns",
                                "image": COREDNS_IMAGE,
                                "imagePullPolicy": "Never",
                                "args": ["-conf", "/etc/coredns/Corefile"],
                                "ports": [
                                    {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                                    {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                                ],
                                "readinessProbe": {
                                    "httpGet": {"path": "/ready", "port": 8181},
                                    "periodSeconds": 2,
                                },
                                "livenessProbe": {
                                    "httpGet": {"path": "/health", "port": 8080},
                                    "periodSeconds": 10,
                                },
                                "resources": {
                                    "requests": {"cpu": "50m", "memory": "32Mi"},
                                    "limits": {"memory": "128Mi"},
                                },
                                "securityContext": {
                                    "allowPrivilegeEscalation": False,
                                    "readOnlyRootFilesystem": True,
                                    "capabilities": {"drop": ["ALL"]},
                                },
                                "volumeMounts": [
                                    {"name": "config", "mountPath": "/etc/coredns", "readOnly": True}
                                ],
                            }
                        ],
                        "volumes": [{"name": "config", "configMap": {"name": "coredns"}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels},
            "spec": {
                "selector": labels,
                "clusterIP": DNS_SERVICE_IP,
                "ports": [
                    {"name": "dns", "port": 53, "targetPort": 53, "protocol": "UDP"},
                    {"name": "dns-tcp", "port": 53, "targetPort": 53, "protocol": "TCP"},
                ],
            },
        },
    ]


__all__ = [
    "KWOK_TAINT",
    "POD_CIDR",
    "NodeNetwork",
    "NodeUnavailable",
    "RealNode",
    "coredns_manifests",
    "image_archives",
    "missing_requirements",
    "normalised_reference",
    "real_node_cluster",
]
