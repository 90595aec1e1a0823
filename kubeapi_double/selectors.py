"""Label and field selectors as the API server parses them on LIST and WATCH."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    """A selector string the API server would reject with 400 Bad Request."""


@dataclass(frozen=True)
class Requirement:
    """One clause of a label selector: ``key OP values``."""

    key: str
    operator: str  # one of "=", "!=", "in", "notin", "exists", "!"
    values: tuple[str, ...] = ()

    def matches(self, labels: dict[str, str]) -> bool:
        """Whether a label map satisfies this clause."""
        present = self.key in labels
        value = labels.get(self.key)
        if self.operator == "=":
            return present and value == self.values[0]
        if self.operator == "!=":
            return not present or value != self.values[0]
        if self.operator == "in":
            return present and value in self.values
        if self.operator == "notin":
            return not present or value not in self.values
        if self.operator == "exists":
            return present
        return not present


_SET_CLAUSE = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_CLAUSE = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_CLAUSE = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def _split_top_level(selector: str) -> list[str]:
    # Commas inside "in (a,b)" do not separate clauses.
    parts, depth, current = [], 0, []
    for char in selector:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def parse_label_selector(selector: str | None) -> list[Requirement]:
    """Parse a label selector string (``a=b,c!=d,e in (f,g),!h,i``)."""
    requirements: list[Requirement] = []
    for clause in _split_top_level(selector or ""):
        if match := _SET_CLAUSE.match(clause):
            values = tuple(value.strip() for value in match.group(3).split(",") if value.strip())
            requirements.append(Requirement(match.group(1), match.group(2), values))
        elif match := _EQ_CLAUSE.match(clause):
            operator = "!=" if match.group(2) == "!=" else "="
            requirements.append(Requirement(match.group(1), operator, (match.group(3),)))
        elif match := _EXISTS_CLAUSE.match(clause):
            requirements.append(Requirement(match.group(2), "!" if match.group(1) else "exists"))
        else:
            raise SelectorError(f"unable to parse requirement: {clause!r}")
    return requirements


def match_selector_dict(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Whether labels satisfy a structured ``LabelSelector`` (matchLabels + matchExpressions)."""
    if not selector:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    operators = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}
    for expression in selector.get("matchExpressions") or []:
        requirement = Requirement(
            expression["key"], operators[expression["operator"]], tuple(expression.get("values") or ())
        )
        if not requirement.matches(labels):
            return False
    return True


@dataclass(frozen=True)
class FieldRequirement:
    """One clause of a field selector: a dotted path compared with a value."""

    path: str
    negate: bool
    value: str

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether the object's field (as a string) satisfies this clause."""
        current: Any = obj
        for part in self.path.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        actual = "" if current is None else str(current)
        return (actual != self.value) if self.negate else (actual == self.value)


def parse_field_selector(selector: str | None) -> list[FieldRequirement]:
    """Parse a field selector (``metadata.name=x,metadata.namespace!=y``)."""
    requirements: list[FieldRequirement] = []
    for clause in _split_top_level(selector or ""):
        match = re.match(r"^\s*([A-Za-z0-9_.]+)\s*(==|=|!=)\s*(.*?)\s*$", clause)
        if not match:
            raise SelectorError(f"invalid field selector: {clause!r}")
        requirements.append(FieldRequirement(match.group(1), match.group(2) == "!=", match.group(3)))
    return requirements


@dataclass(frozen=True)
class Filter:
    """Everything that narrows a LIST or WATCH: namespace, labels and fields."""

    namespace: str | None = None
    labels: tuple[Requirement, ...] = ()
    fields: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, namespace: str | None, label_selector: str | None, field_selector: str | None) -> Filter:
        """Build a filter from the request's namespace and selector query parameters."""
        return cls(
            namespace,
            tuple(parse_label_selector(label_selector)),
            tuple(parse_field_selector(field_selector)),
        )

    def matches(self, obj: dict[str, Any]) -> bool:
        """Whether an object passes every part of the filter."""
        metadata = obj.get("metadata") or {}
        if self.namespace is not None and metadata.get("namespace") != self.namespace:
            return False
        labels = metadata.get("labels") or {}
        return all(r.matches(labels) for r in self.labels) and all(f.matches(obj) for f in self.fields)
