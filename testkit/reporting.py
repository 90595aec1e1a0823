"""Figures a test run reports (not asserts): written through pytest's terminal reporter, so they show
even while output is captured, the way pytest's own live logging reaches the terminal."""

from __future__ import annotations

from collections.abc import Iterable

import pytest


def report_lines(config: pytest.Config, lines: Iterable[str]) -> None:
    """Write `lines` to the terminal now (during a fixture's teardown, typically)."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    capture = config.pluginmanager.get_plugin("capturemanager")
    if reporter is None or capture is None:
        return
    with capture.global_and_fixture_disabled():
        for line in lines:
            reporter.write_line(line)
