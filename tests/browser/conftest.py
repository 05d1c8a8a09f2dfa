"""Headless Chromium (Debian's package) driven by Playwright for Python, for the page's tests.
Without Chromium or Playwright these tests skip, saying why; `tests/install_chromium.sh` (run by
the README's test command) installs Chromium where it can."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

CHROMIUM = os.environ.get("GATEWAY_CHROMIUM") or shutil.which("chromium") or shutil.which(
    "chromium-browser")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Per module, never for the session: Playwright's sync API runs an event loop on the main
    thread while it is open, and the async tests of other modules cannot start theirs then."""
    if CHROMIUM is None:
        pytest.skip("Chromium is not installed (Debian: `apt-get install chromium`; "
                    "tests/install_chromium.sh does it where it may)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("Playwright for Python is not installed (pip install -e '.[test]')")
    with sync_playwright() as driver:
        launched = driver.chromium.launch(executable_path=CHROMIUM, headless=True,
                                          args=["--no-sandbox", "--disable-gpu",
                                                "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh tab in its own context (its own session storage), recording in `problems` every
    script error and console error the page makes (the tests assert there are none)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    problems: list[str] = []
    tab.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    # an HTTP error status (a 401 before a key, a 503 while loading) is the page's to handle:
    # Chromium logs each as a console error, which is not one of the page's
    tab.on("console", lambda message: problems.append(f"console: {message.text}")
           if message.type == "error"
           and not message.text.startswith("Failed to load resource") else None)
    tab.problems = problems
    yield tab
    context.close()
