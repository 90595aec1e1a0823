"""Without cluster binaries the real-cluster layer is skipped with one line, unless CI=true: then it fails."""

import pytest

from localcluster.binaries import ROOT

pytest_plugins = ["pytester"]
# Each case runs pytest in a subprocess: not in `make test-fast`.
pytestmark = pytest.mark.slow

LAYER_TEST = """
import pytest

@pytest.mark.real_cluster
def test_needs_the_cluster(real_cluster):
    assert real_cluster

@pytest.mark.real_cluster
def test_needs_it_too(cluster):
    assert cluster

def test_plain():
    assert True
"""


@pytest.fixture
def layer_run(pytester, monkeypatch, tmp_path):
    monkeypatch.setenv("CLUSTER_BINARIES_DIR", str(tmp_path / "not-built"))
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    pytester.makepyfile(test_layer=LAYER_TEST)
    pytester.makeini("[pytest]\nmarkers =\n    real_cluster: x\n")

    def run(*, ci: str):
        monkeypatch.setenv("CI", ci)
        return pytester.runpytest_subprocess("-p", "testkit.plugins.real_cluster", "-p", "no:cacheprovider")

    return run


def test_without_binaries_the_layer_is_skipped_and_summarised_once(layer_run):
    result = layer_run(ci="")
    result.assert_outcomes(passed=1, skipped=2)
    summary = [line for line in result.outlines if line.startswith("real-cluster layer:")]
    assert len(summary) == 1 and "2 tests skipped" in summary[0] and "make tools" in summary[0]


def test_in_ci_a_missing_binary_fails_the_layer(layer_run):
    result = layer_run(ci="true")
    result.assert_outcomes(passed=1, errors=2)
    assert "CI=true and real cluster unavailable" in result.stdout.str()
    assert not [line for line in result.outlines if line.startswith("real-cluster layer:")]
