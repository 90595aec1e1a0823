"""Rendering and evaluation helpers for the platform chart tests (charts/tests/test_platform_chart.py)."""

from __future__ import annotations

import copy
import fnmatch
import os
from functools import cache
from pathlib import Path
from typing import Any

import cel

from charts.tests.rendering import CHARTS_DIR, render_chart
from charts.tests.support import CHARTS, CI_VALUES, ci_values, rendered

PLATFORM = CHARTS_DIR / "platform"
VALUES_FILES = {"local": PLATFORM / "values-local.yaml", "prod": PLATFORM / "values-prod.yaml"}
# values-prod.yaml ships a placeholder; an operator passes the real domain on top of it.
PROD_DOMAIN = {"domain": "203.0.113.10.nip.io"}
NAMESPACE = "platform"
RELEASE = "platform"
SERVICE_ACCOUNT = "platform"
SA_USERNAME = f"system:serviceaccount:{NAMESPACE}:{SERVICE_ACCOUNT}"
WEB_SERVICE_ACCOUNT = "platform-web"
MANAGED_BY = {"app.kubernetes.io/managed-by": "store-platform"}
STORE_WITH_DOMAINS = {"domains": {"hosts": ["shop.example.com"], "clusterIssuer": "letsencrypt-prod"}}
ENFORCE = "pod-security.kubernetes.io/enforce"
# What every store namespace the platform writes must carry, besides its managed-by label.
STORE_NAMESPACE = {**MANAGED_BY, ENFORCE: "restricted"}


# values-prod.yaml also leaves the SMTP relay to the operator.
PROD_SMTP = {"email": {"smtp": {"host": "smtp.example.com"}}}


def extra_values(env: str) -> dict[str, Any] | None:
    return {**PROD_DOMAIN, **PROD_SMTP} if env == "prod" else None


@cache
def _rendered_platform(env: str, helm: str | None) -> tuple[dict[str, Any], ...]:
    return tuple(
        render_chart(
            str(PLATFORM),
            [VALUES_FILES[env]],
            extra_values(env),
            helm=helm,
            namespace=NAMESPACE,
            release=RELEASE,
        )
    )


def rendered_platform(env: str, helm: str | None = None) -> list[dict[str, Any]]:
    """The platform chart with values-<env>.yaml (prod gets a real domain), rendered once per session."""
    return copy.deepcopy(list(_rendered_platform(env, helm)))


def plural(kind: str) -> str:
    """The API resource name of a kind (the English plural rules the core kinds follow)."""
    lower = kind.lower()
    if lower.endswith("y"):
        return f"{lower[:-1]}ies"
    if lower.endswith("s"):
        return f"{lower}es"
    return f"{lower}s"


def group_of(api_version: str) -> str:
    return api_version.split("/")[0] if "/" in api_version else ""


def store_chart_resources() -> set[tuple[str, str]]:
    """(api group, resource) of every object the store charts render with each CI values file, hooks
    included, plus Secrets: helm keeps each release revision in a Secret and the orchestrator writes
    the store's credentials Secret before helm runs."""
    resources = {("", "secrets")}
    for chart in CHARTS:
        for ci in CI_VALUES:
            assert ci_values(chart, ci).is_file()
            for obj in rendered(chart, ci):
                resources.add((group_of(obj["apiVersion"]), plural(obj["kind"])))
        # Custom domains add their own kinds (a cert-manager Certificate per domain).
        for obj in render_chart(chart, [ci_values(chart, "prod")], values=STORE_WITH_DOMAINS):
            resources.add((group_of(obj["apiVersion"]), plural(obj["kind"])))
    return resources


def rule_grants(rules: list[dict[str, Any]]) -> dict[tuple[str, str], set[str]]:
    """(api group, resource) -> verbs, over every rule (resourceNames-limited rules included)."""
    grants: dict[tuple[str, str], set[str]] = {}
    for rule in rules:
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                grants.setdefault((group, resource), set()).update(rule["verbs"])
    return grants


