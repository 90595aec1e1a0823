"""NetworkPolicy enforcement on the real node: kube-router's firewall controller (the NetworkPolicy
controller k3s embeds) as a process of the node, and a stand-in for "the internet" beside it.

Why a process and not a DaemonSet pod: k3s, the platform's production target, runs this controller
inside its agent process on the host, not as a pod; a process also starts before any pod (a pod of
the engine would itself be scheduled after the store pods it has to fence), and stopping it is a
signal, which the tests that run with the engine stopped need. It runs in the node's network
namespace with an identity of its own (`system:kube-router`, the ClusterRole upstream's manifests
give it), so its iptables rules and ipsets are the node's and nothing touches the host's network.

Test tooling, never shipped; see deploy/netpol/README.md for the engine, its pin and its findings.
"""

from __future__ import annotations

import hashlib
import subprocess
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from localcluster.binaries import ROOT
from localcluster.cluster import SERVICE_CIDR, kubeconfig_yaml
from localcluster.processes import Component, ComponentFailed

if TYPE_CHECKING:
    from localcluster.cluster import LocalCluster
    from localcluster.node import RealNode

NETPOL_TOOLS = ROOT / ".tools" / "netpol"
KUBE_ROUTER = NETPOL_TOOLS / "kube-router"
PROBE = NETPOL_TOOLS / "probe"
IPSET = "/usr/sbin/ipset"
ENGINE_USER = "system:kube-router"
HEALTH_PORT = 20244
# The chains kube-router hooks into INPUT, FORWARD and OUTPUT once its first sync is done.
TOP_LEVEL_CHAINS = ("KUBE-ROUTER-INPUT", "KUBE-ROUTER-FORWARD", "KUBE-ROUTER-OUTPUT")
# The names of every chain and ipset the controller makes (its network_policy_controller.go).
ENGINE_CHAIN_PREFIXES = ("KUBE-ROUTER-", "KUBE-POD-FW-", "KUBE-NWPLCY-")
ENGINE_IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")


def engine_missing() -> list[str]:
    """What this machine lacks to enforce NetworkPolicies on the real node (empty when nothing)."""
    problems = []
    for binary in (KUBE_ROUTER, PROBE):
        if not binary.is_file():
            problems.append(f"{binary.relative_to(ROOT)} (bash deploy/netpol/build.sh)")
    if not Path(IPSET).is_file():
        problems.append(f"{IPSET} (bash deploy/netpol/build.sh installs it from Debian)")
    return problems


def engine_rbac() -> list[dict[str, Any]]:
    """The ClusterRole upstream's kube-router manifests give the controller (read-only), bound to the
    engine's user; the informers it starts list and watch every one of these kinds."""
    rules = [
        {
            "apiGroups": [""],
            "resources": ["namespaces", "pods", "services", "nodes", "endpoints"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["networking.k8s.io"],
            "resources": ["networkpolicies"],
            "verbs": ["get", "list", "watch"],
        },
        {
            "apiGroups": ["discovery.k8s.io"],
            "resources": ["endpointslices"],
            "verbs": ["get", "list", "watch"],
        },
    ]
    return [
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": "kube-router"},
            "rules": rules,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": "kube-router"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": "kube-router",
            },
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": ENGINE_USER}],
        },
    ]


