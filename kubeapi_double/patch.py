"""PATCH semantics: JSON merge patch, JSON patch, strategic merge patch and a light apply.

The strategic merge here knows the merge keys of the lists charts commonly use
(containers, env, ports, volumes, ...) and the ``$patch``/``$setElementOrder``
directives helm 3 emits; anything else is replaced wholesale, which is what a
real server does for lists without a merge key.
"""

from __future__ import annotations

import copy
from typing import Any

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"
PATCH_TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH, APPLY_PATCH)

# Field name -> merge key for lists of objects (from the core/apps/batch API patch strategies).
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "imagePullSecrets": "name",
    "hostAliases": "ip",
    "ownerReferences": "uid",
    "conditions": "type",
    "topologySpreadConstraints": "topologyKey",
    "resourceClaims": "name",
}
# Lists of scalars that are merged as sets rather than replaced.
_SET_LISTS = {"finalizers"}


class PatchError(ValueError):
    """A patch that cannot be applied (the server answers 422 or 400)."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _resolve(doc: Any, parts: list[str]) -> Any:
    for part in parts:
        doc = doc[int(part)] if isinstance(doc, list) else doc[part]
    return doc


def json_patch(target: Any, operations: list[dict[str, Any]]) -> Any:
    """RFC 6902 JSON patch (add, remove, replace, test, copy, move)."""
    doc = copy.deepcopy(target)
    for op in operations:
        try:
            parts = _pointer(op["path"])
            if op["op"] == "test":
                if _resolve(doc, parts) != op.get("value"):
                    raise PatchError(f"test failed at {op['path']}")
                continue
            value = copy.deepcopy(op.get("value"))
            if op["op"] in ("copy", "move"):
                source = _pointer(op["from"])
                value = copy.deepcopy(_resolve(doc, source))
                if op["op"] == "move":
                    parent = _resolve(doc, source[:-1])
                    del parent[int(source[-1]) if isinstance(parent, list) else source[-1]]
            if not parts:
                doc = value
                continue
            parent = _resolve(doc, parts[:-1])
            last = parts[-1]
            if op["op"] == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif isinstance(parent, list):
                index = len(parent) if last == "-" else int(last)
                if op["op"] == "replace":
                    parent[index] = value
                else:
                    parent.insert(index, value)
            else:
                if op["op"] == "replace" and last not in parent:
                    raise PatchError(f"replace of missing path {op['path']}")
                parent[last] = value
        except (KeyError, IndexError, ValueError, TypeError) as exc:
            raise PatchError(f"cannot apply JSON patch operation {op!r}: {exc}") from exc
    return doc


def _list_merge_key(field: str, items: list[Any]) -> str | None:
    if field == "ports":
        # Container ports merge on containerPort, Service ports on port.
        for item in items:
            if isinstance(item, dict):
                return "containerPort" if "containerPort" in item else "port"
        return None
    return _MERGE_KEYS.get(field)


def _merge_list(field: str, original: list[Any], patch: list[Any]) -> list[Any]:
    if field in _SET_LISTS:
        return list(original) + [item for item in patch if item not in original]
    key = _list_merge_key(field, patch or original)
    if not key or not all(isinstance(item, dict) for item in patch):
        return [item for item in copy.deepcopy(patch) if not (isinstance(item, dict) and "$patch" in item)]
    merged = copy.deepcopy(original)
    for item in patch:
        if item.get("$patch") == "replace":
            return [entry for entry in copy.deepcopy(patch) if "$patch" not in entry]
        index = next(
            (i for i, old in enumerate(merged) if isinstance(old, dict) and old.get(key) == item.get(key)),
            None,
        )
        if item.get("$patch") == "delete":
            if index is not None:
                merged.pop(index)
        elif index is None:
            merged.append(strategic_merge_patch({}, item))
        else:
            merged[index] = strategic_merge_patch(merged[index], item)
    return merged


def strategic_merge_patch(target: Any, patch: Any) -> Any:
    """Strategic merge patch with the merge keys and directives helm and kubectl emit."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {key: copy.deepcopy(value) for key, value in patch.items() if key != "$patch"}
    if patch.get("$patch") == "delete":
        return None
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$setElementOrder/") or key in ("$retainKeys", "$patch"):
            # Ordering hints and retainKeys only matter for field ownership we do not model.
            continue
        if key.startswith("$deleteFromPrimitiveList/"):
            field = key.split("/", 1)[1]
            result[field] = [item for item in result.get(field) or [] if item not in value]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and isinstance(result.get(key), list):
            result[key] = _merge_list(key, result[key], value)
        elif isinstance(value, list):
            result[key] = _merge_list(key, [], value)
        elif isinstance(value, dict):
            merged = strategic_merge_patch(result.get(key), value)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        else:
            result[key] = copy.deepcopy(value)
    return result


def remove_unowned(current: Any, previous: Any, applied: Any) -> Any:
    """Drop from ``current`` the fields a manager applied before but no longer applies.

    This is the part of server-side apply helm relies on during upgrades (a value
    removed from the chart disappears from the object); ownership shared between
    managers and conflicts are not modelled.
    """
    if not isinstance(current, dict) or not isinstance(previous, dict):
        return current
    applied = applied if isinstance(applied, dict) else {}
    result = dict(current)
    for key, old_value in previous.items():
        if key not in applied:
            result.pop(key, None)
        elif isinstance(old_value, dict) and key in result:
            result[key] = remove_unowned(result[key], old_value, applied[key])
    return result


def apply_patch(
    current: dict[str, Any] | None, previous: dict[str, Any] | None, applied: dict[str, Any]
) -> dict:
    """Server-side apply reduced to: forget what this manager dropped, then merge what it sends.

    Lists are replaced as a whole (atomic lists), which matches how helm applies
    complete manifests.
    """
    base = remove_unowned(current or {}, previous or {}, applied)
    return merge_patch(base, applied)