class AdmissionPolicy:
    """Evaluates a rendered ValidatingAdmissionPolicy the way the API server does: match conditions
    first, then the variables in order, then every validation; all must hold to admit."""

    def __init__(self, policy: dict[str, Any]) -> None:
        self.spec = policy["spec"]

    def matches(self, request: dict[str, Any]) -> bool:
        resource = request["resource"]
        constrained = any(
            resource["group"] in rule["apiGroups"]
            and resource["resource"] in rule["resources"]
            and request["operation"] in rule["operations"]
            for rule in self.spec["matchConstraints"]["resourceRules"]
        )
        context = {"request": request}
        return constrained and all(
            cel.evaluate(condition["expression"], context) for condition in self.spec["matchConditions"]
        )

    def denials(
        self, request: dict[str, Any], obj: dict[str, Any] | None, old: dict[str, Any] | None
    ) -> list[str]:
        """Messages of the validations that fail (empty: admitted)."""
        variables: dict[str, Any] = {}
        context: dict[str, Any] = {"request": request, "object": obj, "oldObject": old}
        for variable in self.spec.get("variables", []):
            context["variables"] = dict(variables)
            variables[variable["name"]] = cel.evaluate(variable["expression"], context)
        context["variables"] = variables
        return [
            validation["message"]
            for validation in self.spec["validations"]
            if cel.evaluate(validation["expression"], context) is not True
        ]


def admission_request(
    operation: str, resource: str, *, namespace: str = "", username: str = SA_USERNAME
) -> dict[str, Any]:
    group = "rbac.authorization.k8s.io" if resource == "rolebindings" else ""
    return {
        "operation": operation,
        "resource": {"group": group, "version": "v1", "resource": resource},
        "namespace": namespace,
        "userInfo": {"username": username},
    }


def namespace(name: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name}
    if labels is not None:
        metadata["labels"] = labels
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": metadata}


def role_binding(
    namespace_name: str, role: str = "store-deployer", subject: tuple[str, str] = (NAMESPACE, SERVICE_ACCOUNT)
) -> dict[str, Any]:
    return {
        "apiVersion": "rbac.authorization.k8s.io/v1",
        "kind": "RoleBinding",
        "metadata": {"name": "store-deployer", "namespace": namespace_name},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role},
        "subjects": [{"kind": "ServiceAccount", "namespace": subject[0], "name": subject[1]}],
    }


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    """name -> value (a string) or valueFrom (a dict)."""
    return {item["name"]: item.get("value", item.get("valueFrom")) for item in container.get("env", [])}


def read(path: Path) -> str:
    return path.read_text()


def _dockerignore_patterns(root: Path) -> list[tuple[bool, str]]:
    patterns = []
    for line in (root / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            negated = line.startswith("!")
            patterns.append((negated, line.lstrip("!").strip("/")))
    return patterns


def _ignored(relative: str, patterns: list[tuple[bool, str]]) -> bool:
    """Docker's rule: the last matching pattern wins; a pattern also covers everything under a match."""
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for negated, pattern in patterns:
        variants = [pattern]
        if pattern.startswith("**/"):
            variants.append(pattern[3:])
        for variant in variants:
            if variant.startswith("**/"):
                hit = any(fnmatch.fnmatchcase(p, f"*/{variant[3:]}") for p in prefixes)
            else:
                hit = any(fnmatch.fnmatchcase(p, variant) for p in prefixes)
            if hit:
                ignored = not negated
    return ignored


def docker_context_files(root: Path) -> list[str]:
    """Files `docker build` would send from `root` under its .dockerignore (an approximation of
    Docker's matcher that is exact for the patterns this repository uses)."""
    patterns = _dockerignore_patterns(root)
    kept: list[str] = []
    for directory, dirs, files in os.walk(root):
        rel_dir = os.path.relpath(directory, root)
        dirs[:] = [d for d in dirs if d not in {".git", ".venv", ".tools", "node_modules"}]
        for name in files:
            relative = name if rel_dir == "." else f"{rel_dir}/{name}"
            if not _ignored(relative, patterns):
                kept.append(relative)
    return sorted(kept)
