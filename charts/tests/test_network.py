"""NetworkPolicies: default deny, DNS to kube-dns only, web reachable only from the ingress
controller, databases only from their clients, internet egress that never reaches the cluster."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
from kubernetes.client import ApiClient

from charts.tests.rendering import by_kind, pod_spec, render_chart
from charts.tests.support import ci_values
from provisioning.backup_jobs import job_manifest
from provisioning.tests.test_backup_jobs import backup_spec

CONTROLLER = {
    "local": ("ingress-nginx", {"app.kubernetes.io/name": "ingress-nginx"}),
    "prod": ("kube-system", {"app.kubernetes.io/name": "traefik"}),
}
WEB = {"woocommerce": ("wordpress", 8080), "medusa": ("medusa", 9000)}
# (source workload, destination workload, port) the store needs inside its namespace.
NEEDED = {
    "woocommerce": {
        ("Deployment/wordpress", "StatefulSet/mariadb", 3306),
        ("Job/wp-setup", "StatefulSet/mariadb", 3306),
    },
    "medusa": {
        ("Deployment/medusa", "StatefulSet/postgres", 5432),
        ("Deployment/medusa", "Deployment/redis", 6379),
        ("Job/medusa-bootstrap", "StatefulSet/postgres", 5432),
        ("Job/medusa-bootstrap", "Deployment/redis", 6379),
    },
}
INTERNET = {
    "woocommerce": {"Deployment/wordpress", "Job/wp-setup"},
    "medusa": {"Deployment/medusa", "Job/medusa-bootstrap"},
}
KUBE_DNS = {
    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
    "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
}


def _pod_labels(manifests: list[dict[str, Any]]) -> dict[str, dict[str, str]]:
    """Pod template labels per workload (``Kind/name``)."""
    result = {}
    for obj in manifests:
        if pod_spec(obj) is None:
            continue
        template = (
            obj["spec"]["jobTemplate"]["spec"]["template"]
            if obj["kind"] == "CronJob"
            else obj["spec"]["template"]
        )
        result[f"{obj['kind']}/{obj['metadata']['name']}"] = template["metadata"]["labels"]
    return result


def _selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    assert set(selector) <= {"matchLabels"}, "matchExpressions are not used by these charts"
    return all(labels.get(k) == v for k, v in (selector.get("matchLabels") or {}).items())


def _policies_for(
    manifests: list[dict[str, Any]], labels: dict[str, str], direction: str
) -> list[dict[str, Any]]:
    return [
        p
        for p in by_kind(manifests, "NetworkPolicy")
        if direction in p["spec"]["policyTypes"] and _selects(p["spec"]["podSelector"], labels)
    ]


def _port_matches(rule: dict[str, Any], port: int) -> bool:
    return "ports" not in rule or any(
        p.get("port") == port and p.get("protocol", "TCP") == "TCP" for p in rule["ports"]
    )


def allowed_in_namespace(
    manifests: list[dict[str, Any]], src: dict[str, str], dst: dict[str, str], port: int
) -> bool:
    """Whether the policies let a pod labelled ``src`` open TCP ``port`` on a pod labelled ``dst``.

    Only same-namespace pod peers count: ipBlock peers exclude the cluster ranges (asserted below).
    """

    def peer_matches(peer: dict[str, Any], labels: dict[str, str]) -> bool:
        return (
            "namespaceSelector" not in peer
            and "ipBlock" not in peer
            and _selects(peer["podSelector"], labels)
        )

    egress = any(
        _port_matches(rule, port) and any(peer_matches(peer, dst) for peer in rule.get("to", []))
        for policy in _policies_for(manifests, src, "Egress")
        for rule in policy["spec"].get("egress", [])
    )
    ingress = any(
        _port_matches(rule, port) and any(peer_matches(peer, src) for peer in rule.get("from", []))
        for policy in _policies_for(manifests, dst, "Ingress")
        for rule in policy["spec"].get("ingress", [])
    )
    return egress and ingress


def test_default_deny_both_directions(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    deny = [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "default-deny-all"]

    assert len(deny) == 1
    assert deny[0]["spec"] == {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}


def test_dns_only_to_kube_dns(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store
    dns_rules = [
        rule
        for policy in by_kind(manifests, "NetworkPolicy")
        for rule in policy["spec"].get("egress", [])
        if any(p.get("port") == 53 for p in rule.get("ports", []))
    ]

    assert len(dns_rules) == 1
    assert dns_rules[0]["to"] == [KUBE_DNS]
    assert {(p["protocol"], p["port"]) for p in dns_rules[0]["ports"]} == {("UDP", 53), ("TCP", 53)}


def test_web_reachable_only_from_the_ingress_controller(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, ci, manifests = store
    web, port = WEB[chart]
    namespace, pod_labels = CONTROLLER[ci]
    labels = _pod_labels(manifests)[f"Deployment/{web}"]

    rules = [
        rule for p in _policies_for(manifests, labels, "Ingress") for rule in p["spec"].get("ingress", [])
    ]

    assert rules == [
        {
            "from": [
                {
                    "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                    "podSelector": {"matchLabels": pod_labels},
                }
            ],
            "ports": [{"protocol": "TCP", "port": port}],
        }
    ]


def test_no_rule_opens_everything(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    for policy in by_kind(manifests, "NetworkPolicy"):
        for rule in policy["spec"].get("ingress", []):
            assert rule.get("from"), policy["metadata"]["name"]
            assert all(peer.get("namespaceSelector") != {} for peer in rule["from"])
        for rule in policy["spec"].get("egress", []):
            assert rule.get("to"), policy["metadata"]["name"]
            assert all(peer.get("namespaceSelector") != {} for peer in rule["to"])


def test_internet_egress_never_reaches_the_cluster(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, ci, manifests = store
    cluster = {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"}
    blocks = [
        peer["ipBlock"]
        for policy in by_kind(manifests, "NetworkPolicy")
        for rule in policy["spec"].get("egress", [])
        for peer in rule["to"]
        if "ipBlock" in peer
    ]

    assert blocks
    for block in blocks:
        assert block["cidr"] == "0.0.0.0/0"
        assert {"169.254.0.0/16"} | cluster <= set(block["except"])


def test_cluster_cidrs_value_reaches_the_policy() -> None:
    manifests = render_chart(
        "medusa",
        [ci_values("medusa", "prod")],
        values={"network": {"clusterCIDRs": ["10.42.0.0/16", "10.43.0.0/16"]}},
    )
    (policy,) = [p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "web-to-internet"]

    assert policy["spec"]["egress"][0]["to"][0]["ipBlock"]["except"] == [
        "169.254.0.0/16",
        "10.42.0.0/16",
        "10.43.0.0/16",
    ]


def test_only_web_and_setup_pods_reach_the_internet(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, _, manifests = store
    with_internet = {
        workload
        for workload, labels in _pod_labels(manifests).items()
        for policy in _policies_for(manifests, labels, "Egress")
        for rule in policy["spec"].get("egress", [])
        if any("ipBlock" in peer for peer in rule["to"])
    }

    assert with_internet == INTERNET[chart]


def test_in_namespace_traffic_is_exactly_what_the_store_needs(
    store: tuple[str, str, list[dict[str, Any]]],
) -> None:
    chart, _, manifests = store
    labels = _pod_labels(manifests)
    ports = {3306, 5432, 6379, 8080, 9000, 80}

    allowed = {
        (src, dst, port)
        for src in labels
        for dst in labels
        for port in ports
        if src != dst and allowed_in_namespace(manifests, labels[src], labels[dst], port)
    }

    assert allowed == NEEDED[chart]


@pytest.mark.parametrize("chart", sorted(WEB))
def test_databases_refuse_pods_without_the_client_label(chart: str) -> None:
    manifests = render_chart(chart, [ci_values(chart, "local")])
    stranger = {"app.kubernetes.io/name": "debug", "app.kubernetes.io/instance": "demo"}

    for workload, port in (("mariadb", 3306), ("postgres", 5432), ("redis", 6379)):
        target = {"app.kubernetes.io/name": workload, "app.kubernetes.io/instance": "demo"}
        assert not allowed_in_namespace(manifests, stranger, target, port)


BACKUP_EGRESS = {"backup": {"egress": {"cidrs": ["10.43.12.7/32", "203.0.113.0/24"], "port": 8333}}}
BACKUP_POD = {"platform.example/db-client": "true", "platform.example/backup-egress": "true"}


@pytest.mark.parametrize("chart", sorted(WEB))
def test_backup_pods_reach_only_the_object_store(chart: str) -> None:
    manifests = render_chart(chart, [ci_values(chart, "prod")], values=BACKUP_EGRESS)
    (policy,) = [
        p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "backup-to-object-store"
    ]
    egress = [
        rule
        for p in _policies_for(manifests, BACKUP_POD, "Egress")
        for rule in p["spec"].get("egress", [])
        if not any(port.get("port") == 53 for port in rule.get("ports", []))
    ]

    for version in ("1.29.0", "1.35.0"):
        kubernetes_validate.validate(policy, version, strict=True)
    assert policy["spec"]["podSelector"] == {"matchLabels": {"platform.example/backup-egress": "true"}}
    assert policy["spec"]["policyTypes"] == ["Egress"]
    # Its database (db-client) and the bucket's addresses on the bucket's port; nothing towards 0.0.0.0/0.
    assert [rule["to"] for rule in egress if any("ipBlock" in peer for peer in rule["to"])] == [
        [{"ipBlock": {"cidr": "10.43.12.7/32"}}, {"ipBlock": {"cidr": "203.0.113.0/24"}}]
    ]
    assert policy["spec"]["egress"][0]["ports"] == [{"protocol": "TCP", "port": 8333}]
    # allow-dns selects every pod, the backup Job's too.
    assert any(p["metadata"]["name"] == "allow-dns" for p in _policies_for(manifests, BACKUP_POD, "Egress"))
    # No workload of the chart carries the label: only the platform's Jobs do.
    assert not any(labels.get("platform.example/backup-egress") for labels in _pod_labels(manifests).values())


@pytest.mark.parametrize("chart", sorted(WEB))
def test_no_backup_policy_without_object_store_addresses(chart: str) -> None:
    manifests = render_chart(chart, [ci_values(chart, "prod")])

    assert "backup-to-object-store" not in {
        p["metadata"]["name"] for p in by_kind(manifests, "NetworkPolicy")
    }
    assert _policies_for(manifests, {"platform.example/backup-egress": "true"}, "Egress") == [
        p
        for p in by_kind(manifests, "NetworkPolicy")
        if p["metadata"]["name"] in {"default-deny-all", "allow-dns"}
    ]


@pytest.mark.parametrize("chart", sorted(WEB))
def test_the_backup_jobs_pod_gets_the_database_dns_and_the_object_store_only(chart: str) -> None:
    # The labels job_manifest really gives the pod, against the chart's real selectors.
    engine = {"woocommerce": ("woocommerce", "mariadb", 3306), "medusa": ("medusa", "postgres", 5432)}
    name, db, port = engine[chart]
    job = ApiClient().sanitize_for_serialization(job_manifest(backup_spec("backup", name)))
    pod = job["spec"]["template"]["metadata"]["labels"]
    manifests = render_chart(chart, [ci_values(chart, "prod")], values=BACKUP_EGRESS)
    selecting = {p["metadata"]["name"] for p in _policies_for(manifests, pod, "Egress")}
    database = {"app.kubernetes.io/name": db, "app.kubernetes.io/instance": "demo"}

    assert "web-to-internet" not in selecting
    assert {"default-deny-all", "allow-dns", "backup-to-object-store"} <= selecting
    assert allowed_in_namespace(manifests, pod, database, port)
