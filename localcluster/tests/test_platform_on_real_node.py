"""The platform installs itself on the real node and runs the seed's acceptance there, for real.

One cluster for the module: control plane, the real node with containerd, CoreDNS and Traefik (the
ingress controller values-prod targets), every image the platform and store charts run imported from
deploy/images' archives. `helm install platform charts/platform` with localcluster/platform-values.yaml
into a namespace enforcing Pod Security `restricted`; then, through Traefik (no DNS here: clients use
Traefik as their http proxy, host names intact):

- the operator's acceptance script, deploy/e2e-cluster.sh, unchanged, for Medusa: an API token minted
  by the management shell in the web pod, a store launched through the platform's own API, the
  chart's migrations and bootstrap Jobs in pods, `ready`, the admin page, an order for "Test Product"
  placed by the store client and confirmed through the Admin API, delete, namespace and volumes gone;
- a Medusa store suspended through the API: its host answers the platform's paused page through
  Traefik (an ExternalName backend), and it comes back when resumed;
- WooCommerce as far as it can go here: MariaDB and WordPress start and pass their probes, the setup
  Job runs and stops at the missing wp-cli, and the store ends `failed` with that reason and no
  release left.

Every store pod is watched (localcluster.pod_stats): time to Ready and peak memory against the
chart's requests and limits. The figures are reported, not asserted.
"""

from __future__ import annotations

import json
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import pytest

from localcluster.figures import image_build_seconds, run_e2e
from localcluster.ingress import INGRESS_CLASS, LABELS, TRAEFIK_IMAGE, ingress_opener
from localcluster.platform_install import InstalledPlatform, chart_images, install_platform
from localcluster.pod_stats import PodObserver, report
from localcluster.tests.support import node_cluster_or_skip
from testkit.reporting import report_lines

IMAGES = tuple(
    dict.fromkeys([*chart_images("platform"), *chart_images("medusa"), *chart_images("woocommerce")])
)

pytestmark = [pytest.mark.real_node, pytest.mark.real_cluster, pytest.mark.slow]


class Figures:
    """Lines for the report written when the module's cluster stops."""

    def __init__(self) -> None:
        self.lines: list[str] = []

    def add(self, line: str) -> None:
        self.lines.append(line)


@pytest.fixture(scope="module")
def figures(request: pytest.FixtureRequest) -> Iterator[Figures]:
    collected = Figures()
    yield collected
    report_lines(request.config, ["", "real node: the platform and its stores", *collected.lines])


@pytest.fixture(scope="module")
def node_cluster(tmp_path_factory: pytest.TempPathFactory, figures: Figures) -> Iterator[tuple]:
    started = time.monotonic()
    with node_cluster_or_skip(Path(tmp_path_factory.mktemp("platform")), IMAGES, ingress=True) as pair:
        cluster, node = pair
        figures.add(
            f"cluster start: {time.monotonic() - started:.0f} s (control plane {cluster.started_seconds:.0f} s, "
            f"node {node.timings['total']:.0f} s of which image import {node.timings['image import']:.0f} s "
            f"for {len(IMAGES) + 3} images, Traefik {node.timings['Traefik']:.1f} s)"
        )
        builds = image_build_seconds([*IMAGES, TRAEFIK_IMAGE])
        known = {image: seconds for image, seconds in builds.items() if seconds is not None}
        figures.add(
            "image builds recorded by deploy/images/build.sh: "
            + (", ".join(f"{image} {seconds} s" for image, seconds in known.items()) or "none")
            + (
                f"; not recorded (built before the record existed): {len(builds) - len(known)}"
                if len(known) < len(builds)
                else ""
            )
        )
        yield pair


@pytest.fixture(scope="module")
def platform(node_cluster, figures: Figures) -> InstalledPlatform:
    cluster, node = node_cluster
    installed = install_platform(cluster, node.network.node_address, timeout=600)
    figures.add(
        f"platform install (helm --wait: workloads Ready, migrations Job done): {installed.install_seconds:.0f} s; "
        f"/readyz 200 through Traefik {installed.ready_seconds:.1f} s later"
    )
    return installed


@pytest.fixture(scope="module")
def observer(node_cluster) -> Iterator[PodObserver]:
    cluster, node = node_cluster
    with PodObserver(cluster, node.name, node.cgroup_root) as watching:
        yield watching


