"""Optional strict schema validation with the offline schemas of ``kubernetes-validate``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from kubeapi_double import errors
from kubeapi_double.resources import ResourceType


def _field_path(path: Any) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "<root>"


def schema_validator(
    kube_version: str, *, strict: bool = True
) -> Callable[[ResourceType, dict[str, Any]], None]:
    """A validator that answers 422 Invalid, as the API server does, for objects off-schema.

    ``strict`` uses the schema variants that reject unknown fields (what
    ``fieldValidation=Strict`` does on a real server). Kinds without a bundled
    schema pass unchecked.
    """
    import kubernetes_validate

    # Fail at construction, not on the first request, for a version the package lacks.
    if (
        kubernetes_validate.utils.major_minor(kube_version.lstrip("v"))
        > kubernetes_validate.utils.latest_version()
    ):
        raise ValueError(f"kubernetes-validate has no schemas for Kubernetes {kube_version}")

    def validate(rt: ResourceType, obj: dict[str, Any]) -> None:
        try:
            kubernetes_validate.validate(obj, kube_version, strict)
        except kubernetes_validate.SchemaNotFoundError:
            return
        except kubernetes_validate.ValidationError as exc:
            name = (obj.get("metadata") or {}).get("name", "")
            field = _field_path(exc.absolute_path)
            if exc.validator == "additionalProperties":
                raise errors.invalid(
                    rt,
                    name,
                    field,
                    f"field not declared in schema: {exc.message}",
                    cause="FieldValueNotSupported",
                ) from exc
            raise errors.invalid(rt, name, field, exc.message, exc.instance) from exc

    return validate
