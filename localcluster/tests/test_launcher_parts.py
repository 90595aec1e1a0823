"""The launcher's pieces that need no running cluster: finding binaries, certificates, the build script."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from localcluster.binaries import ROOT, BinariesMissing, ClusterBinaries, pinned_versions
from localcluster.pki import ClusterPKI


def test_missing_binaries_say_what_to_run(tmp_path, monkeypatch):
    monkeypatch.setenv("CLUSTER_BINARIES_DIR", str(tmp_path / "nothing-here"))
    with pytest.raises(BinariesMissing, match=r"run `make tools`"):
        ClusterBinaries.find()


def test_the_pinned_versions_are_read_from_versions_env():
    versions = pinned_versions()
    assert versions["KUBERNETES_VERSION"].startswith("v1.")
    assert {"ETCD_VERSION", "KWOK_VERSION"} <= set(versions)


def _subject(cert_path: Path) -> tuple[str, list[str]]:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    cn = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    orgs = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    return str(cn), [str(o) for o in orgs]


def test_client_certificates_carry_the_user_and_groups_kubernetes_reads(tmp_path):
    pki = ClusterPKI(tmp_path)
    pair = pki.client("node", user="system:node:n1", groups=("system:nodes",))
    assert _subject(pair.cert) == ("system:node:n1", ["system:nodes"])
    assert oct(pair.key.stat().st_mode & 0o777) == "0o600"
    # Asking again returns the same files: restarting a cluster keeps its identities.
    assert pki.client("node", user="ignored").cert.read_bytes() == pair.cert.read_bytes()


def test_the_serving_certificate_names_every_address_clients_use(tmp_path):
    pki = ClusterPKI(tmp_path)
    pair = pki.serving("api", names=("kubernetes.default.svc", "localhost"), ips=("127.0.0.1", "10.96.0.1"))
    cert = x509.load_pem_x509_certificate(pair.cert.read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(names.get_values_for_type(x509.DNSName)) == {"kubernetes.default.svc", "localhost"}
    assert {str(ip) for ip in names.get_values_for_type(x509.IPAddress)} == {"127.0.0.1", "10.96.0.1"}


def test_build_script_without_go_says_so_in_one_line(tmp_path):
    # A PATH with bash and coreutils but no go.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname", "cat", "sha256sum", "cut"):
        os.symlink(shutil.which(tool), bin_dir / tool)
    result = subprocess.run(
        ["bash", str(ROOT / "deploy" / "cluster" / "build.sh")],
        env={"PATH": str(bin_dir), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.strip().splitlines() == [
        "cluster tools: skipped (no Go toolchain on PATH): real-cluster tests and 'make cluster' need Go 1.26"
    ]
    assert result.stderr == ""