def test_the_platform_serves_through_traefik_under_restricted_with_its_own_accounts(platform):
    cluster = platform.cluster
    with ingress_opener(platform.node_address).open(f"{platform.url}/readyz", timeout=10) as response:
        assert response.status == 200
        # The web pod reaches its database, Redis, and the apiserver through the kubernetes Service.
        assert json.loads(response.read()) == {
            "status": "ok",
            "checks": {"database": "ok", "broker": "ok", "cluster": "ok"},
        }
    namespace = cluster.get("namespaces", platform.namespace)
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    pods = cluster.objects("pods", platform.namespace)
    accounts = {
        pod["metadata"]["labels"]["app.kubernetes.io/component"]: pod["spec"].get("serviceAccountName")
        for pod in pods
    }
    # Web and worker hold different accounts: only the worker's is bound to the deployer powers.
    assert accounts["web"] == "platform-web"
    assert accounts["worker"] == "platform"
    assert {pod["spec"]["nodeName"] for pod in pods} == {"real-node-1"}
    ingress = cluster.get("ingresses", "platform-web", platform.namespace, api="networking.k8s.io/v1")
    assert ingress["spec"]["ingressClassName"] == INGRESS_CLASS
    assert ingress["status"]["loadBalancer"]["ingress"] == [{"ip": platform.node_address}]
    [traefik] = cluster.objects("pods", "kube-system", label_selector="app.kubernetes.io/name=traefik")
    assert traefik["metadata"]["labels"].items() >= LABELS.items()
    # The worker's own token: it may not read Secrets outside store namespaces.
    token = cluster.request(
        "POST",
        f"/api/v1/namespaces/{platform.namespace}/serviceaccounts/platform/token",
        {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )["status"]["token"]
    with pytest.raises(urllib.error.HTTPError) as refused:
        cluster.request("GET", "/api/v1/namespaces/kube-system/secrets", token=token)
    assert refused.value.code == 403


def test_the_operators_acceptance_script_passes_for_medusa(platform, observer, figures):
    transcript = run_e2e(
        ["--url", platform.url, "--engines", "medusa", "--timeout", "900"],
        {**platform.client_env(), "E2E_POLL_SECONDS": "2"},
        timeout=1800,
    )
    output = transcript.text()
    assert transcript.exit_code == 0, output
    assert "e2e: PASSED (medusa)" in output
    assert "[medusa] confirm order (admin):" in output

    requested = transcript.first(r"==> \[\d+\] medusa: create store")
    ready = transcript.first(r"store e2e-md-\S+: ready")
    ordered = transcript.first(r"\[medusa\] order placed:")
    deleting = transcript.first(r"==> \[\d+\] Delete store")
    gone = transcript.first(r"PVCs and PersistentVolumes of store-e2e-md-\S+: gone")
    assert None not in (requested, ready, ordered, deleting, gone), output
    figures.add(
        f"Medusa store: API request -> ready {ready - requested:.0f} s, -> first order {ordered - requested:.0f} s; "
        f"delete -> namespace, PVCs and volumes gone {gone - deleting:.0f} s; whole script {transcript.lines[-1][0] - transcript.started:.0f} s"
    )
    [namespace] = {
        record.namespace for record in observer.records() if record.namespace.startswith("store-e2e-md-")
    }
    records = observer.records(namespace)
    figures.add(f"Medusa store pods ({namespace}, Pod Security restricted, chart quota 2 CPU / 2Gi):")
    for line in report(records):
        figures.add(line)
    containers = {name for record in records for name in record.containers}
    assert {"migrate", "medusa", "bootstrap", "postgres", "redis"} <= containers, containers
    assert {record.node for record in records} == {"real-node-1"}
    for record in records:
        for container in record.containers.values():
            assert not container.oom_killed, f"{record.name}/{container.name} was OOM-killed"
    [server] = [r for r in records if "migrate" in r.containers]
    assert server.containers["migrate"].exit_code == 0  # migrations ran in the init container
    [bootstrap] = [r for r in records if "bootstrap" in r.containers]
    assert bootstrap.containers["bootstrap"].exit_code == 0


def _store_status(platform: InstalledPlatform, token: str, name: str) -> dict:
    status, body = platform.api("GET", f"/stores/{name}/", token)
    assert status == 200, body
    return body


def _wait_for_status(platform: InstalledPlatform, token: str, name: str, wanted: str, timeout: float) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        store = _store_status(platform, token, name)
        if store["status"] == wanted:
            return store
        assert store["status"] != "failed", store
        assert time.monotonic() < deadline, f"{name} still {store['status']} after {timeout:.0f} s: {store}"
        time.sleep(2)


def _fetch(platform: InstalledPlatform, url: str) -> tuple[int, str]:
    try:
        with ingress_opener(platform.node_address).open(url, timeout=30) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def test_a_suspended_store_answers_the_paused_page_through_traefik_and_comes_back(platform, figures):
    # Traefik routes the suspended store's Ingress to an ExternalName Service naming the platform's web
    # Service (allowExternalNameServices, as deploy/k3s/traefik-config.yaml sets on k3s); the
    # platform's first middleware answers for the store's host with the paused page.
    token = platform.issue_api_token()
    name = f"pause-md-{int(time.time()) % 100000}"
    status, body = platform.api("POST", "/stores/", token, {"name": name, "engine": "medusa"})
    assert status == 202, body
    started = time.monotonic()
    store = _wait_for_status(platform, token, name, "ready", timeout=900)
    ready_seconds = time.monotonic() - started
    health = f"{store['public_url']}/health"
    assert _fetch(platform, health)[0] == 200  # the store itself answers

    status, body = platform.api("POST", f"/stores/{name}/suspend/", token, {"reason": "end of season"})
    assert status == 202, body
    began = time.monotonic()
    _wait_for_status(platform, token, name, "suspended", timeout=300)
    paused = _fetch(platform, health)
    suspend_seconds = time.monotonic() - began
    assert paused[0] == 503, paused
    assert f"{name.replace('-', ' ').title()} is paused" in paused[1]
    pods = platform.cluster.objects("pods", f"store-{name}")
    assert not [
        pod
        for pod in pods
        if pod["metadata"].get("deletionTimestamp") is None and pod["status"].get("phase") == "Running"
    ]

    status, body = platform.api("POST", f"/stores/{name}/resume/", token)
    assert status == 202, body
    began = time.monotonic()
    _wait_for_status(platform, token, name, "ready", timeout=600)
    deadline = time.monotonic() + 120
    while (answer := _fetch(platform, health))[0] != 200 and time.monotonic() < deadline:
        time.sleep(2)  # Traefik follows the Ingress back to the store's own Service
    assert answer[0] == 200, answer
    figures.add(
        f"Medusa store suspend/resume through Traefik: ready {ready_seconds:.0f} s; suspend -> paused page "
        f"{suspend_seconds:.0f} s; resume -> store answers {time.monotonic() - began:.0f} s"
    )
    assert platform.api("DELETE", f"/stores/{name}/", token)[0] == 202


def test_woocommerce_runs_until_the_missing_wp_cli_then_fails_cleanly(platform, observer, figures):
    token = platform.issue_api_token()
    name = f"woo-{int(time.time()) % 100000}"
    started = time.monotonic()
    status, body = platform.api("POST", "/stores/", token, {"name": name, "engine": "woocommerce"})
    assert status == 202, body
    deadline = time.monotonic() + 900
    while body.get("status") not in {"ready", "failed"}:
        assert time.monotonic() < deadline, body
        time.sleep(2)
        status, body = platform.api("GET", f"/stores/{name}/", token)
    failed_after = time.monotonic() - started

    assert body["status"] == "failed", body
    reason = body["status_reason"]
    assert "wp-cli (the wp command) is missing from the setup image wordpress:cli-2.12.0-php8.3" in reason
    assert "nothing was installed" in reason
    namespace = f"store-{name}"
    cluster = platform.cluster
    # helm rolled the install back: no release record (pending or otherwise) and no workload is left;
    # the failed hook Job stays for its log, the claims and the credentials for a retry.
    assert cluster.objects("secrets", namespace, label_selector="owner=helm") == []
    for resource, api in (("deployments", "apps/v1"), ("statefulsets", "apps/v1"), ("cronjobs", "batch/v1")):
        assert cluster.objects(resource, namespace, api=api) == [], resource
    records = observer.records(namespace)
    ready = {r.name.split("-")[0] for r in records if r.ready is not None}
    # MariaDB and WordPress started and passed their probes before the setup Job ran.
    assert {"mariadb", "wordpress"} <= ready, [(r.name, r.phase) for r in records]
    [setup] = [r for r in records if "wp-setup" in r.containers]
    assert setup.containers["wp-setup"].exit_code == 78
    # The merchant's activity view reads that log from the real kubelet, through the web pod's own
    # least-privilege account (pods/log in store namespaces only), and lists the pod on the real node.
    status, activity = platform.api(
        "GET", f"/stores/{name}/activity/?pod={setup.name}&container=wp-setup&lines=50", token
    )
    assert status == 200, activity
    [log] = [entry for entry in activity["logs"] if entry["container"] == "wp-setup"]
    assert log["error"] == "" and "wp-cli" in log["text"], log
    [listed] = [pod for pod in activity["pods"] if pod["name"] == setup.name]
    assert listed["node"] == "real-node-1"
    figures.add(f"WooCommerce store: API request -> failed (the setup Job's reason) {failed_after:.0f} s:")
    for line in report(records):
        figures.add(line)

    status, body = platform.api("DELETE", f"/stores/{name}/", token)
    assert status == 202, body
    deadline = time.monotonic() + 600
    while cluster.get("namespaces", namespace) is not None:
        assert time.monotonic() < deadline, f"{namespace} still there"
        time.sleep(2)
    status, body = platform.api("GET", f"/stores/{name}/", token)
    assert status == 404 or body["status"] == "deleted", body
