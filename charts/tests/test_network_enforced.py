"""Every fence of a store, tested with packets: a real node where kube-router (the NetworkPolicy
controller k3s embeds) enforces the store charts' and the platform chart's NetworkPolicies, two stores
(WooCommerce and Medusa) installed with the values the platform sends in production, the platform's
PostgreSQL and Redis, and probe pods that try TCP connections and DNS lookups from where each case
needs them (netpol_support.py builds that world; deploy/netpol/README.md describes the engine).

Each fence is tested both ways: every fence has cases that must get through and cases that must not,
and every target a case must not reach is reached by another case (so a refusal is the fence, never an
absent listener). An engine that lets everything through fails the denied cases, one that blocks
everything fails the allowed ones; and `test_with_the_engine_stopped_every_denied_case_gets_through`
proves each denial is the engine's doing. The last results are in docs/reliability.md.

"The ingress controller" is a probe pod with Traefik's labels in kube-system (where the stores' values
say it runs, as in k3s) until the real node runs Traefik itself.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from charts.tests.netpol_support import World, network_world
from charts.tests.rendering import REPO_ROOT

DNS_NAME = "kubernetes.default.svc.cluster.local"
KUBERNETES_SERVICE_IP = "10.96.0.1"
ALLOWED, DENIED = "allowed", "denied"
RESULTS_DIR = REPO_ROOT / "var" / "netpol"

ISOLATION = "stores are isolated from each other"
CLOUD = "stores never reach the metadata address, the Kubernetes API or the nodes"
PLATFORM = "stores never reach the platform"
PLATFORM_DB = "only the platform's own pods reach its database and Redis"
DNS = "in kube-system, stores reach DNS and nothing else"
INGRESS = "only the ingress controller reaches a store's web pods"
EGRESS = "store egress: the internet, on the chart's ports only"
BACKUP = "backup Jobs: their database and the object store, nothing else"


@dataclass(frozen=True)
class Case:
    fence: str
    source: str
    target: str  # a name in World.addresses; "kube-dns" for the DNS checks
    expected: str
    transport: str = "tcp"  # tcp, dns-udp or dns-tcp

    @property
    def id(self) -> str:
        via = "" if self.transport == "tcp" else f" ({self.transport})"
        return f"{self.source} -> {self.target}{via}: {self.expected}"


def _cases() -> tuple[Case, ...]:
    a, d = ALLOWED, DENIED
    rows = [
        (ISOLATION, "a-web", "a.mariadb", a),
        (ISOLATION, "a-web", "b.postgres", d),
        (ISOLATION, "a-web", "b.redis", d),
        (ISOLATION, "a-web", "b-web:9000", d),
        (ISOLATION, "b-web", "b.postgres", a),
        (ISOLATION, "b-web", "b.redis", a),
        (ISOLATION, "b-web", "a.mariadb", d),
        (ISOLATION, "b-web", "a.wordpress", d),
        (ISOLATION, "b-web", "a-web:8080", d),
        (CLOUD, "outsider", "metadata", a),
        (CLOUD, "a-web", "metadata", d),
        (CLOUD, "b-web", "metadata", d),
        (CLOUD, "a-db", "metadata", d),
        (CLOUD, "platform-worker", "kubernetes-service", a),
        (CLOUD, "a-web", "kubernetes-service", d),
        (CLOUD, "b-web", "kubernetes-service", d),
        (CLOUD, "outsider", "apiserver", a),
        (CLOUD, "a-web", "apiserver", d),
        (CLOUD, "outsider", "kubelet", a),
        (CLOUD, "a-web", "kubelet", d),
        (CLOUD, "b-web", "kubelet", d),
        (CLOUD, "outsider", "node:80", a),
        (CLOUD, "a-web", "node:80", d),
        (PLATFORM, "platform-web", "platform.redis", a),
        (PLATFORM, "ingress", "platform-web:8000", a),
        (PLATFORM, "a-web", "platform.postgres", d),
        (PLATFORM, "a-web", "platform.redis", d),
        (PLATFORM, "a-web", "platform-web:8000", d),
        (PLATFORM, "b-web", "platform.postgres", d),
        (PLATFORM, "b-web", "platform.redis", d),
        (PLATFORM, "b-web", "platform-web:8000", d),
        (PLATFORM_DB, "platform-web", "platform.postgres", a),
        (PLATFORM_DB, "platform-worker", "platform.postgres", a),
        (PLATFORM_DB, "platform-worker", "platform.redis", a),
        (PLATFORM_DB, "platform-other", "platform.postgres", d),
        (PLATFORM_DB, "platform-other", "platform.redis", d),
        (PLATFORM_DB, "outsider", "platform.postgres", d),
        (PLATFORM_DB, "ingress", "platform.postgres", d),
        (PLATFORM_DB, "kube-system-other", "platform.redis", d),
        (DNS, "outsider", "coredns.health", a),
        (DNS, "outsider", "coredns.ready", a),
        (DNS, "outsider", "ingress:8000", a),
        (DNS, "a-web", "coredns.health", d),
        (DNS, "a-web", "coredns.ready", d),
        (DNS, "a-web", "ingress:8000", d),
        (DNS, "b-web", "coredns.health", d),
        (DNS, "a-db", "coredns.health", d),
        (INGRESS, "ingress", "a-web:8080", a),
        (INGRESS, "ingress", "a.wordpress", a),
        (INGRESS, "ingress", "b-web:9000", a),
        (INGRESS, "outsider", "a-web:8080", d),
        (INGRESS, "outsider", "a.wordpress", d),
        (INGRESS, "outsider", "b-web:9000", d),
        (INGRESS, "kube-system-other", "a-web:8080", d),
        (INGRESS, "kube-system-other", "b-web:9000", d),
        (INGRESS, "platform-web", "a-web:8080", d),
        (INGRESS, "ingress", "a.mariadb", d),
        (INGRESS, "ingress", "b.postgres", d),
        (EGRESS, "a-web", "internet:443", a),
        (EGRESS, "a-web", "internet:80", a),
        (EGRESS, "b-web", "internet:443", a),
        (EGRESS, "outsider", "internet:8443", a),
        (EGRESS, "a-web", "internet:8443", d),
        (EGRESS, "b-web", "internet:8443", d),
        (EGRESS, "a-db", "internet:443", d),
        # The "internet" host on 443 is the object store here (netpol_support.BACKUP_SETTINGS).
        (BACKUP, "a-backup", "a.mariadb", a),
        (BACKUP, "a-backup", "internet:443", a),
        (BACKUP, "a-backup", "internet:80", d),
        (BACKUP, "a-backup", "b.postgres", d),
        (BACKUP, "a-backup", "metadata", d),
        (BACKUP, "a-backup", "platform.postgres", d),
        (BACKUP, "a-backup", "a-web:8080", d),
    ]
    dns = [
        Case(DNS, source, "kube-dns", ALLOWED, transport)
        for source in ("a-web", "a-db", "b-web", "a-backup")
        for transport in ("dns-udp", "dns-tcp")
    ]
    return (*dns, *(Case(*row) for row in rows))


CASES = _cases()
RESULTS: dict[str, dict[str, object]] = {}
# The same denied cases with the engine stopped (what each fence holds back).
UNFENCED: dict[str, dict[str, object]] = {}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, django_db_setup, django_db_blocker) -> Iterator[World]:
    # django_db_setup: the stores' values are rendered from the test database's default plan.
    with network_world(Path(tmp_path_factory.mktemp("netpol")), django_db_blocker) as built:
        yield built
    _write_results(built.timings)


def _check(world: World, case: Case) -> str:
    address = world.addresses[case.target]
    if case.transport == "tcp":
        return f"tcp:{address}"
    return f"{case.transport}:{address}:{DNS_NAME}"


def _got_through(case: Case, result: dict) -> bool:
    if case.transport == "tcp":
        return result["outcome"] == "connected"
    return result["outcome"] == "answered" and result.get("addresses") == [KUBERNETES_SERVICE_IP]


def _run(world: World, case: Case) -> dict:
    [result] = world.probe(case.source, _check(world, case))
    return result


def test_every_fence_is_tested_both_ways():
    fences: dict[str, set[str]] = defaultdict(set)
    reached = {(c.target, c.transport) for c in CASES if c.expected == ALLOWED}
    for case in CASES:
        fences[case.fence].add(case.expected)
        if case.expected == DENIED:
            # A refusal proves a fence only where something answers: some other case reaches it.
            assert (case.target, case.transport) in reached, f"{case.id}: no case shows {case.target} answers"
    assert {fence: expected for fence, expected in fences.items()} == {
        fence: {ALLOWED, DENIED}
        for fence in (ISOLATION, CLOUD, PLATFORM, PLATFORM_DB, DNS, INGRESS, EGRESS, BACKUP)
    }
    assert len({c.id for c in CASES}) == len(CASES)


# django_db: the world renders the stores' values from the test database's default plan, and
# pytest-django creates that database only for a session holding a test with this mark.
@pytest.mark.netpol
@pytest.mark.django_db
@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_fence(world: World, case: Case):
    result = _run(world, case)
    RESULTS[case.id] = {"fence": case.fence, "expected": case.expected, **result}
    if case.expected == ALLOWED:
        assert _got_through(case, result), f"{case.id}: {result}"
    else:
        # kube-router answers a denied packet with an ICMP port unreachable (REJECT): "refused".
        assert result["outcome"] in {"refused", "timeout", "unreachable"}, f"{case.id}: {result}"


@pytest.mark.netpol
@pytest.mark.django_db
def test_with_the_engine_stopped_every_denied_case_gets_through(world: World):
    denied = [c for c in CASES if c.expected == DENIED]
    world.engine.stop()
    try:
        assert not world.engine.hooked_in(), "kube-router's chains outlived it"
        leaks = {case.id: _run(world, case) for case in denied}
        UNFENCED.update(leaks)
        blocked = {
            case_id: r for case_id, r in leaks.items() if r["outcome"] not in {"connected", "answered"}
        }
        # Nothing but the engine stood in the way of any of them: each target listens and routes.
        assert not blocked, f"blocked with no engine running: {blocked}"
    finally:
        started = time.monotonic()
        world.engine.start(world.cluster)
        world.wait_fenced()
        world.timings["engine restart to fenced"] = time.monotonic() - started
    # Enforcing again: the same packets are refused once more.
    for case in denied:
        assert not _got_through(case, _run(world, case)), case.id


@pytest.mark.netpol
@pytest.mark.django_db
def test_the_world_report(world: World):
    """Not an assertion about policies: the figures of this run (also written to var/netpol/)."""
    assert world.engine.running
    print(f"\nnetpol world: {json.dumps({k: round(v, 1) for k, v in world.timings.items()})}")


def _write_results(timings: dict[str, float]) -> None:
    if not RESULTS:
        return
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    (RESULTS_DIR / "results.json").write_text(
        json.dumps({"cases": RESULTS, "engine stopped": UNFENCED, "timings": timings}, indent=2)
    )
    lines = [
        "| fence | case | expected | result | engine stopped |",
        "| --- | --- | --- | --- | --- |",
    ]
    for case in CASES:
        result = RESULTS.get(case.id)
        if result is None:
            continue
        outcome = str(result["outcome"])
        if case.transport != "tcp" and outcome == "answered":
            outcome = f"answered {', '.join(result.get('addresses') or [])}"
        passed = _got_through(case, result) == (case.expected == ALLOWED)
        unfenced = UNFENCED.get(case.id, {}).get("outcome", "")
        lines.append(
            f"| {case.fence} | {case.source} → {case.target}"
            f"{'' if case.transport == 'tcp' else f' ({case.transport})'} | {case.expected} | "
            f"{outcome}{'' if passed else ' **FAIL**'} | {unfenced} |"
        )
    lines += ["", "| step of the world | seconds |", "| --- | --- |"]
    lines += [f"| {step} | {seconds:.1f} |" for step, seconds in timings.items()]
    (RESULTS_DIR / "results.md").write_text("\n".join(lines) + "\n")
