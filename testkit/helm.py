"""Helpers shared by the provisioning tests: point the engine at the Kubernetes API double."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from django.conf import settings
from kubernetes import config

from provisioning.cluster_access import ClusterAccess
from provisioning.helm import HelmClient

HELM_BINARIES = {
    "helm3": Path(settings.TOOLS_BIN_DIR) / "helm3",
    "helm4": Path(settings.TOOLS_BIN_DIR) / "helm4",
}


def helm_params() -> list:
    """Parametrize a test over both helm majors; missing binaries skip with the fix named."""
    return [
        pytest.param(
            path,
            id=name,
            marks=pytest.mark.skipif(not path.exists(), reason="run deploy/tools/install-helm.sh"),
        )
        for name, path in HELM_BINARIES.items()
    ]


def access_for(kube_api, helm_binary: Path, work_dir: Path) -> ClusterAccess:
    """A ClusterAccess whose Kubernetes client and helm both talk to `kube_api`."""
    kubeconfig = str(kube_api.kubeconfig_path)
    return ClusterAccess(
        api_client_factory=lambda: config.new_client_from_config(config_file=kubeconfig),
        helm_factory=lambda on_invocation: HelmClient(
            binary=str(helm_binary), kubeconfig=kubeconfig, work_dir=work_dir, on_invocation=on_invocation
        ),
    )


def helm_pids(release_namespace: str) -> list[int]:
    """Process ids of the `helm upgrade --install` processes working on one store namespace."""
    out = subprocess.run(
        ["ps", "-ww", "-eo", "pid=,args="], capture_output=True, text=True, check=False
    ).stdout
    return [
        int(line.split()[0])
        for line in out.splitlines()
        if "upgrade --install" in line and release_namespace in line
    ]
