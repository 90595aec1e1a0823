"""The platform chart (charts/platform): helm accepts it, the objects are valid Kubernetes, the RBAC is
least-privilege and derived from what the store charts render, and the admission policy's CEL admits
only store-* namespaces carrying the managed-by label."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from charts.tests.platform_support import (
    ENFORCE,
    MANAGED_BY,
    NAMESPACE,
    PLATFORM,
    PROD_DOMAIN,
    RELEASE,
    SERVICE_ACCOUNT,
    STORE_NAMESPACE,
    VALUES_FILES,
    WEB_SERVICE_ACCOUNT,
    AdmissionPolicy,
    admission_request,
    docker_context_files,
    env_of,
    extra_values,
    namespace,
    rendered_platform,
    role_binding,
    rule_grants,
    store_chart_resources,
)
from charts.tests.rendering import (
    REPO_ROOT,
    HelmTemplateError,
    by_kind,
    containers,
    find,
    pod_spec,
    render_chart,
    run_helm,
)
from charts.tests.support import HELMS

ENVS = ("local", "prod")
# ValidatingAdmissionPolicy exists as admissionregistration.k8s.io/v1 only from 1.30 (the chart's
# kubeVersion floor); every other kind is also checked against 1.29's schemas.
SCHEMA_VERSIONS = ("1.29.0", "1.30.0", "1.35.0")
V1_ADMISSION_POLICY_KINDS = {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}
MANAGE = {"get", "list", "watch", "create", "update", "patch", "delete"}
READ = {"get", "list", "watch"}
# Read-only, beyond the rendered kinds: helm --wait follows a Deployment through its ReplicaSets and
# Pods, and provisioning/cluster.py namespace_diagnostics reads Pods and Events of a failed store.
STORE_DEPLOYER_READ_ONLY = {("", "pods"), ("", "events"), ("apps", "replicasets")}
# Managed, though no store chart renders them any more: upgrading a store made by an earlier chart
# version, helm deletes what the new one dropped (WooCommerce's wp-cron CronJob became a sidecar).
STORE_DEPLOYER_LEGACY = {("batch", "cronjobs")}
FORBIDDEN_VERBS = {"*", "escalate", "impersonate"}


@pytest.fixture(params=ENVS)
def env(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def manifests(env: str) -> list[dict[str, Any]]:
    return rendered_platform(env)


def _lint(env: str, helm: Path) -> subprocess.CompletedProcess[str]:
    with tempfile.TemporaryDirectory() as tmp:
        argv = ["lint", "--strict", str(PLATFORM), "-f", str(VALUES_FILES[env])]
        if extra_values(env):
            extra = Path(tmp) / "domain.yaml"
            extra.write_text(yaml.safe_dump(extra_values(env)))
            argv += ["-f", str(extra)]
        return run_helm(argv, helm=str(helm))


# ---------------------------------------------------------------------------------------------------
# helm and the Kubernetes schemas
# ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("helm", sorted(HELMS))
def test_lint_strict_passes_with_both_values_files(env: str, helm: str) -> None:
    result = _lint(env, HELMS[helm])

    assert result.returncode == 0, result.stdout + result.stderr
    assert "[WARNING]" not in result.stdout
    assert "[ERROR]" not in result.stdout


def _without_random_secrets(manifests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    for obj in manifests:
        if obj["kind"] == "Secret":
            obj["data"] = dict.fromkeys(obj["data"], "generated")
    return manifests


def test_helm3_and_helm4_render_the_same_objects(env: str) -> None:
    helm3 = _without_random_secrets(rendered_platform(env, str(HELMS["helm3"])))
    helm4 = _without_random_secrets(rendered_platform(env, str(HELMS["helm4"])))

    assert helm3 == helm4


@pytest.mark.parametrize("version", SCHEMA_VERSIONS)
def test_objects_validate_strictly(manifests: list[dict[str, Any]], version: str) -> None:
    checked = 0
    for obj in manifests:
        if version == "1.29.0" and obj["kind"] in V1_ADMISSION_POLICY_KINDS:
            with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                kubernetes_validate.validate(obj, version, strict=True)
            continue
        kubernetes_validate.validate(obj, version, strict=True)
        checked += 1

    skipped = len(V1_ADMISSION_POLICY_KINDS) if version == "1.29.0" else 0
    assert checked == len(manifests) - skipped > 15


def test_chart_requires_the_kubernetes_that_has_admission_policy_v1() -> None:
    chart = yaml.safe_load((PLATFORM / "Chart.yaml").read_text())

    assert chart["kubeVersion"] == ">=1.30.0-0"


def test_expected_objects_are_rendered(manifests: list[dict[str, Any]]) -> None:
    names = {(m["kind"], m["metadata"]["name"]) for m in manifests}

    assert {
        ("Deployment", "platform-web"),
        ("Deployment", "platform-worker"),
        ("Deployment", "platform-beat"),
        ("Deployment", "platform-watcher"),
        ("Job", "platform-migrate"),
        ("StatefulSet", "platform-postgres"),
        ("StatefulSet", "platform-redis"),
        ("Service", "platform-web"),
        ("Service", "platform-postgres"),
        ("Service", "platform-redis"),
        ("Ingress", "platform-web"),
        ("Secret", "platform-secrets"),
        ("ServiceAccount", SERVICE_ACCOUNT),
        ("ServiceAccount", WEB_SERVICE_ACCOUNT),
        ("ClusterRole", "platform-orchestrator"),
        ("ClusterRole", "store-deployer"),
        ("ClusterRole", "store-credentials-reader"),
        ("ClusterRoleBinding", "platform-orchestrator"),
        ("ValidatingAdmissionPolicy", "platform-store-namespaces-only"),
        ("ValidatingAdmissionPolicyBinding", "platform-store-namespaces-only"),
    } <= names


# ---------------------------------------------------------------------------------------------------
# The domain placeholder of values-prod.yaml
# ---------------------------------------------------------------------------------------------------
def test_prod_values_alone_fail_with_a_clear_message() -> None:
    with pytest.raises(HelmTemplateError) as failure:
        render_chart(str(PLATFORM), [VALUES_FILES["prod"]], namespace=NAMESPACE, release="platform")

    assert 'domain is "<ip>.nip.io"' in failure.value.stderr
    assert "--set domain=203.0.113.10.nip.io" in failure.value.stderr


def test_chart_defaults_without_a_domain_fail() -> None:
    with pytest.raises(HelmTemplateError) as failure:
        render_chart(str(PLATFORM), namespace=NAMESPACE, release="platform")

    assert 'domain is ""' in failure.value.stderr


def test_prod_values_with_a_domain_publish_it(manifests: list[dict[str, Any]], env: str) -> None:
    ingress = find(manifests, "Ingress", "platform-web")
    domain = PROD_DOMAIN["domain"] if env == "prod" else "127.0.0.1.nip.io"

    assert ingress["spec"]["rules"][0]["host"] == f"dashboard.{domain}"
    assert ingress["spec"]["ingressClassName"] == ("traefik" if env == "prod" else "nginx")
    assert ("tls" in ingress["spec"]) == (env == "prod")


# ---------------------------------------------------------------------------------------------------
# RBAC
# ---------------------------------------------------------------------------------------------------
def test_no_role_grants_a_wildcard_escalate_impersonate_or_persistent_volumes(
    manifests: list[dict[str, Any]],
) -> None:
    for role in by_kind(manifests, "ClusterRole") + by_kind(manifests, "Role"):
        for rule in role["rules"]:
            assert not FORBIDDEN_VERBS & set(rule["verbs"]), role["metadata"]["name"]
            assert "*" not in rule.get("resources", []) and "*" not in rule.get("apiGroups", [])
            assert "persistentvolumes" not in rule.get("resources", [])
            assert "nonResourceURLs" not in rule


def test_orchestrator_cluster_role_grants_exactly_the_listed_verbs(manifests: list[dict[str, Any]]) -> None:
    role = find(manifests, "ClusterRole", "platform-orchestrator")

    assert rule_grants(role["rules"]) == {
        ("", "namespaces"): {"create", "get", "list", "watch", "patch", "delete"},
        ("", "nodes"): {"get", "list", "watch"},
        ("rbac.authorization.k8s.io", "clusterroles"): {"bind"},
        ("rbac.authorization.k8s.io", "rolebindings"): {"create", "get", "delete"},
    }
    bind = next(r for r in role["rules"] if r["verbs"] == ["bind"])
    assert bind["resourceNames"] == ["store-deployer", "store-credentials-reader"]
    rolebinding_reads = next(r for r in role["rules"] if set(r["verbs"]) == {"get", "delete"})
    assert rolebinding_reads["resourceNames"] == ["store-deployer", "store-credentials-reader"]


def test_the_web_pods_role_reads_the_credentials_secret_and_the_store_activity_only(
    manifests: list[dict[str, Any]],
) -> None:
    role = find(manifests, "ClusterRole", "store-credentials-reader")

    assert role["rules"] == [
        {
            "apiGroups": [""],
            "resources": ["secrets"],
            "verbs": ["get"],
            "resourceNames": ["store-credentials"],
        },
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list"]},
        {"apiGroups": [""], "resources": ["pods/log"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["events"], "verbs": ["list"]},
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"], "verbs": ["get", "list"]},
    ]


def test_store_deployer_covers_exactly_what_the_store_charts_render(manifests: list[dict[str, Any]]) -> None:
    role = find(manifests, "ClusterRole", "store-deployer")
    grants = rule_grants(role["rules"])
    managed = {resource for resource, verbs in grants.items() if verbs == MANAGE}
    read_only = {resource for resource, verbs in grants.items() if verbs == READ}
    rendered = store_chart_resources()

    assert managed == rendered | STORE_DEPLOYER_LEGACY
    assert not rendered & STORE_DEPLOYER_LEGACY
    assert read_only == STORE_DEPLOYER_READ_ONLY
    assert set(grants) == managed | read_only  # nothing with another verb set
    assert {("apps", "deployments"), ("batch", "jobs"), ("", "secrets")} <= rendered


def test_certificates_are_granted_in_store_namespaces_only(manifests: list[dict[str, Any]]) -> None:
    deployer = rule_grants(find(manifests, "ClusterRole", "store-deployer")["rules"])
    orchestrator = rule_grants(find(manifests, "ClusterRole", "platform-orchestrator")["rules"])

    assert deployer[("cert-manager.io", "certificates")] == MANAGE
    assert not any(group == "cert-manager.io" for group, _ in orchestrator)
    # Issuers stay the cluster operator's: a store account can neither make nor change one.
    assert not any(resource in {"issuers", "clusterissuers"} for _, resource in deployer)


def test_custom_domains_are_signed_by_the_issuer_each_environment_names(
    manifests: list[dict[str, Any]], env: str
) -> None:
    expected = {"local": "store-platform-local-ca", "prod": "letsencrypt-prod"}[env]
    for name in ("platform-web", "platform-worker", "platform-beat"):
        container = pod_spec(find(manifests, "Deployment", name))["containers"][0]
        assert env_of(container)["DOMAIN_CLUSTER_ISSUER"] == expected


def test_http01_solver_access_is_on_only_where_the_issuer_is_lets_encrypt(
    manifests: list[dict[str, Any]], env: str
) -> None:
    expected = {"local": "false", "prod": "true"}[env]
    for name in ("platform-web", "platform-worker", "platform-beat"):
        container = pod_spec(find(manifests, "Deployment", name))["containers"][0]
        assert env_of(container)["DOMAIN_ACME_HTTP01"] == expected


def test_the_store_charts_solver_policy_needs_no_new_grant(manifests: list[dict[str, Any]]) -> None:
    # The worker renders the solver NetworkPolicy with the store release; cert-manager's own account
    # creates the solver pods, Services and Ingresses, so store-deployer grants nothing for them.
    deployer = rule_grants(find(manifests, "ClusterRole", "store-deployer")["rules"])
    assert deployer[("networking.k8s.io", "networkpolicies")] == MANAGE
    assert not any(group == "acme.cert-manager.io" for group, _ in deployer)
    assert deployer[("", "pods")] == READ


def test_only_the_orchestrator_role_is_bound_cluster_wide(manifests: list[dict[str, Any]]) -> None:
    bindings = by_kind(manifests, "ClusterRoleBinding")

    assert [b["roleRef"]["name"] for b in bindings] == ["platform-orchestrator"]
    assert bindings[0]["subjects"] == [
        {"kind": "ServiceAccount", "name": SERVICE_ACCOUNT, "namespace": NAMESPACE}
    ]
    assert not by_kind(manifests, "RoleBinding")
    for binding in bindings:
        assert binding["roleRef"]["name"] not in {
            "cluster-admin",
            "admin",
            "edit",
            "store-deployer",
            "store-credentials-reader",
        }


def test_secrets_are_never_granted_cluster_wide(manifests: list[dict[str, Any]]) -> None:
    bound = {b["roleRef"]["name"] for b in by_kind(manifests, "ClusterRoleBinding")}
    for role in by_kind(manifests, "ClusterRole"):
        if role["metadata"]["name"] in bound:
            assert not any(resource == "secrets" for _, resource in rule_grants(role["rules"]))


def test_web_and_worker_tell_the_orchestrator_which_service_account_and_role_to_bind(
    manifests: list[dict[str, Any]],
) -> None:
    # Only the worker holds the deployer powers; the internet-facing web pods have their own account.
    for name, account in (("platform-web", WEB_SERVICE_ACCOUNT), ("platform-worker", SERVICE_ACCOUNT)):
        spec = pod_spec(find(manifests, "Deployment", name))
        env = env_of(spec["containers"][0])

        assert spec["serviceAccountName"] == account
        assert spec["automountServiceAccountToken"] is True
        assert env["PLATFORM_SERVICE_ACCOUNT"] == f"{NAMESPACE}/{SERVICE_ACCOUNT}"
        assert env["STORE_DEPLOYER_CLUSTER_ROLE"] == "store-deployer"
        assert env["PLATFORM_WEB_SERVICE_ACCOUNT"] == f"{NAMESPACE}/{WEB_SERVICE_ACCOUNT}"
        assert env["STORE_CREDENTIALS_READER_CLUSTER_ROLE"] == "store-credentials-reader"
        assert env["STORE_POD_SECURITY_LEVEL"] == "restricted"
        assert env["KUBECONFIG"] == ""
    for kind, name in (("Deployment", "platform-beat"), ("Job", "platform-migrate")):
        assert pod_spec(find(manifests, kind, name))["automountServiceAccountToken"] is False


# ---------------------------------------------------------------------------------------------------
# The admission policy, evaluated with a CEL implementation (common-expression-language)
# ---------------------------------------------------------------------------------------------------
@pytest.fixture
def policy(manifests: list[dict[str, Any]]) -> AdmissionPolicy:
    return AdmissionPolicy(find(manifests, "ValidatingAdmissionPolicy", "platform-store-namespaces-only"))


def test_policy_is_bound_to_deny(manifests: list[dict[str, Any]]) -> None:
    binding = find(manifests, "ValidatingAdmissionPolicyBinding", "platform-store-namespaces-only")

    assert binding["spec"] == {"policyName": "platform-store-namespaces-only", "validationActions": ["Deny"]}
    assert find(manifests, "ValidatingAdmissionPolicy", binding["spec"]["policyName"])["spec"][
        "failurePolicy"
    ] == ("Fail")


def test_policy_applies_to_the_platform_service_account_only(policy: AdmissionPolicy) -> None:
    assert policy.matches(admission_request("CREATE", "namespaces"))
    assert policy.matches(admission_request("DELETE", "namespaces"))
    assert policy.matches(admission_request("CREATE", "rolebindings", namespace="store-abc"))
    assert not policy.matches(admission_request("CREATE", "namespaces", username="kubernetes-admin"))
    assert not policy.matches(
        admission_request("CREATE", "namespaces", username="system:serviceaccount:other:platform")
    )


@pytest.mark.parametrize("level", ["restricted", "baseline"])
def test_policy_admits_a_labelled_store_namespace(policy: AdmissionPolicy, level: str) -> None:
    store = namespace("store-abc", {**MANAGED_BY, ENFORCE: level, "platform.example/store": "abc"})

    assert policy.denials(admission_request("CREATE", "namespaces"), store, None) == []
    assert policy.denials(admission_request("DELETE", "namespaces"), None, store) == []
    assert policy.denials(admission_request("UPDATE", "namespaces"), store, store) == []


ENFORCE_DENIAL = (
    "a store namespace must carry pod-security.kubernetes.io/enforce=baseline or restricted "
    "(it may not be removed or lowered)"
)


@pytest.mark.parametrize(
    "labels",
    [MANAGED_BY, {**MANAGED_BY, ENFORCE: "privileged"}, {**MANAGED_BY, ENFORCE: "Restricted"}],
    ids=["without-enforce", "privileged", "wrong-case"],
)
def test_policy_rejects_a_store_namespace_without_pod_security_enforcement(
    policy: AdmissionPolicy, labels: dict[str, str]
) -> None:
    created = namespace("store-evil", labels)

    assert policy.denials(admission_request("CREATE", "namespaces"), created, None) == [ENFORCE_DENIAL]


@pytest.mark.parametrize(
    "after", [MANAGED_BY, {**MANAGED_BY, ENFORCE: "privileged"}], ids=["removed", "lowered"]
)
def test_policy_rejects_removing_or_lowering_enforcement_on_update(
    policy: AdmissionPolicy, after: dict[str, str]
) -> None:
    before = namespace("store-abc", STORE_NAMESPACE)

    denials = policy.denials(admission_request("UPDATE", "namespaces"), namespace("store-abc", after), before)

    assert denials == [ENFORCE_DENIAL]


@pytest.mark.parametrize(
    "target",
    [
        namespace("kube-system", STORE_NAMESPACE),
        namespace("default2", STORE_NAMESPACE),
        namespace("store-abc", {ENFORCE: "restricted"}),
        namespace("store-abc", {"app.kubernetes.io/managed-by": "Helm", ENFORCE: "restricted"}),
        namespace("stores-abc", STORE_NAMESPACE),
    ],
    ids=["kube-system", "default2", "store-unlabelled", "store-other-manager", "stores-prefix"],
)
@pytest.mark.parametrize("operation", ["CREATE", "DELETE"])
def test_policy_rejects_other_namespaces(
    policy: AdmissionPolicy, target: dict[str, Any], operation: str
) -> None:
    obj, old = (target, None) if operation == "CREATE" else (None, target)

    denials = policy.denials(admission_request(operation, "namespaces"), obj, old)

    assert denials == [
        "the platform may only create, change or delete namespaces named store-* that carry "
        "app.kubernetes.io/managed-by=store-platform"
    ]


def test_policy_rejects_adopting_a_store_namespace_someone_else_made(policy: AdmissionPolicy) -> None:
    before = namespace("store-abc", {"team": "x"})
    after = namespace("store-abc", STORE_NAMESPACE)

    denials = policy.denials(admission_request("UPDATE", "namespaces"), after, before)

    assert denials == ["the platform may not adopt a namespace it did not create"]


@pytest.mark.parametrize(
    ("role", "subject"),
    [
        ("store-deployer", (NAMESPACE, SERVICE_ACCOUNT)),
        ("store-credentials-reader", (NAMESPACE, WEB_SERVICE_ACCOUNT)),
    ],
    ids=["deployer-to-worker", "credentials-reader-to-web"],
)
def test_policy_admits_the_two_bindings_in_a_store_namespace(
    policy: AdmissionPolicy, role: str, subject: tuple[str, str]
) -> None:
    binding = role_binding("store-abc", role=role, subject=subject)

    assert (
        policy.denials(admission_request("CREATE", "rolebindings", namespace="store-abc"), binding, None)
        == []
    )
    assert (
        policy.denials(admission_request("DELETE", "rolebindings", namespace="store-abc"), None, binding)
        == []
    )


BINDING_DENIAL = (
    "the platform may only bind store-deployer to its own ServiceAccount and "
    "store-credentials-reader to its web pods' ServiceAccount"
)


@pytest.mark.parametrize(
    ("where", "binding", "message"),
    [
        (
            "kube-system",
            role_binding("kube-system"),
            "the platform may only manage RoleBindings in store-* namespaces",
        ),
        (
            "default2",
            role_binding("default2"),
            "the platform may only manage RoleBindings in store-* namespaces",
        ),
        (
            "store-abc",
            role_binding("store-abc", role="cluster-admin"),
            BINDING_DENIAL,
        ),
        (
            "store-abc",
            role_binding("store-abc", subject=("store-abc", "default")),
            BINDING_DENIAL,
        ),
        (
            "store-abc",
            role_binding("store-abc", subject=(NAMESPACE, WEB_SERVICE_ACCOUNT)),
            BINDING_DENIAL,
        ),
        (
            "store-abc",
            role_binding("store-abc", role="store-credentials-reader"),
            BINDING_DENIAL,
        ),
    ],
    ids=[
        "kube-system",
        "default2",
        "cluster-admin-role",
        "foreign-subject",
        "deployer-to-web",
        "reader-to-worker",
    ],
)
def test_policy_rejects_other_role_bindings(
    policy: AdmissionPolicy, where: str, binding: dict[str, Any], message: str
) -> None:
    denials = policy.denials(admission_request("CREATE", "rolebindings", namespace=where), binding, None)

    assert denials == [message]


@pytest.mark.django_db
def test_policy_admits_what_provisioning_puts_on_store_namespaces(
    policy: AdmissionPolicy, manifests: list[dict[str, Any]], settings
) -> None:
    from stores.release import store_namespace_labels, store_role_bindings
    from stores.tests.factories import StoreFactory

    labels = store_namespace_labels(StoreFactory(name="x"))
    assert policy.denials(admission_request("CREATE", "namespaces"), namespace("store-x", labels), None) == []
    # The bindings the worker makes, with the chart's own environment, are the ones the policy admits.
    env = env_of(pod_spec(find(manifests, "Deployment", "platform-worker"))["containers"][0])
    settings.PLATFORM_SERVICE_ACCOUNT = env["PLATFORM_SERVICE_ACCOUNT"]
    settings.PLATFORM_WEB_SERVICE_ACCOUNT = env["PLATFORM_WEB_SERVICE_ACCOUNT"]
    for spec in store_role_bindings():
        binding = role_binding(
            "store-x", role=spec.cluster_role, subject=(spec.service_account_namespace, spec.service_account)
        )
        binding["metadata"]["name"] = spec.name
        request = admission_request("CREATE", "rolebindings", namespace="store-x")
        assert policy.denials(request, binding, None) == [], spec.name


# ---------------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------------
def test_migrations_run_as_a_post_install_and_pre_upgrade_hook(manifests: list[dict[str, Any]]) -> None:
    job = find(manifests, "Job", "platform-migrate")
    annotations = job["metadata"]["annotations"]
    script = pod_spec(job)["containers"][0]["command"][-1]

    assert annotations["helm.sh/hook"] == "post-install,pre-upgrade"
    assert "before-hook-creation" in annotations["helm.sh/hook-delete-policy"]
    assert script.rstrip().endswith("exec python manage.py migrate --noinput")


def test_beat_is_one_replica_recreated(manifests: list[dict[str, Any]]) -> None:
    beat = find(manifests, "Deployment", "platform-beat")

    assert beat["spec"]["replicas"] == 1
    assert beat["spec"]["strategy"] == {"type": "Recreate"}
    assert pod_spec(beat)["containers"][0]["command"] == [
        "celery",
        "-A",
        "platform_site",
        "beat",
        "--loglevel",
        "INFO",
        "--schedule",
        "/tmp/celerybeat-schedule",
    ]


def test_the_fleet_watcher_is_one_recreated_process_with_the_workers_account(
    manifests: list[dict[str, Any]],
) -> None:
    watcher = find(manifests, "Deployment", "platform-watcher")
    spec = pod_spec(watcher)

    assert watcher["spec"]["replicas"] == 1
    assert watcher["spec"]["strategy"] == {"type": "Recreate"}
    assert spec["containers"][0]["command"] == ["python", "manage.py", "watch_clusters"]
    # It reads what the worker's RBAC allows, so it needs the worker's token, not the web's.
    assert spec["serviceAccountName"] == SERVICE_ACCOUNT
    assert spec["automountServiceAccountToken"] is True
    # It writes observations to the platform's database: its pods are let in there.
    [policy] = [
        p for p in by_kind(manifests, "NetworkPolicy") if p["metadata"]["name"] == "platform-postgres"
    ]
    [peer] = policy["spec"]["ingress"][0]["from"]
    [expression] = peer["podSelector"]["matchExpressions"]
    assert "watcher" in expression["values"]


def test_worker_concurrency_comes_from_values(manifests: list[dict[str, Any]], env: str) -> None:
    values = yaml.safe_load(VALUES_FILES[env].read_text())
    command = pod_spec(find(manifests, "Deployment", "platform-worker"))["containers"][0]["command"]

    assert command == [
        "celery",
        "-A",
        "platform_site",
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(values["worker"]["concurrency"]),
    ]


def test_web_runs_gunicorn_with_health_probes(manifests: list[dict[str, Any]]) -> None:
    container = pod_spec(find(manifests, "Deployment", "platform-web"))["containers"][0]
    host = find(manifests, "Ingress", "platform-web")["spec"]["rules"][0]["host"]

    assert container["command"][:2] == ["gunicorn", "platform_site.wsgi"]
    # Warmed once in the master and forked: the first request on each worker is as fast as the rest.
    assert "--preload" in container["command"]
    assert "--config=python:platform_site.gunicorn_config" in container["command"]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["httpHeaders"] == [{"name": "Host", "value": host}]


def test_every_container_is_non_root_with_resources(manifests: list[dict[str, Any]]) -> None:
    pods = [(m["metadata"]["name"], pod_spec(m)) for m in manifests if pod_spec(m) is not None]
    assert len(pods) == 7
    for name, spec in pods:
        assert spec["securityContext"]["runAsNonRoot"] is True, name
        assert spec["securityContext"]["runAsUser"] > 0, name
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        for container in containers(spec):
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False, name
            assert context["readOnlyRootFilesystem"] is True, name
            assert context["capabilities"] == {"drop": ["ALL"]}, name
            assert {"cpu", "memory"} <= set(container["resources"]["requests"]), name
            assert {"cpu", "memory"} <= set(container["resources"]["limits"]), name


def test_cpu_requests_follow_the_environment(manifests: list[dict[str, Any]], env: str) -> None:
    expected = "500m" if env == "prod" else "100m"
    app = ("platform-web", "platform-worker", "platform-beat", "platform-watcher")

    for name in app:
        spec = pod_spec(find(manifests, "Deployment", name))
        assert spec["containers"][0]["resources"]["requests"]["cpu"] == expected, name


def test_storage_class_follows_the_environment(manifests: list[dict[str, Any]], env: str) -> None:
    expected = "local-path" if env == "prod" else "hostpath"

    for statefulset in by_kind(manifests, "StatefulSet"):
        claim = statefulset["spec"]["volumeClaimTemplates"][0]
        assert claim["spec"]["storageClassName"] == expected
    web_env = env_of(pod_spec(find(manifests, "Deployment", "platform-web"))["containers"][0])
    assert web_env["STORE_STORAGE_CLASS"] == expected


def test_image_uid_matches_the_dockerfile(manifests: list[dict[str, Any]]) -> None:
    dockerfile = (REPO_ROOT / "deploy" / "Dockerfile").read_text()
    uid = pod_spec(find(manifests, "Deployment", "platform-web"))["securityContext"]["runAsUser"]

    assert re.search(rf"^USER {uid}:{uid}$", dockerfile, re.MULTILINE)


# ---------------------------------------------------------------------------------------------------
# Secrets and the environment the app reads
# ---------------------------------------------------------------------------------------------------
def test_secrets_are_generated_once_and_kept() -> None:
    template = (PLATFORM / "templates" / "secrets.yaml").read_text()

    assert 'lookup "v1" "Secret" .Release.Namespace $name' in template
    assert 'get $data "secret-key" | default (randAlphaNum 64 | b64enc)' in template
    assert 'get $data "database-password" | default (randAlphaNum 32 | b64enc)' in template


def test_secret_is_rendered_with_both_keys_and_kept_on_uninstall(manifests: list[dict[str, Any]]) -> None:
    secret = find(manifests, "Secret", "platform-secrets")

    assert set(secret["data"]) == {"secret-key", "database-password"}
    assert secret["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"


def _keys(tree: Any) -> set[str]:
    if isinstance(tree, dict):
        return {str(k).lower() for k in tree} | {k for v in tree.values() for k in _keys(v)}
    if isinstance(tree, list):
        return {k for v in tree for k in _keys(v)}
    return set()


def test_values_files_hold_no_secrets() -> None:
    for path in [PLATFORM / "values.yaml", *VALUES_FILES.values()]:
        keys = _keys(yaml.safe_load(path.read_text()))
        assert not {k for k in keys if "password" in k or "secretkey" in k or "secret_key" in k}, path


def _resolved_environment(container: dict[str, Any]) -> dict[str, str]:
    """The container's environment as the kubelet would build it, with dummy secret values."""
    resolved: dict[str, str] = {}
    for item in container["env"]:
        if "valueFrom" in item:
            key = item["valueFrom"]["secretKeyRef"]["key"]
            resolved[item["name"]] = f"dummy{key.replace('-', '')}"
        else:
            resolved[item["name"]] = re.sub(r"\$\((\w+)\)", lambda m: resolved[m.group(1)], item["value"])
    return resolved


