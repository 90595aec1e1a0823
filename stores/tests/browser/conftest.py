"""Fixtures of the browser tests: Debian's Chromium driven by Playwright (never a downloaded browser)."""

from __future__ import annotations

import os
import shutil

import pytest
from django.conf import settings

CHROMIUM = shutil.which("chromium")


@pytest.fixture
def browser(monkeypatch):
    if CHROMIUM is None:
        problem = "Debian's chromium is not installed (apt-get install chromium); no browser is downloaded"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI=true and {problem}")
        pytest.skip(problem)
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the test's own ORM reads are still
    # plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=shutil.which("chromium"),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
                # Store hosts (<name>.<STORE_BASE_DOMAIN>) resolve to loopback without a DNS query, so a
                # walk can visit a store's own host on the live server (the paused page answers there).
                f"--host-resolver-rules=MAP *.{settings.STORE_BASE_DOMAIN} 127.0.0.1",
            ],
        )
        yield chromium
        chromium.close()
