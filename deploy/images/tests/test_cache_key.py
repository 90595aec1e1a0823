"""The image cache key (deploy/images/cache_key.py): it changes exactly when something the build can
see changes, and follows Docker's .dockerignore rules for what that is."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

_spec = importlib.util.spec_from_file_location(
    "cache_key", Path(__file__).resolve().parents[1] / "cache_key.py"
)
cache_key = importlib.util.module_from_spec(_spec)
# A script beside build.sh, not a package; registered so its dataclasses can find their module.
sys.modules["cache_key"] = cache_key
_spec.loader.exec_module(cache_key)

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture
def context(tmp_path: Path) -> Path:
    (tmp_path / "Containerfile").write_text("FROM scratch\nCOPY app.py /\n")
    (tmp_path / "app.py").write_text("print('hello')\n")
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_app.py").write_text("def test(): pass\n")
    (tmp_path / ".dockerignore").write_text("# tests stay out\n**/tests\n*.md\n!KEEP.md\n")
    return tmp_path


def _key(context: Path, **kwargs) -> str:
    return cache_key.image_key(
        containerfile=context / "Containerfile",
        context=context,
        dockerignore=context / ".dockerignore",
        **kwargs,
    )


def test_the_key_is_stable_and_short(context):
    assert _key(context) == _key(context)
    assert len(_key(context)) == cache_key.KEY_LENGTH


def test_a_change_the_build_can_see_changes_the_key(context):
    before = _key(context)
    (context / "app.py").write_text("print('bye')\n")
    assert _key(context) != before


def test_an_excluded_file_does_not_change_the_key(context):
    before = _key(context)
    (context / "tests" / "test_app.py").write_text("def test(): assert False\n")
    (context / "NOTES.md").write_text("notes\n")
    assert _key(context) == before
    (context / "KEEP.md").write_text("kept by the exception\n")
    assert _key(context) != before


def test_making_a_file_executable_changes_the_key(context):
    before = _key(context)
    (context / "app.py").chmod(0o755)
    assert _key(context) != before


def test_parents_and_other_inputs_are_part_of_the_key(context, tmp_path_factory):
    plain = _key(context)
    assert _key(context, parents=["aaaa"]) != plain
    assert _key(context, parents=["aaaa"]) != _key(context, parents=["bbbb"])
    assert _key(context, inputs=["helm=1"]) != _key(context, inputs=["helm=2"])
    binary = tmp_path_factory.mktemp("outside") / "node"
    binary.write_bytes(b"\x7fELF one")
    first = _key(context, files=[binary])
    binary.write_bytes(b"\x7fELF two")
    assert _key(context, files=[binary]) != first


@pytest.mark.parametrize(
    ("path", "ignored"),
    [
        ("README.md", True),  # *.md: top level only, as in Docker
        ("docs/api.md", False),
        ("charts/woocommerce/README.md", False),  # brought back by !charts/*/README.md
        ("charts/platform/values.yaml", True),
        ("stores/tests/test_models.py", True),  # **/tests
        ("stores/models.py", False),
        ("deploy/Dockerfile", True),
        (".venv/bin/python", True),
        ("kubeapi_double/server.py", True),  # test tooling is never in the image
        ("testkit/storefront/medusa.py", True),
        ("localcluster/node.py", True),
        ("provisioning/helm.py", False),
    ],
)
def test_the_platform_context_follows_the_repositorys_dockerignore(path, ignored):
    rules = cache_key.parse_dockerignore((ROOT / ".dockerignore").read_text())
    assert cache_key.is_ignored(path, rules) is ignored
