"""Pod Security "restricted" and the platform's own rules, checked on every rendered object."""

from __future__ import annotations

import re
from typing import Any

import yaml

from charts.tests.rendering import containers, pod_spec

SECRET_KEYS = {
    "woocommerce": {
        "admin-username",
        "admin-password",
        "admin-email",
        "database-password",
        "database-root-password",
    },
    "medusa": {
        "admin-password",
        "admin-email",
        "database-password",
        "database-root-password",
        "jwt-secret",
        "cookie-secret",
    },
}
SENSITIVE_ENV = re.compile(r"PASSWORD|SECRET|TOKEN|_KEY$")
# A literal credential: "password: hunter22", "PASSWORD='abc...'", "secret=...".
LITERAL_CREDENTIAL = re.compile(
    r"(?i)(password|passwd|secret(?!name)|token)[\w-]*['\"]?\s*[:=]\s*['\"]?[^\s'\"$]{6,}"
)
REQUIRED_LABELS = ("app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component")


def _pod_specs(manifests: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [(f"{m['kind']}/{m['metadata']['name']}", s) for m in manifests if (s := pod_spec(m)) is not None]


def test_pods_are_restricted(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    for name, spec in _pod_specs(manifests):
        assert spec["automountServiceAccountToken"] is False, name
        for field in ("hostNetwork", "hostPID", "hostIPC"):
            assert not spec.get(field), (name, field)
        assert all("hostPath" not in volume for volume in spec.get("volumes", [])), name
        pod_context = spec["securityContext"]
        assert pod_context["runAsNonRoot"] is True, name
        assert pod_context["runAsUser"] > 0, name
        assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}, name


def test_containers_are_restricted_and_bounded(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    for name, spec in _pod_specs(manifests):
        for container in containers(spec):
            where = f"{name}/{container['name']}"
            context = container["securityContext"]
            assert context["runAsNonRoot"] is True, where
            assert context["allowPrivilegeEscalation"] is False, where
            assert context["capabilities"] == {"drop": ["ALL"]}, where
            assert context["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert context.get("privileged") is not True, where
            assert context["readOnlyRootFilesystem"] is True, where
            assert "ports" not in container or all(p.get("hostPort") is None for p in container["ports"]), (
                where
            )
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= container["resources"][part].keys(), where


def test_images_are_pinned(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    for name, spec in _pod_specs(manifests):
        for container in containers(spec):
            repository, _, tag = container["image"].rpartition(":")
            assert repository and tag and tag != "latest", (name, container["image"])
            assert re.search(r"\d", tag), (name, container["image"])


def test_no_secret_objects_and_no_literal_credentials(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store

    assert [m for m in manifests if m["kind"] == "Secret"] == []
    assert LITERAL_CREDENTIAL.findall(yaml.safe_dump_all(manifests)) == []


def test_credential_env_comes_only_from_the_existing_secret(
    store: tuple[str, str, list[dict[str, Any]]],
) -> None:
    chart, _, manifests = store
    used_keys: set[str] = set()

    for name, spec in _pod_specs(manifests):
        for container in containers(spec):
            for env in container.get("env", []):
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "store-credentials", (name, env["name"])
                    used_keys.add(ref["key"])
                elif SENSITIVE_ENV.search(env["name"]):
                    raise AssertionError(f"{name}: {env['name']} is not read from the Secret")

    assert used_keys == SECRET_KEYS[chart]


def test_literal_credential_pattern_catches_a_leak() -> None:
    leaked = yaml.safe_dump(
        {"env": [{"name": "DB_PASSWORD", "value": "s3cr3t-value"}], "x": "password=hunter22"}
    )

    assert len(LITERAL_CREDENTIAL.findall(leaked)) == 1
    assert LITERAL_CREDENTIAL.findall("key: database-password\nname: WP_ADMIN_PASSWORD\n") == []


def test_services_are_cluster_internal(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    _, _, manifests = store
    services = [m for m in manifests if m["kind"] == "Service"]

    assert services
    for service in services:
        assert service["spec"]["type"] == "ClusterIP", service["metadata"]["name"]
        assert all("nodePort" not in port for port in service["spec"]["ports"])


def test_everything_carries_the_store_labels(store: tuple[str, str, list[dict[str, Any]]]) -> None:
    chart, _, manifests = store

    for obj in manifests:
        labels = obj["metadata"]["labels"]
        where = f"{obj['kind']}/{obj['metadata']['name']}"
        assert all(labels.get(key) for key in REQUIRED_LABELS), where
        assert labels["app.kubernetes.io/instance"] == "demo", where
        assert labels["app.kubernetes.io/managed-by"] == "Helm", where
        assert labels["app.kubernetes.io/part-of"] == chart, where
        assert labels["platform.example/store"] == "demo", where
        assert obj["metadata"]["namespace"] == "store-demo", where
        spec = pod_spec(obj)
        if spec is not None:
            template = obj["spec"]["jobTemplate"]["spec"]["template"] if obj["kind"] == "CronJob" else None
            template = template or obj["spec"]["template"]
            assert template["metadata"]["labels"]["platform.example/store"] == "demo", where