class NetworkPolicyEngine:
    """kube-router v2 with only its firewall controller (`--run-firewall`), on one RealNode.

    `start()` returns once the controller is healthy and its chains are hooked in; `stop()` ends it
    and removes its rules and ipsets, so a stopped engine enforces nothing, exactly as a node
    without one.
    """

    def __init__(self, node: RealNode) -> None:
        problems = engine_missing()
        if problems:
            raise ComponentFailed("NetworkPolicy engine unavailable: missing " + "; ".join(problems))
        self.node = node
        self.work_dir = node.work_dir / "kube-router"
        self.component: Component | None = None
        self.started_seconds = 0.0

    def start(self, cluster: LocalCluster, *, timeout: float = 90) -> NetworkPolicyEngine:
        begun = time.monotonic()
        self.work_dir.mkdir(parents=True, exist_ok=True)
        for manifest in engine_rbac():
            cluster.apply(manifest)
        pair = cluster.pki.client("kube-router", user=ENGINE_USER)
        kubeconfig = self.work_dir / "kubeconfig"
        kubeconfig.write_text(
            kubeconfig_yaml(cluster.server, cluster.pki.ca.cert, user=ENGINE_USER, cert=pair)
        )
        kubeconfig.chmod(0o600)
        health = f"http://{self.node.network.node_address}:{HEALTH_PORT}/healthz"
        self.component = Component(
            "kube-router",
            [
                str(KUBE_ROUTER),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={self.node.name}",
                # Only the NetworkPolicy controller: the router (BGP, whose gRPC port is
                # GHSA-v5mh-h5hx-7v92) and the service proxy (GHSA-phqm-jgc3-qf8g) never start;
                # kube-proxy is the node's service proxy.
                "--run-firewall=true",
                "--run-router=false",
                "--run-service-proxy=false",
                "--run-loadbalancer=false",
                "--enable-ipv4=true",
                "--enable-ipv6=false",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--health-port={HEALTH_PORT}",
                "--metrics-port=0",
                "--v=1",
            ],
            log_path=self.node.logs / "kube-router.log",
            ready=lambda: self._http_ok(health) and self.hooked_in(),
            # iptables-save/-restore and ipset, from Debian.
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            wrapper=self.node.network.wrapper,
        )
        self.component.start(timeout=timeout)
        self.started_seconds = time.monotonic() - begun
        return self

    def stop(self) -> None:
        """End the controller, then remove every chain and ipset it made."""
        if self.component is not None:
            self.component.stop()
            self.component = None
        if self.node.network.exists:
            self._remove_rules()

    def _remove_rules(self) -> None:
        """What upstream's `Cleanup()` does once fixed: every rule that jumps to one of the
        controller's chains, those chains, and its ipsets.

        v2.1.0's `kube-router --cleanup-config` is a no-op for the firewall: it builds a controller
        with no iptables or ipset handlers, so its loops run over nothing and it still logs success
        (cloudnativelabs/kube-router#1649, fixed by #1650 after v2.1.0, which the proxy does not
        serve). Measured here: after it, INPUT, FORWARD and OUTPUT still jumped to KUBE-ROUTER-*."""
        rules = self.rules().splitlines()
        chains = [
            line[1:].split()[0]
            for line in rules
            if line.startswith(":") and line[1:].split()[0].startswith(ENGINE_CHAIN_PREFIXES)
        ]
        if chains:
            # One atomic transaction that leaves every other rule (kube-proxy's, the CNI's) alone:
            # delete the jumps from the chains that are not the engine's, flush its chains, drop them.
            jumps = [
                "-D" + line[2:]
                for line in rules
                if line.startswith("-A ")
                and not line.split()[1].startswith(ENGINE_CHAIN_PREFIXES)
                and any(f"-j {chain}" in line or f"-g {chain}" in line for chain in chains)
            ]
            script = "\n".join(
                ["*filter", *jumps, *(f"-F {c}" for c in chains), *(f"-X {c}" for c in chains), "COMMIT", ""]
            )
            subprocess.run(
                [*self.node.network.wrapper, "iptables-restore", "--noflush"],
                input=script,
                capture_output=True,
                text=True,
                timeout=30,
                check=True,
                env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            )
        sets = subprocess.run(
            [*self.node.network.wrapper, IPSET, "list", "-n"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout.split()
        for name in sets:
            if name.startswith(ENGINE_IPSET_PREFIXES):
                subprocess.run(
                    [*self.node.network.wrapper, IPSET, "destroy", name],
                    capture_output=True,
                    timeout=30,
                    check=True,
                )

    @property
    def running(self) -> bool:
        return self.component is not None and self.component.running

    @staticmethod
    def _http_ok(url: str) -> bool:
        with urllib.request.urlopen(url, timeout=3) as response:
            return response.status == 200

    def rules(self) -> str:
        """The node's filter table as iptables-save prints it."""
        return subprocess.run(
            [*self.node.network.wrapper, "iptables-save", "-t", "filter"],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout

    def hooked_in(self) -> bool:
        """True once the INPUT, FORWARD and OUTPUT chains jump to kube-router's."""
        rules = self.rules()
        return all(f"-j {chain}" in rules for chain in TOP_LEVEL_CHAINS)

    def fences(self, namespace: str, pod: str) -> bool:
        """True once the controller has written the firewall chain of a pod that a policy selects.

        A pod's traffic is not filtered until then (kube-router programs a new pod at its next sync,
        and until that its packets meet no rule of its own), so a probe must wait for this."""
        return f"from POD name:{pod} namespace: {namespace} to chain" in self.rules()


@dataclass(frozen=True)
class Internet:
    """A stand-in for hosts outside the cluster: a network namespace joined to the node's by a veth
    pair, holding an "internet" address and the cloud metadata address.

    There is no internet here, and a listener on the node's own addresses would be reached through
    the node's INPUT chain, not the FORWARD path that real egress takes; this one is a routed hop
    away, so the pods' packets leave the node exactly as they would towards a real API."""

    namespace: str
    node_interface: str
    # TEST-NET-2 (RFC 5737): outside every range a cluster uses, and never routed on the host.
    prefix: str = "198.51.100"
    metadata_address: str = "169.254.169.254"

    @classmethod
    def beside(cls, node: RealNode) -> Internet:
        suffix = hashlib.sha256(node.network.namespace.encode()).hexdigest()[:6]
        return cls(namespace=f"spinet-{suffix}", node_interface="inet0")

    @property
    def address(self) -> str:
        """The internet host's address (a listener here stands for payment or shipping APIs)."""
        return f"{self.prefix}.10"

    @property
    def gateway(self) -> str:
        return f"{self.prefix}.1"

    @property
    def path(self) -> str:
        return f"/run/netns/{self.namespace}"

    @property
    def wrapper(self) -> list[str]:
        return ["nsenter", f"--net={self.path}"]

    def create(self, node: RealNode) -> Internet:
        """Create the namespace, link it to the node's and route the metadata address through it."""
        self.delete()
        _run(["ip", "netns", "add", self.namespace])
        try:
            _run(
                [
                    *node.network.wrapper,
                    "ip",
                    "link",
                    "add",
                    self.node_interface,
                    "type",
                    "veth",
                    "peer",
                    "name",
                    "eth0",
                    "netns",
                    self.namespace,
                ]
            )
            for argv in (
                ["addr", "add", f"{self.gateway}/24", "dev", self.node_interface],
                ["link", "set", self.node_interface, "up"],
                ["route", "add", f"{self.metadata_address}/32", "via", self.address],
            ):
                _run([*node.network.wrapper, "ip", *argv])
            for argv in (
                ["link", "set", "lo", "up"],
                ["addr", "add", f"{self.address}/24", "dev", "eth0"],
                ["addr", "add", f"{self.metadata_address}/32", "dev", "eth0"],
                ["link", "set", "eth0", "up"],
                ["route", "add", "default", "via", self.gateway],
            ):
                _run(["ip", "-n", self.namespace, *argv])
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self) -> None:
        """Remove the namespace (its end of the veth pair, and so the node's end, go with it)."""
        if Path(self.path).exists():
            _run(["ip", "netns", "delete", self.namespace])


def _run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    if result.returncode != 0:
        raise ComponentFailed(f"{' '.join(argv)} exited with {result.returncode}: {result.stderr.strip()}")
    return result.stdout


class Listener:
    """`probe serve` on some TCP ports inside a network namespace (the internet stand-in's, or the
    node's): a target that answers, so that a refused or dropped probe means a fence, not an absent
    server."""

    def __init__(
        self, name: str, wrapper: list[str], ports: tuple[int, ...], *, log_dir: Path, address: str = ""
    ):
        argv = [str(PROBE), "serve", *([f"-listen={address}"] if address else []), *map(str, ports)]
        self.ports = ports
        self.component = Component(
            f"listener-{name}",
            argv,
            log_path=log_dir / f"listener-{name}.log",
            ready=lambda: "listening on" in self.component.log_tail(5),
            env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"},
            wrapper=wrapper,
        )

    def start(self) -> Listener:
        self.component.start(timeout=10)
        return self

    def stop(self) -> None:
        self.component.stop()


__all__ = [
    "KUBE_ROUTER",
    "PROBE",
    "Internet",
    "Listener",
    "NetworkPolicyEngine",
    "engine_missing",
    "engine_rbac",
]
