"""The web view in a real browser (Playwright driving Debian's Chromium): a coordinator
walks from the register to an assignment and a point and back, switches language, logs
in and out, and every page type passes axe-core (WCAG 2.1 A and AA, best practices)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from scripts.seed_history import A
from tests.browser import assert_accessible, axe_source
from tests.integration.web_support import INTERNAL_NOTE, serve_web, sqlite_with_history
from web.auth import hash_password

PASSWORD = "ett långt lösenord för testet"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    return sqlite_with_history(tmp_path_factory.mktemp("web-browser"))


@pytest.fixture(scope="module")
def base(database: str) -> Iterator[str]:
    with serve_web(database) as url:
        yield url


@pytest.fixture
def audited(browser: Any) -> Iterator[Any]:
    """A page whose context lets axe-core in: the view's CSP refuses any script, so the
    audit bypasses it (test_the_policy_refuses_a_script shows that it does)."""
    context = browser.new_context(bypass_csp=True)
    yield context.new_page()
    context.close()


def test_the_policy_refuses_a_script(page: Any, base: str) -> None:
    """Chromium enforces the Content-Security-Policy: an injected inline script is refused."""
    from playwright.sync_api import Error

    page.goto(base + "sv/")
    with pytest.raises(Error, match="Content Security Policy"):
        page.add_script_tag(content=axe_source())


def test_a_coordinator_walks_the_web_view(audited: Any, base: str) -> None:
    """Register -> assignment -> point -> back by the breadcrumb, the language switch, the
    backlog, the event log's next page and an error page: each one accessible. The skip
    link comes first under the keyboard, with a visible focus."""
    audited.goto(base + "sv/")
    assert audited.get_attribute("html", "lang") == "sv"
    checked = assert_accessible(audited)
    assert {"color-contrast", "html-has-lang", "document-title"} <= checked
    audited.keyboard.press("Tab")
    assert audited.evaluate("document.activeElement.textContent") == "Hoppa till innehållet"
    assert audited.evaluate("getComputedStyle(document.activeElement).outlineStyle") == "solid"
    audited.keyboard.press("Tab")
    audited.keyboard.press("Tab")  # the language switch, after the site's name
    assert audited.evaluate("document.activeElement.textContent") == "English"
    audited.get_by_role(
        "link", name="Uppdrag att utveckla arbetet mot hedersrelaterat våld"
    ).click()
    assert audited.url == f"{base}sv/assignments/{A}/"
    assert_accessible(audited)
    audited.get_by_role("link", name=re.compile(r"^Punkt 3: ")).click()
    assert audited.url == f"{base}sv/assignments/{A}/3/"
    assert audited.locator("h1").inner_text().startswith("Punkt 3: ")
    assert INTERNAL_NOTE in audited.content()
    assert_accessible(audited)
    audited.get_by_role("navigation", name="Du är här").get_by_role(
        "link", name="Uppdrag att utveckla arbetet mot hedersrelaterat våld"
    ).click()
    assert audited.url == f"{base}sv/assignments/{A}/"
    audited.get_by_role("link", name="English").click()
    assert audited.url == f"{base}en/assignments/{A}/"
    assert audited.get_attribute("html", "lang") == "en"
    assert audited.locator("h2").first.inner_text() == "Points"
    assert_accessible(audited)
    audited.get_by_role("navigation", name="Menu").get_by_role("link", name="Backlog").click()
    assert audited.url == f"{base}en/backlog/"
    assert_accessible(audited)
    audited.get_by_label("As of (YYYY-MM-DD)").fill("2025-03-31")
    audited.get_by_role("button", name="Show").click()
    assert audited.url == f"{base}en/backlog/?as_of=2025-03-31&body="
    assert "open points as of 31 March 2025" in audited.content()
    audited.get_by_role("navigation", name="Menu").get_by_role("link", name="Events").click()
    assert_accessible(audited)
    audited.get_by_role("link", name="Next page").click()
    assert audited.url == f"{base}en/events/?since=50"
    assert_accessible(audited)
    audited.get_by_role("link", name="Svenska").click()
    assert audited.url == f"{base}sv/events/?since=50"
    audited.goto(base + "sv/assignments/finns-inte/")
    assert audited.locator("h1").inner_text() == "Sidan finns inte"
    assert_accessible(audited)


def test_the_login_pages_are_accessible(audited: Any, database: str, tmp_path: Path) -> None:
    """The login page (a wrong password, then the right one) and the logout button, on a
    view that requires a login (web_require_login, on loopback)."""
    passwords = tmp_path / "passwords"
    passwords.write_text(f"sara:{hash_password(PASSWORD)}\n")
    with serve_web(database, web_require_login=True, web_password_file=passwords) as served:
        audited.goto(served + f"en/assignments/{A}/")
        assert audited.url == f"{served}en/login?next=/en/assignments/{A}/"
        assert_accessible(audited)
        audited.get_by_label("User name").fill("sara")
        audited.get_by_label("Password").fill("not it")
        audited.get_by_role("button", name="Log in").click()
        assert audited.get_by_role("alert").inner_text() == "Wrong user name or password."
        assert_accessible(audited)
        audited.get_by_label("Password").fill(PASSWORD)
        audited.get_by_role("button", name="Log in").click()
        assert audited.url == f"{served}en/assignments/{A}/"
        assert "Logged in as sara" in audited.content()
        assert_accessible(audited)
        audited.get_by_role("button", name="Log out").click()
        assert audited.url == f"{served}en/login?out=1"
        assert audited.get_by_role("status").inner_text() == "You are logged out."
