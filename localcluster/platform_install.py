"""The platform installing itself on the real node: `helm upgrade --install platform charts/platform`
with localcluster/platform-values.yaml (local images never pulled, Traefik, local-path, a domain only
the cluster knows) into a namespace that enforces Pod Security `restricted`, then `/readyz` through
Traefik. Test tooling (tests, the benchmark, `make cluster NODE=real PLATFORM=1`), never the image.

The images every pod needs are read from the charts' own values, so a new pin in a chart is what
the node imports, with no second list to keep in step.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from localcluster.binaries import ROOT
from localcluster.cluster import LocalCluster
from localcluster.ingress import HTTP_PORT, ingress_opener, wait_routed

CHARTS = ROOT / "charts"
VALUES_FILE = Path(__file__).with_name("platform-values.yaml")
HELM = ROOT / ".tools" / "bin" / "helm3"
KUBECTL = ROOT / ".tools" / "bin" / "kubectl"
ISSUE_TOKEN_SCRIPT = ROOT / "deploy" / "e2e" / "issue_token.py"


def _image(values: dict[str, Any]) -> str:
    return f"{values['repository']}:{values['tag']}"


def chart_images(chart: str) -> tuple[str, ...]:
    """Every image `charts/<chart>` runs with its default values (platform, medusa, woocommerce)."""
    values = yaml.safe_load((CHARTS / chart / "values.yaml").read_text())
    found = []
    if "repository" in values.get("image", {}):
        found.append(_image(values["image"]))
    for component in ("postgres", "redis"):  # the platform chart's own databases
        if "repository" in values.get(component, {}).get("image", {}):
            found.append(_image(values[component]["image"]))
    found.extend(_image(image) for image in values.get("images", {}).values())
    return tuple(dict.fromkeys(found))


def platform_domain(values_file: Path = VALUES_FILE) -> str:
    """The domain the values file installs the platform under."""
    return yaml.safe_load(values_file.read_text())["domain"]


class InstallFailed(RuntimeError):
    """helm could not install the platform; the message carries helm's output and the pods' states."""


@dataclass(frozen=True)
class InstalledPlatform:
    """charts/platform installed on a real-node cluster and reachable through Traefik."""

    cluster: LocalCluster
    node_address: str
    namespace: str
    release: str
    host: str
    install_seconds: float
    ready_seconds: float

    @property
    def url(self) -> str:
        """The dashboard's URL, as the chart publishes it (reachable through `client_env()`)."""
        return f"http://{self.host}"

    @property
    def proxy(self) -> str:
        """Traefik on the node, as an HTTP proxy: the way a client here reaches cluster-only hosts."""
        return f"http://{self.node_address}:{HTTP_PORT}"

    def client_env(self) -> dict[str, str]:
        """Environment for a client process (deploy/e2e-cluster.sh, kubectl, the store client): the
        admin kubeconfig, the pinned kubectl, and Traefik as the http proxy for every host name."""
        apiserver = self.cluster.address
        return {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "KUBECTL": str(KUBECTL),
            "PYTHON": str(ROOT / ".venv" / "bin" / "python"),
            "http_proxy": self.proxy,
            # kubectl speaks https to the apiserver, which no http proxy must see.
            "no_proxy": f"{apiserver},127.0.0.1,localhost",
        }

    def kubectl(self, *args: str, stdin: str | None = None, timeout: float = 120) -> str:
        """Run the pinned kubectl as the cluster admin; its stdout (CalledProcessError on failure)."""
        return subprocess.run(
            [str(KUBECTL), "--kubeconfig", str(self.cluster.kubeconfig), *args],
            input=stdin,
            capture_output=True,
            text=True,
            check=True,
            timeout=timeout,
        ).stdout

    def issue_api_token(self) -> str:
        """A fresh tenant and API token, made by the management shell inside the web pod exactly as
        deploy/e2e-cluster.sh makes them (deploy/e2e/issue_token.py)."""
        output = self.kubectl(
            "-n",
            self.namespace,
            "exec",
            "-i",
            f"deployment/{self.release}-web",
            "-c",
            "web",
            "--",
            "python",
            "manage.py",
            "shell",
            stdin=ISSUE_TOKEN_SCRIPT.read_text(),
        )
        lines = [line for line in output.splitlines() if line.startswith("E2E_TOKEN ")]
        if not lines:
            raise InstallFailed(f"the web pod printed no token: {output[-500:]}")
        return lines[-1].removeprefix("E2E_TOKEN ")

    def api(self, method: str, path: str, token: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
        """One call to the platform's own API through Traefik: (status, decoded JSON)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 - the platform's URL, through our proxy
            f"{self.url}/api/v1{path}",
            data=data,
            method=method,
            headers={
                "Authorization": f"Token {token}",
                "Accept": "application/json",
                **({"Content-Type": "application/json"} if data is not None else {}),
            },
        )
        try:
            with ingress_opener(self.node_address).open(request, timeout=30) as response:
                raw = response.read()
                return response.status, json.loads(raw) if raw else None
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            try:
                return exc.code, json.loads(raw) if raw else None
            except ValueError:
                return exc.code, raw[:300].decode(errors="replace")


def _helm(cluster: LocalCluster, *args: str, timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(HELM), "--kubeconfig", str(cluster.kubeconfig), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
        # helm's cache and config (and client-go's discovery cache, under $HOME/.kube) in the cluster's
        # work directory, never the user's home or the current directory.
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(cluster.work_dir / "helm"),
            "HELM_CACHE_HOME": str(cluster.work_dir / "helm" / "cache"),
            "HELM_CONFIG_HOME": str(cluster.work_dir / "helm" / "config"),
            "HELM_DATA_HOME": str(cluster.work_dir / "helm" / "data"),
        },
    )


def _pod_states(cluster: LocalCluster, namespace: str) -> str:
    lines = []
    for pod in cluster.objects("pods", namespace):
        statuses = pod.get("status", {})
        containers = [*statuses.get("initContainerStatuses", []), *statuses.get("containerStatuses", [])]
        states = ", ".join(f"{c['name']}={next(iter(c.get('state', {'?': 0})))}" for c in containers)
        lines.append(f"{pod['metadata']['name']}: {statuses.get('phase')} ({states})")
    return "\n".join(lines)


def install_platform(
    cluster: LocalCluster,
    node_address: str,
    *,
    namespace: str = "platform",
    release: str = "platform",
    values_file: Path = VALUES_FILE,
    timeout: float = 600,
) -> InstalledPlatform:
    """Install charts/platform and wait for its workloads, its migrations Job (helm --wait runs the
    post-install hook) and `/readyz` through Traefik; InstallFailed says what did not come up."""
    # The platform's own namespace enforces `restricted` too: nothing in the chart may need more.
    cluster.apply(
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": namespace,
                "labels": {
                    "pod-security.kubernetes.io/enforce": "restricted",
                    "pod-security.kubernetes.io/warn": "restricted",
                },
            },
        }
    )
    cluster.wait(lambda: cluster.get("serviceaccounts", "default", namespace), 60, f"{namespace} ready")
    started = time.monotonic()
    result = _helm(
        cluster,
        "upgrade",
        "--install",
        release,
        str(CHARTS / "platform"),
        "--namespace",
        namespace,
        "--values",
        str(values_file),
        "--wait",
        "--timeout",
        f"{int(timeout)}s",
        timeout=timeout + 60,
    )
    install_seconds = time.monotonic() - started
    if result.returncode != 0:
        raise InstallFailed(
            f"helm install of charts/platform failed after {install_seconds:.0f} s: "
            f"{result.stderr.strip()}\n{_pod_states(cluster, namespace)}"
        )
    host = f"dashboard.{platform_domain(values_file)}"
    try:
        ready_seconds = wait_routed(node_address, f"http://{host}/readyz", timeout=120)
    except TimeoutError as exc:
        raise InstallFailed(f"{exc}\n{_pod_states(cluster, namespace)}") from exc
    return InstalledPlatform(
        cluster=cluster,
        node_address=node_address,
        namespace=namespace,
        release=release,
        host=host,
        install_seconds=install_seconds,
        ready_seconds=ready_seconds,
    )


__all__ = [
    "VALUES_FILE",
    "InstallFailed",
    "InstalledPlatform",
    "chart_images",
    "install_platform",
    "platform_domain",
]
