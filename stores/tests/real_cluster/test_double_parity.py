"""Keep the Kubernetes API double honest: one provisioning scenario runs against the double and against
the real control plane, and the objects each ends up holding must agree (kinds, names, labels and the
fields the platform and its charts rely on). A difference fails the test: fix the double."""

from __future__ import annotations

import json
from typing import Any

import pytest

from provisioning.models import ProvisioningRun
from stores.choices import StoreStatus
from stores.lifecycle import store_create, store_run_execute
from stores.tests.real_cluster.support import STORE_KINDS, unique_name
from testkit.helm import HELM_BINARIES, access_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow, pytest.mark.real_cluster]

# Objects only a real cluster's controllers make, which the double does not claim to model.
CONTROLLER_MADE = {("configmaps", "kube-root-ca.crt")}
# Labels whose value is a clock reading (helm stamps its release records with one).
VOLATILE_LABELS = {"modifiedAt"}


def _containers(pod_spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        {
            "name": c["name"],
            "image": c["image"],
            "ports": [(p.get("name"), p["containerPort"]) for p in c.get("ports", [])],
            "resources": c.get("resources", {}),
            "securityContext": c.get("securityContext", {}),
            "env": [e["name"] for e in c.get("env", [])],
        }
        for c in (pod_spec.get("initContainers") or []) + pod_spec.get("containers", [])
    ]


def _key_fields(resource: str, obj: dict[str, Any]) -> Any:
    spec = obj.get("spec", {})
    if resource in {"deployments", "statefulsets"}:
        template = spec["template"]
        return {
            "replicas": spec.get("replicas"),
            "selector": spec["selector"],
            "podLabels": template["metadata"].get("labels", {}),
            "podSecurityContext": template["spec"].get("securityContext", {}),
            "automountServiceAccountToken": template["spec"].get("automountServiceAccountToken"),
            "containers": _containers(template["spec"]),
        }
    if resource == "jobs":
        return {"backoffLimit": spec.get("backoffLimit"), "containers": _containers(spec["template"]["spec"])}
    if resource == "cronjobs":
        return {
            "schedule": spec["schedule"],
            "containers": _containers(spec["jobTemplate"]["spec"]["template"]["spec"]),
        }
    if resource == "services":
        return {
            "selector": spec.get("selector"),
            "ports": [(p.get("name"), p["port"], p.get("targetPort")) for p in spec["ports"]],
        }
    if resource == "persistentvolumeclaims":
        return {
            "storageClassName": spec.get("storageClassName"),
            "accessModes": spec["accessModes"],
            "size": spec["resources"]["requests"]["storage"],
        }
    if resource in {"networkpolicies", "limitranges", "ingresses"}:
        return spec
    if resource == "resourcequotas":
        return spec["hard"]
    if resource == "secrets":
        return {"type": obj.get("type"), "keys": sorted(obj.get("data", {}))}
    if resource == "configmaps":
        return sorted(obj.get("data", {}))
    if resource == "rolebindings":
        return {"roleRef": obj["roleRef"], "subjects": obj.get("subjects")}
    return None


def _essence(objects_by_kind: dict[str, list[dict[str, Any]]], store_name: str) -> dict[str, Any]:
    """What must agree between the two, with the store's name replaced so two stores compare."""
    essence: dict[str, Any] = {}
    for resource, objects in objects_by_kind.items():
        for obj in objects:
            name = obj["metadata"]["name"]
            if (resource, name) in CONTROLLER_MADE:
                continue
            labels = {k: v for k, v in obj["metadata"].get("labels", {}).items() if k not in VOLATILE_LABELS}
            entry = {"labels": labels, "fields": _key_fields(resource, obj)}
            essence[f"{resource}/{name}"] = entry
    text = json.dumps(essence, sort_keys=True).replace(store_name, "<store>")
    return json.loads(text)


def _provision(access, tenant, name: str, engine: str):
    store, _ = store_create(tenant=tenant, name=name, engine=engine)
    run = ProvisioningRun.objects.get(store=store)
    store_run_execute(run_id=run.pk, access=access)
    store.refresh_from_db()
    assert store.status == StoreStatus.READY, store.status_reason
    return store


@pytest.mark.parametrize("engine", ["woocommerce", "medusa"])
def test_the_double_and_the_real_control_plane_end_with_the_same_objects(
    engine, kube_api, cluster, tenant, tmp_path
):
    helm = HELM_BINARIES["helm4"]
    simulated = _provision(
        access_for(kube_api, helm, tmp_path / "double"), tenant, unique_name("twin-d"), engine
    )
    real = _provision(access_for(cluster, helm, tmp_path / "real"), tenant, unique_name("twin-r"), engine)

    double_objects = {
        resource: kube_api.objects(resource, simulated.namespace) for _, resource in STORE_KINDS
    }
    real_objects = {
        resource: cluster.objects(resource, real.namespace, api=api) for api, resource in STORE_KINDS
    }
    double_essence = _essence(double_objects, simulated.name)
    real_essence = _essence(real_objects, real.name)

    assert sorted(double_essence) == sorted(real_essence), "the two hold different objects"
    differences = {
        key: {"double": double_essence[key], "real": real_essence[key]}
        for key in real_essence
        if double_essence[key] != real_essence[key]
    }
    assert differences == {}, json.dumps(differences, indent=1)[:6000]

    double_ns = kube_api.get("namespaces", simulated.namespace)["metadata"]["labels"]
    real_ns = cluster.get("namespaces", real.namespace)["metadata"]["labels"]
    assert json.dumps(double_ns, sort_keys=True).replace(simulated.name, "<store>") == json.dumps(
        real_ns, sort_keys=True
    ).replace(real.name, "<store>")
