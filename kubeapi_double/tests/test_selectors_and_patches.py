"""Label/field selectors and the patch flavours helm, kubectl and clients send."""

from __future__ import annotations

import pytest

from kubeapi_double import patch
from kubeapi_double.selectors import Filter, SelectorError, parse_label_selector

LABELS = {"app": "web", "tier": "front", "owner": "helm"}


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("app=web", True),
        ("app==web,owner=helm", True),
        ("app!=web", False),
        ("app!=db", True),
        ("tier in (front, back)", True),
        ("tier notin (front)", False),
        ("tier in (a,b),app=web", False),
        ("owner", True),
        ("!owner", False),
        ("!missing", True),
        ("missing!=x", True),
        ("", True),
    ],
)
def test_label_selector(selector: str, expected: bool) -> None:
    requirements = parse_label_selector(selector)

    assert all(r.matches(LABELS) for r in requirements) is expected


def test_invalid_label_selector_is_rejected() -> None:
    with pytest.raises(SelectorError):
        parse_label_selector("a in b")


def test_field_selector_on_name_and_namespace() -> None:
    obj = {"metadata": {"name": "x", "namespace": "shop", "labels": LABELS}}

    assert Filter.parse(None, "app=web", "metadata.name=x,metadata.namespace=shop").matches(obj)
    assert not Filter.parse(None, None, "metadata.name!=x").matches(obj)
    assert not Filter.parse("other", None, None).matches(obj)


def test_strategic_merge_patch_merges_containers_by_name_and_ignores_order_directives() -> None:
    original = {
        "spec": {
            "containers": [
                {"name": "a", "image": "a:1", "env": [{"name": "X", "value": "1"}]},
                {"name": "b", "image": "b:1"},
            ]
        }
    }
    change = {
        "spec": {
            "$setElementOrder/containers": [{"name": "a"}, {"name": "b"}],
            "containers": [
                {"name": "a", "image": "a:2", "env": [{"name": "Y", "value": "2"}]},
                {"name": "b", "$patch": "delete"},
            ],
        }
    }

    result = patch.strategic_merge_patch(original, change)

    assert result == {
        "spec": {
            "containers": [
                {
                    "name": "a",
                    "image": "a:2",
                    "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
                },
            ]
        }
    }


def test_strategic_merge_patch_null_deletes_and_plain_lists_replace() -> None:
    original = {"metadata": {"labels": {"a": "1", "b": "2"}}, "spec": {"args": ["x", "y"]}}

    result = patch.strategic_merge_patch(
        original, {"metadata": {"labels": {"a": None}}, "spec": {"args": ["z"]}}
    )

    assert result == {"metadata": {"labels": {"b": "2"}}, "spec": {"args": ["z"]}}


def test_json_patch_operations() -> None:
    doc = {"metadata": {"finalizers": ["a", "b"]}, "spec": {}}

    result = patch.json_patch(
        doc,
        [
            {"op": "remove", "path": "/metadata/finalizers/0"},
            {"op": "add", "path": "/spec/x", "value": 1},
            {"op": "test", "path": "/spec/x", "value": 1},
        ],
    )

    assert result == {"metadata": {"finalizers": ["b"]}, "spec": {"x": 1}}
    with pytest.raises(patch.PatchError):
        patch.json_patch(doc, [{"op": "test", "path": "/spec", "value": 5}])


def test_apply_drops_fields_the_manager_stopped_applying_and_keeps_others() -> None:
    first = {"metadata": {"labels": {"a": "1", "b": "2"}}, "data": {"k": "v", "old": "x"}}
    current = {
        "metadata": {"labels": {"a": "1", "b": "2", "other-manager": "y"}, "uid": "u"},
        "data": {"k": "v", "old": "x"},
    }
    second = {"metadata": {"labels": {"a": "1"}}, "data": {"k": "v2"}}

    result = patch.apply_patch(current, first, second)

    assert result == {
        "metadata": {"labels": {"a": "1", "other-manager": "y"}, "uid": "u"},
        "data": {"k": "v2"},
    }
