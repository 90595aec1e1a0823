"""Fixtures for the Kubernetes API double's own tests: the double, real helm binaries and a tiny chart."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from kubeapi_double.server import KubeApiDouble

# The fixture itself lives in the plugin other test suites load with pytest_plugins.
from testkit.plugins.kube_double import kube_api  # noqa: F401

TOOLS_BIN = Path(__file__).resolve().parents[2] / ".tools" / "bin"

TINY_CHART = {
    "Chart.yaml": "apiVersion: v2\nname: tiny\nversion: 0.1.0\n",
    "values.yaml": "image: nginx:1.27\nmessage: hello\n",
    "templates/config.yaml": """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Release.Name }}-cfg
data:
  message: {{ .Values.message | quote }}
""",
    "templates/service.yaml": """\
apiVersion: v1
kind: Service
metadata:
  name: {{ .Release.Name }}-svc
spec:
  selector:
    app: {{ .Release.Name }}
  ports:
    - port: 80
      targetPort: 8080
""",
    "templates/pvc.yaml": """\
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: {{ .Release.Name }}-data
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: 1Gi
""",
    "templates/deployment.yaml": """\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}-web
spec:
  replicas: 1
  selector:
    matchLabels:
      app: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}
    spec:
      containers:
        - name: web
          image: {{ .Values.image | quote }}
          env:
            - name: MESSAGE
              value: {{ .Values.message | quote }}
""",
    "templates/statefulset.yaml": """\
apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: {{ .Release.Name }}-db
spec:
  serviceName: {{ .Release.Name }}-svc
  replicas: 1
  selector:
    matchLabels:
      app: {{ .Release.Name }}-db
  template:
    metadata:
      labels:
        app: {{ .Release.Name }}-db
    spec:
      containers:
        - name: db
          image: mariadb:11
""",
    "templates/hook.yaml": """\
apiVersion: batch/v1
kind: Job
metadata:
  name: {{ .Release.Name }}-hook
  annotations:
    helm.sh/hook: post-install,post-upgrade
    helm.sh/hook-delete-policy: before-hook-creation
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
        - name: hook
          image: busybox:1.36
""",
}


@pytest.fixture
def tiny_chart(tmp_path: Path) -> Path:
    """A throwaway chart: ConfigMap, Service, PVC, Deployment, StatefulSet and a post-install hook Job."""
    chart = tmp_path / "tiny"
    for relative, text in TINY_CHART.items():
        target = chart / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    return chart


@dataclass
class Tool:
    """A real helm (or kubectl) binary pointed at the double; for helm, the flags that differ in 3 and 4."""

    binary: Path
    major: int
    env: dict[str, str]

    @property
    def wait(self) -> list[str]:
        """Wait for readiness: boolean ``--wait`` in Helm 3, the kstatus watcher in Helm 4."""
        return ["--wait"] if self.major == 3 else ["--wait=watcher"]

    @property
    def rollback_on_failure(self) -> list[str]:
        """Roll back (or uninstall) on failure: ``--atomic`` in Helm 3, ``--rollback-on-failure`` in 4."""
        return ["--atomic"] if self.major == 3 else ["--rollback-on-failure"]

    @property
    def list_all(self) -> list[str]:
        """Helm 3 hides pending/failed releases unless ``-a``; Helm 4 lists every status and has no ``-a``."""
        return ["-a"] if self.major == 3 else []

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the tool with an explicit environment; fail the test with its output when ``check``."""
        result = subprocess.run(
            [str(self.binary), *args], env=self.env, capture_output=True, text=True, timeout=90
        )
        if check and result.returncode != 0:
            pytest.fail(
                f"{self.binary.name} {' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}"
            )
        return result

    def json(self, *args: str) -> Any:
        """Run with ``-o json`` and parse the output."""
        return json.loads(self.run(*args, "-o", "json").stdout)


def tool_env(kubeconfig: Path, home: Path) -> dict[str, str]:
    """A minimal environment for helm/kubectl: only the kubeconfig and private config/cache dirs."""
    return {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(home),
        "KUBECONFIG": str(kubeconfig),
        "HELM_CONFIG_HOME": str(home / "helm-config"),
        "HELM_CACHE_HOME": str(home / "helm-cache"),
        "HELM_DATA_HOME": str(home / "helm-data"),
    }


@pytest.fixture(params=[3, 4], ids=["helm3", "helm4"])
def helm(request: pytest.FixtureRequest, kube_api: KubeApiDouble, tmp_path: Path) -> Tool:  # noqa: F811
    """Helm 3.18 and Helm 4.1 from ``.tools/bin``, each against a fresh double."""
    binary = TOOLS_BIN / f"helm{request.param}"
    if not binary.exists():
        pytest.skip(f"{binary} is missing; install it with `bash deploy/tools/install-helm.sh`")
    return Tool(binary, request.param, tool_env(kube_api.kubeconfig_path, tmp_path / "home"))


@pytest.fixture
def kubectl(kube_api: KubeApiDouble, tmp_path: Path) -> Tool:  # noqa: F811
    """kubectl 1.35 from ``.tools/bin`` against the double."""
    binary = TOOLS_BIN / "kubectl"
    if not binary.exists():
        pytest.skip(f"{binary} is missing; install it with `bash deploy/tools/install-helm.sh`")
    return Tool(binary, 0, tool_env(kube_api.kubeconfig_path, tmp_path / "home"))
