"""Where the cluster's binaries are: `.tools/cluster/<kubernetes version>/`, built by `make tools`."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VERSIONS_FILE = ROOT / "deploy" / "cluster" / "versions.env"
CONTROL_PLANE = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class BinariesMissing(RuntimeError):
    """The cluster binaries are not built on this machine; the message says how to build them."""


def pinned_versions() -> dict[str, str]:
    """KUBERNETES_VERSION, ETCD_VERSION, KWOK_VERSION from deploy/cluster/versions.env."""
    versions = {}
    for line in VERSIONS_FILE.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            key, _, value = line.partition("=")
            versions[key.strip()] = value.strip()
    return versions


@dataclass(frozen=True)
class ClusterBinaries:
    """The directory holding one Kubernetes version's binaries."""

    directory: Path
    kubernetes_version: str

    @classmethod
    def find(cls) -> ClusterBinaries:
        """The built binaries of the pinned version; BinariesMissing says what to do if absent."""
        version = pinned_versions()["KUBERNETES_VERSION"]
        directory = Path(os.environ.get("CLUSTER_BINARIES_DIR", ROOT / ".tools" / "cluster" / version))
        missing = [name for name in CONTROL_PLANE if not (directory / name).is_file()]
        if missing:
            if shutil.which("go") is None:
                why = "no Go toolchain on this machine"
            else:
                why = f"{', '.join(missing)} not built in {directory}"
            raise BinariesMissing(f"real cluster unavailable: {why}; run `make tools` (needs Go 1.26)")
        return cls(directory, version)

    def path(self, name: str) -> str:
        """Absolute path of one binary."""
        return str(self.directory / name)

    @property
    def stage_crd(self) -> Path:
        """kwok's Stage CustomResourceDefinition, copied from the kwok module by the build."""
        return self.directory / "kwok-stages-crd.yaml"
