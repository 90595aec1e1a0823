"""What the real node is configured with, checked without starting it (no root needed)."""

from __future__ import annotations

from pathlib import Path

from localcluster.node import (
    DNS_SERVICE_IP,
    NodeNetwork,
    coredns_manifests,
    image_archives,
    normalised_reference,
)


def test_short_image_names_resolve_as_the_cri_resolves_them():
    assert normalised_reference("redis:7.4.2-bookworm") == "docker.io/library/redis:7.4.2-bookworm"
    assert normalised_reference("bitnami/redis:7") == "docker.io/bitnami/redis:7"
    assert normalised_reference("localhost/pause:3.10.2") == "localhost/pause:3.10.2"
    assert normalised_reference("registry.k8s.io/pause:3.10.2") == "registry.k8s.io/pause:3.10.2"
    assert normalised_reference("localhost:5000/shop:1") == "localhost:5000/shop:1"
    assert normalised_reference("redis") == "docker.io/library/redis"


def test_each_work_directory_gets_its_own_namespace_and_interface(tmp_path: Path):
    one = NodeNetwork.for_directory(tmp_path / "one")
    two = NodeNetwork.for_directory(tmp_path / "two")
    assert one.namespace != two.namespace and one.host_interface != two.host_interface
    assert len(one.host_interface) <= 15  # the kernel's limit on interface names
    prefix = one.link_prefix
    assert prefix.startswith("10.201.") and 1 <= int(prefix.rsplit(".", 1)[1]) <= 250
    assert (one.host_address, one.node_address) == (f"{prefix}.1", f"{prefix}.2")
    assert one.wrapper == ["nsenter", f"--net=/run/netns/{one.namespace}"]


def test_coredns_serves_the_cluster_domain_only_and_fits_pod_security_restricted():
    manifests = {m["kind"]: m for m in coredns_manifests()}
    corefile = manifests["ConfigMap"]["data"]["Corefile"]
    assert "kubernetes cluster.local" in corefile
    # The host's resolver is a private address pods must not use: nothing is forwarded anywhere.
    assert "forward" not in corefile and "loop" not in corefile
    assert manifests["Service"]["spec"]["clusterIP"] == DNS_SERVICE_IP
    pod = manifests["Deployment"]["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    [container] = pod["containers"]
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    # Port 53 in the pod itself, as in k3s: NetworkPolicies match the pod's port, and the charts'
    # allow-dns admits 53 only. Bound with no capability, through the pod's own sysctl.
    assert {(p["containerPort"], p["protocol"]) for p in container["ports"]} == {(53, "UDP"), (53, "TCP")}
    assert {(p["port"], p["targetPort"]) for p in manifests["Service"]["spec"]["ports"]} == {(53, 53)}
    assert ".:53 {" in corefile
    assert {"name": "net.ipv4.ip_unprivileged_port_start", "value": "53"} in pod["securityContext"]["sysctls"]
    assert "add" not in container["securityContext"]["capabilities"]


def test_the_image_index_lists_only_archives_that_exist(tmp_path: Path):
    present = tmp_path / "redis.oci.tar"
    present.write_bytes(b"archive")
    index = tmp_path / "index.tsv"
    index.write_text(
        f"docker.io/library/redis:7.4.2-bookworm\t{present}\ndocker.io/library/gone:1\t{tmp_path / 'gone.tar'}\n"
    )
    assert image_archives(index) == {"docker.io/library/redis:7.4.2-bookworm": present}
