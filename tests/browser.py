"""A real browser for the tests of web pages: Playwright driving Debian's Chromium.

Playwright comes from PyPI (a dev dependency); the browser is the system's ``chromium``
(``COUNCIL_TEST_CHROMIUM`` names another), never one Playwright downloads. axe-core comes
from the npm registry (tests/a11y/package.json, installed by ``make test``). Without
Chromium or axe-core a test is skipped locally and fails in CI.

The fixtures are defined once, in tests/integration/conftest.py (imported into two modules
they would be two session fixtures, and Playwright's sync API runs once at a time).
"""

from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, missing_server

AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
#: Flags that keep headless Chromium off the network (this machine has none) and quiet.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
#: The rules every page must pass: WCAG 2.1 A and AA, and axe's best practices.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"]


def chromium() -> str:
    found = os.environ.get("COUNCIL_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        missing_server("Chromium (apt-get install chromium)")
    assert found is not None
    return found


@functools.cache
def axe_source() -> str:
    if not AXE.exists():
        missing_server("axe-core (npm install --prefix tests/a11y)")
    return AXE.read_text()


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """One headless Chromium for the session."""
    from playwright.sync_api import sync_playwright

    executable = chromium()
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own cookies) in the session's browser."""
    context = browser.new_context()
    opened = context.new_page()
    yield opened
    context.close()


def axe(page: Any) -> dict[str, list[Any]]:
    """Run axe-core on the page as it is now; return its violations and the rules passed."""
    page.add_script_tag(content=axe_source())
    result: dict[str, list[Any]] = page.evaluate(
        """async (tags) => {
            const r = await axe.run(document, {runOnly: {type: "tag", values: tags}});
            return {
              violations: r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                  targets: v.nodes.map(n => n.target.join(" "))})),
              passes: r.passes.map(p => p.id),
            };
        }""",
        AXE_TAGS,
    )
    return result


def assert_accessible(page: Any) -> set[str]:
    """No axe violation on the page; returns the ids of the rules it passed."""
    found = axe(page)
    assert found["violations"] == [], f"{page.url}: {found['violations']}"
    return set(found["passes"])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def serve_directory() -> Iterator[Any]:
    """``serve_directory(path) -> base URL``: a static file server on loopback, as a web
    server in front of a built site would be (directories answer with their index.html)."""
    servers: list[http.server.ThreadingHTTPServer] = []

    def start(directory: Path) -> str:
        handler = functools.partial(_Quiet, directory=str(directory))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