def test_django_settings_load_from_the_rendered_environment(
    manifests: list[dict[str, Any]], env: str
) -> None:
    container = pod_spec(find(manifests, "Deployment", "platform-web"))["containers"][0]
    environment = {
        **_resolved_environment(container),
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
        "PYTHONPATH": str(REPO_ROOT),
    }
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps({"
        "'debug': s.DEBUG, 'hosts': s.ALLOWED_HOSTS, 'csrf': s.CSRF_TRUSTED_ORIGINS, 'db': s.DATABASES['default']['HOST'],"
        "'db_password': s.DATABASES['default']['PASSWORD'], 'broker': s.CELERY_BROKER_URL, 'cache': s.CACHES['default']['BACKEND'],"
        "'domain': s.STORE_BASE_DOMAIN, 'labels': s.STORE_INGRESS_CONTROLLER_POD_LABELS, 'cidrs': s.STORE_CLUSTER_CIDRS,"
        "'charts': str(s.STORE_CHARTS_DIR), 'sa': s.PLATFORM_SERVICE_ACCOUNT, 'kubeconfig': s.KUBECONFIG, 'ssl': s.SECURE_SSL_REDIRECT}))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    domain = PROD_DOMAIN["domain"] if env == "prod" else "127.0.0.1.nip.io"
    scheme = "https" if env == "prod" else "http"

    assert loaded["debug"] is False
    assert loaded["hosts"] == [f"dashboard.{domain}"]
    assert loaded["csrf"] == [f"{scheme}://dashboard.{domain}"]
    assert loaded["db"] == "platform-postgres"
    assert loaded["db_password"] == "dummydatabasepassword"
    assert loaded["broker"] == "redis://platform-redis:6379/0"
    assert loaded["cache"] == "django.core.cache.backends.redis.RedisCache"
    assert loaded["domain"] == domain
    assert loaded["labels"] == {"app.kubernetes.io/name": "traefik" if env == "prod" else "ingress-nginx"}
    assert loaded["cidrs"] == ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]
    assert loaded["charts"] == "/app/charts"
    assert loaded["sa"] == "platform/platform"
    assert loaded["kubeconfig"] == ""
    assert loaded["ssl"] is (env == "prod")


# ---------------------------------------------------------------------------------------------------
# Store backups (issue 20): off by default, the bucket's keys only from a Secret
# ---------------------------------------------------------------------------------------------------
BACKUPS = {
    "backups": {
        "s3": {
            "endpoint": "https://s3.eu-central-1.amazonaws.com",
            "bucket": "store-backups",
            "region": "eu-central-1",
            "existingSecret": "backup-s3",
            "egressCIDRs": ["203.0.113.0/24", "198.51.100.0/24"],
            "egressPort": 443,
        },
        "finalGraceDays": 14,
        "manualRetentionDays": 60,
    }
}
APP_DEPLOYMENTS = ("platform-web", "platform-worker", "platform-beat", "platform-watcher")


def _render_local(values: dict[str, Any]) -> list[dict[str, Any]]:
    return render_chart(str(PLATFORM), [VALUES_FILES["local"]], values, namespace=NAMESPACE, release=RELEASE)


def _app_envs(manifests: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    envs = {
        name: env_of(pod_spec(find(manifests, "Deployment", name))["containers"][0])
        for name in APP_DEPLOYMENTS
    }
    [migrate] = by_kind(manifests, "Job")
    envs["migrate"] = env_of(pod_spec(migrate)["containers"][0])
    return envs


def test_backups_are_off_by_default(manifests: list[dict[str, Any]]) -> None:
    for name, environment in _app_envs(manifests).items():
        assert not {key for key in environment if key.startswith("BACKUP_S3_")}, name
        assert environment["BACKUP_FINAL_GRACE_DAYS"] == "30"
        assert environment["BACKUP_MANUAL_RETENTION_DAYS"] == "30"


def test_backups_configured_reach_every_app_pod_with_the_keys_from_the_secret() -> None:
    manifests = _render_local(BACKUPS)

    for name, environment in _app_envs(manifests).items():
        assert environment["BACKUP_S3_ENDPOINT"] == "https://s3.eu-central-1.amazonaws.com", name
        assert environment["BACKUP_S3_BUCKET"] == "store-backups"
        assert environment["BACKUP_S3_REGION"] == "eu-central-1"
        assert environment["BACKUP_S3_ACCESS_KEY"] == {
            "secretKeyRef": {"name": "backup-s3", "key": "access-key"}
        }
        assert environment["BACKUP_S3_SECRET_KEY"] == {
            "secretKeyRef": {"name": "backup-s3", "key": "secret-key"}
        }
        assert environment["BACKUP_S3_EGRESS"] == "203.0.113.0/24,198.51.100.0/24"
        assert environment["BACKUP_S3_EGRESS_PORT"] == "443"
        assert environment["BACKUP_FINAL_GRACE_DAYS"] == "14"
        assert environment["BACKUP_MANUAL_RETENTION_DAYS"] == "60"


def test_backup_settings_load_from_the_rendered_environment() -> None:
    values = {"backups": {**BACKUPS["backups"], "s3": {**BACKUPS["backups"]["s3"], "egressPort": None}}}
    container = pod_spec(find(_render_local(values), "Deployment", "platform-worker"))["containers"][0]
    environment = {
        **_resolved_environment(container),
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
        "PYTHONPATH": str(REPO_ROOT),
    }
    probe = (
        "import json, django; django.setup(); from django.conf import settings as s; print(json.dumps(["
        "s.BACKUP_S3_ENDPOINT, s.BACKUP_S3_BUCKET, s.BACKUP_S3_SECRET_KEY, s.BACKUP_S3_EGRESS, "
        "s.BACKUP_S3_EGRESS_PORT, s.BACKUP_FINAL_GRACE_DAYS]))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1]) == [
        "https://s3.eu-central-1.amazonaws.com",
        "store-backups",
        "dummysecretkey",
        ["203.0.113.0/24", "198.51.100.0/24"],
        0,  # null: the endpoint's port (stores/release.py)
        14,
    ]


def test_a_backup_endpoint_without_its_secret_or_bucket_does_not_install() -> None:
    s3 = BACKUPS["backups"]["s3"]
    with pytest.raises(HelmTemplateError) as no_secret:
        _render_local({"backups": {"s3": {**s3, "existingSecret": ""}}})
    assert "backups.s3.existingSecret is required with backups.s3.endpoint" in no_secret.value.stderr
    assert "access-key and secret-key" in no_secret.value.stderr
    with pytest.raises(HelmTemplateError) as no_bucket:
        _render_local({"backups": {"s3": {**s3, "bucket": " "}}})
    assert "backups.s3.bucket is required with backups.s3.endpoint" in no_bucket.value.stderr


@pytest.mark.parametrize(
    ("s3", "field"),
    [
        pytest.param({"endpoint": "s3.example.com"}, "endpoint", id="endpoint-without-scheme"),
        pytest.param({"egressCIDRs": ["10.0.0.300/32"]}, "egressCIDRs", id="cidr-octet"),
        pytest.param({"egressCIDRs": ["s3.example.com"]}, "egressCIDRs", id="cidr-host"),
        pytest.param({"egressPort": 0}, "egressPort", id="port-zero"),
        pytest.param({"egressPort": 70000}, "egressPort", id="port-high"),
        pytest.param({"accessKey": "AKIA"}, "accessKey", id="no-keys-in-values"),
    ],
)
@pytest.mark.parametrize("helm", sorted(HELMS))
def test_wrong_backup_values_fail_with_a_schema_message(s3: dict[str, Any], field: str, helm: str) -> None:
    values = {"backups": {"s3": {**BACKUPS["backups"]["s3"], **s3}}}
    with pytest.raises(HelmTemplateError) as error:
        render_chart(
            str(PLATFORM),
            [VALUES_FILES["local"]],
            values,
            namespace=NAMESPACE,
            release=RELEASE,
            helm=str(HELMS[helm]),
        )

    assert "schema" in error.value.stderr
    assert field in error.value.stderr


# ---------------------------------------------------------------------------------------------------
# The image (no Docker engine here: hadolint, the build context and the build's own commands)
# ---------------------------------------------------------------------------------------------------
DOCKERFILE = REPO_ROOT / "deploy" / "Dockerfile"


def test_dockerfile_passes_hadolint() -> None:
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")

    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, timeout=60, check=False
    )

    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_pins_the_tested_helm_with_its_checksum() -> None:
    dockerfile = DOCKERFILE.read_text()
    installer = (REPO_ROOT / "deploy" / "tools" / "install-helm.sh").read_text()
    tested_sha = re.search(r'^HELM3_SHA256="([0-9a-f]{64})"\s+# helm 3\.18\.0$', installer, re.MULTILINE)

    assert tested_sha
    assert "ARG HELM_VERSION=v3.18.0\n" in dockerfile
    assert f"ARG HELM_SHA256={tested_sha.group(1)}\n" in dockerfile
    assert 'echo "${HELM_SHA256}  linux-amd64/helm" | sha256sum -c -' in dockerfile
    assert "COPY --from=helm /usr/local/bin/helm /usr/local/bin/helm" in dockerfile


def test_dockerfile_is_multi_stage_slim_non_root_with_gunicorn() -> None:
    dockerfile = DOCKERFILE.read_text()

    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-bookworm$", dockerfile, re.MULTILINE)
    assert re.findall(r"^FROM \$\{PYTHON_IMAGE\} AS (\w+)$", dockerfile, re.MULTILINE) == [
        "helm",
        "build",
        "runtime",
    ]
    assert "pip install --no-compile -r /tmp/requirements.txt" in dockerfile
    assert "python manage.py collectstatic --noinput" in dockerfile
    assert dockerfile.rstrip().splitlines()[-1].startswith('CMD ["gunicorn", "platform_site.wsgi"')
    users = re.findall(r"^USER (.+)$", dockerfile, re.MULTILINE)
    assert users == ["10001:10001"]


def test_build_context_has_the_app_and_store_charts_only() -> None:
    files = set(docker_context_files(REPO_ROOT))

    assert {"manage.py", "requirements.txt", "platform_site/settings.py", "provisioning/helm.py"} <= files
    assert {"charts/woocommerce/Chart.yaml", "charts/medusa/Chart.yaml"} <= files
    assert any(f.startswith("charts/woocommerce/templates/") for f in files)
    assert any(f.startswith("templates/") for f in files)
    for path in files:
        assert not path.startswith((".venv/", ".tools/", "var/", "deploy/", "charts/platform/", ".git/")), (
            path
        )
        assert "/tests/" not in f"/{path}", path
        # Test tooling is top-level packages of its own, none of which ships.
        assert not path.startswith(("kubeapi_double/", "testkit/", "localcluster/", "bench/")), path
        assert path != "conftest.py", path
        assert "/ci/" not in path, path


def test_collectstatic_runs_in_production_mode_on_the_build_context(tmp_path: Path) -> None:
    """The image's build step, on a copy of exactly the files the build context holds."""
    for relative in docker_context_files(REPO_ROOT):
        target = tmp_path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / relative, target)
    environment = {
        "PATH": os.environ["PATH"],
        "PLATFORM_ENV": "prod",
        "SECRET_KEY": "collectstatic-only",
        "DJANGO_SETTINGS_MODULE": "platform_site.settings",
    }

    result = subprocess.run(
        [sys.executable, "manage.py", "collectstatic", "--noinput"],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert result.returncode == 0, result.stderr
    assert (tmp_path / "staticfiles" / "staticfiles.json").is_file()
    assert (tmp_path / "staticfiles" / "admin").is_dir()
