"""`council serve`, the coordinators' web view: what it shows, the headers on every
response, bad input as pages, that it writes nothing, and who gets in: nobody needs to log
in on loopback; off loopback, a password or an OpenID Connect login (a provider made in
the test) is required, and a forged or foreign ID token is refused.

Every server is a real waitress on a port of this machine; the off-loopback ones bind to
this machine's own non-loopback address, reachable without a network.
"""

from __future__ import annotations

import html
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa

import web.login
from scripts.seed_history import A, at
from tests.integration.bundled_history import EST, LOKAL
from tests.integration.conftest import STOCKHOLM
from tests.integration.web_support import (
    INTERNAL_NOTE,
    PUBLIC_NOTE,
    history,
    oidc_provider,
    own_address,
    read_only_engine,
    serve_web,
    sqlite_with_history,
    wait_until_up,
)
from tests.support import DEFINITIONS, ROOT, captured_logs
from web.app import CSP
from web.auth import hash_password
from workflow.core.actions import AddNote
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine

PASSWORD = "rätt häst batteri häftklammer"


@pytest.fixture(scope="module")
def database(tmp_path_factory: pytest.TempPathFactory) -> str:
    """One SQLite database with the bundled history for the module's read-only tests."""
    return sqlite_with_history(tmp_path_factory.mktemp("web"))


@pytest.fixture(scope="module")
def base(database: str) -> Iterator[str]:
    """The web view on loopback, no login."""
    with serve_web(database) as url:
        yield url


@pytest.fixture
def password_file(tmp_path: Path) -> Path:
    path = tmp_path / "web-passwords"
    path.write_text(f"# coordinators\nsara:{hash_password(PASSWORD)}\n")
    path.chmod(0o600)
    return path


def get(url: str, **kwargs: Any) -> requests.Response:
    return requests.get(url, timeout=10, allow_redirects=False, **kwargs)


def text(response: requests.Response) -> str:
    """What a reader sees: tags gone, entities unescaped, spaces folded."""
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", response.text)))


# --- what it shows ---------------------------------------------------------------------


def test_register_lists_every_assignment_with_counts(base: str) -> None:
    """The start page: each assignment, linked, with its points by category."""
    response = get(base + "sv/")
    assert response.status_code == 200
    assert '<html lang="sv">' in response.text
    for assignment in (A, LOKAL, EST):
        assert f'href="/sv/assignments/{assignment}/"' in response.text
    assert "Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck" in response.text
    english = get(base + "en/")
    assert '<html lang="en">' in english.text
    assert "Assignment to develop the work against honour-related violence" in english.text


def test_root_redirects_to_the_browsers_language(base: str) -> None:
    assert get(base).headers["Location"] == "/sv/"
    assert get(base, headers={"Accept-Language": "en-GB,en;q=0.8"}).headers["Location"] == "/en/"


def test_assignment_page_is_council_status(base: str) -> None:
    """Each point's category, current steps, owners, due date and marks, as `status`."""
    page = text(get(base + f"sv/assignments/{A}/"))
    assert "Punkt 3: Säkerställ en samlad information" in page
    assert "Pågående" in page
    assert "translate" in page
    assert "lena.strand" in page
    assert "Försenad sedan 14 april 2023" in page
    assert "KS 2022/0417" in page


def test_point_page_is_council_show_with_internal_notes(base: str) -> None:
    """Steps with their states and due dates, every note (internal ones too, marked), and
    the history with localised event names."""
    sv = get(base + f"sv/assignments/{A}/3/")
    assert sv.status_code == 200
    page = text(sv)
    assert "Producera broschyrer och affischer" in page
    assert "Översätt till fler språk" in page
    assert INTERNAL_NOTE in page
    assert PUBLIC_NOTE in page
    assert "intern" in page
    assert "publik" in page
    assert "Steget blev aktivt" in page
    assert "ansvarig lena.strand, klart senast 14 april 2023" in page
    en = get(base + f"en/assignments/{A}/3/")
    assert '<html lang="en">' in en.text
    assert "Step activated" in text(en)
    assert f'<p lang="sv">{INTERNAL_NOTE}</p>' in en.text  # the note in its own language


def test_backlog_page_is_council_backlog(base: str) -> None:
    page = text(get(base + "sv/backlog/?as_of=2025-03-31"))
    assert "öppna punkter per 31 mars 2025" in page
    assert f"{A}/3" in page
    assert f"{EST}/1" in page
    narrowed = text(get(base + "sv/backlog/?as_of=2025-03-31&body=kultur-och-fritidsnamnden"))
    assert f"{A}/3" in narrowed
    assert f"{EST}/1" not in narrowed


def test_events_are_paged_and_filtered_by_assignment(base: str) -> None:
    """Fifty events a page, oldest first, with a link to the next; a filter by assignment
    (and point) shows only theirs."""
    first = get(base + "sv/events/")
    ids = [int(i) for i in re.findall(r'<td class="number">(\d+)</td>', first.text)]
    assert ids == list(range(1, 51))
    following = re.search(r'href="([^"]+)" rel="next"', first.text)
    assert following is not None
    second = get(base + following.group(1).lstrip("/").replace("&amp;", "&"))
    later = [int(i) for i in re.findall(r'<td class="number">(\d+)</td>', second.text)]
    assert later[:1] == [51]
    only = get(base + f"en/events/?assignment={LOKAL}")
    points = set(re.findall(r'href="/en/assignments/([^/"]+)/\d+/"', only.text))
    assert points == {LOKAL}
    one = text(get(base + f"en/events/?assignment={A}&point=3"))
    assert "Note" in one
    assert f"{A}/1 " not in one


@pytest.mark.parametrize(
    ("path", "status", "says"),
    [
        ("sv/assignments/no-such-assignment/", 404, "Sidan finns inte"),
        (f"en/assignments/{A}/99/", 404, "Page not found"),
        ("sv/backlog/?as_of=2025-02-30", 400, "2025-02-30 är inget datum"),
        ("en/backlog/?body=nobody", 400, "nobody is no committee"),
        ("en/events/?since=-1", 400, "-1 is not a valid number"),
        ("sv/events/?since=banan", 400, "banan är inget giltigt nummer"),
        ("en/events/?point=3", 400, "A point needs an assignment"),
        (f"en/events/?assignment={A}&point=0", 400, "0 is not a valid number"),
        ("sv/no/such/page", 404, "Sidan finns inte"),
        ("de/", 404, "Sidan finns inte"),
    ],
)  # fmt: skip
def test_bad_input_is_a_page_in_the_readers_language(
    base: str, path: str, status: int, says: str
) -> None:
    """An unknown assignment or point, a bad date, number or body: a page with the status
    code, in the page's language, never a traceback."""
    response = get(base + path)
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert says in text(response)
    assert "Traceback" not in response.text


def test_every_response_carries_the_security_headers(base: str) -> None:
    """Pages, errors, refused methods, the health check and the stylesheet: the strict CSP,
    nosniff, no referrer, no framing; nothing but the stylesheet may be cached."""
    responses = {
        "page": get(base + "sv/"),
        "point": get(base + f"en/assignments/{A}/3/"),
        "404": get(base + "sv/assignments/nope/"),
        "400": get(base + "sv/backlog/?as_of=x"),
        "405": requests.delete(base + "sv/", timeout=10),
        "health": get(base + "healthz"),
        "redirect": get(base),
    }
    for name, response in responses.items():
        assert response.headers["Content-Security-Policy"] == CSP, name
        assert response.headers["X-Content-Type-Options"] == "nosniff", name
        assert response.headers["Referrer-Policy"] == "no-referrer", name
        assert response.headers["X-Frame-Options"] == "DENY", name
        assert response.headers["Cache-Control"] == "no-store", name
        assert "waitress" not in response.headers.get("Server", "").lower(), name
    style = get(base + "static/style.css")
    assert style.headers["Content-Security-Policy"] == CSP
    assert style.headers["Content-Type"].startswith("text/css")
    assert "max-age" in style.headers["Cache-Control"]
    assert "set-cookie" not in {k.lower() for r in responses.values() for k in r.headers}


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"])
def test_only_get_and_head_are_answered(base: str, method: str) -> None:
    response = requests.request(method, base + "sv/", timeout=10, allow_redirects=False)
    assert response.status_code == 405
    assert requests.head(base + "sv/", timeout=10).status_code == 200


def test_healthz_says_ok_and_nothing_else(base: str) -> None:
    response = get(base + "healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_an_unreachable_database_is_503_not_a_traceback() -> None:
    """The health check says unavailable (and nothing more); a page says so in words."""
    with serve_web("postgresql+psycopg://council@127.0.0.1:9/council") as served:
        health = get(served + "healthz")
        assert health.status_code == 503
        assert health.json() == {"status": "unavailable"}
        page = get(served + "sv/")
        assert page.status_code == 503
        assert "Databasen går inte att nå just nu." in text(page)
        assert "127.0.0.1:9" not in page.text


# --- it writes nothing -----------------------------------------------------------------


def test_browsing_every_page_changes_nothing(tmp_path: Path) -> None:
    """After every page type in both languages, the database is byte for byte the same
    dump as before."""
    url = sqlite_with_history(tmp_path)
    before = list(sqlite3.connect(tmp_path / "council.db").iterdump())
    with serve_web(url) as served:
        for lang in ("sv", "en"):
            for path in ("", f"assignments/{A}/", f"assignments/{A}/3/", "backlog/",
                         f"events/?assignment={A}", "assignments/x/"):  # fmt: skip
                assert get(f"{served}{lang}/{path}").status_code in (200, 404)
    assert list(sqlite3.connect(tmp_path / "council.db").iterdump()) == before


def test_the_web_views_database_refuses_writes(db: sa.Engine, database_url: str) -> None:
    """Opened read-only, the database refuses a write the engine attempts: SQLite's
    query_only, PostgreSQL's read-only transactions."""
    history(Engine(db=db, definitions=load([DEFINITIONS]), calendar=Calendar(),
                   timezone=STOCKHOLM))  # fmt: skip
    reading = read_only_engine(database_url)
    point = reading.definitions.assignment(A).point(3)
    state, _ = reading.point_state(point)
    assert len(state.notes) >= 2  # it reads
    with pytest.raises(sa.exc.DBAPIError, match=r"(?i)read.?only"):
        reading.act(point, AddNote(actor="sara.nilsson", text="x"), now=at("2025-03-31T12:00"))
    reading.db.dispose()


# --- off loopback: a login -------------------------------------------------------------


def test_off_loopback_without_a_login_method_it_refuses_to_start(
    database: str, tmp_path: Path
) -> None:
    """`council serve --host ADDRESS` off loopback with no login configured: one line on
    stderr, exit 1, nothing served."""
    address = own_address()
    result = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--host", address, "--port", "0"],
        env=_env(database, tmp_path), cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines == [
        f"error: council serve on {address} (not loopback) requires a login: set "
        "COUNCIL_WEB_PASSWORD_FILE or COUNCIL_WEB_OIDC_ISSUER (docs/web.md)"
    ]


def test_council_serve_on_loopback_serves_until_stopped(database: str, tmp_path: Path) -> None:
    """The command itself: it says where it listens, answers, and stops on SIGTERM."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import cli; cli.main()", "serve", "--port", "0"],
        env=_env(database, tmp_path), cwd=ROOT, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert process.stderr is not None
        line = process.stderr.readline()
        found = re.search(r"serving the web view on (http://127\.0\.0\.1:\d+/)", line)
        assert found, line
        wait_until_up(found.group(1) + "healthz")
        assert get(found.group(1) + f"sv/assignments/{A}/").status_code == 200
    finally:
        process.terminate()
        code = process.wait(timeout=20)
        if process.stderr is not None:
            process.stderr.close()
    assert code == 0


def _env(database: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_") and k != "CI"}
    env.update(COUNCIL_DATABASE_URL=database, COUNCIL_DEFINITIONS=str(DEFINITIONS),
               COUNCIL_VAR_DIR=str(tmp_path / "var"))  # fmt: skip
    return env


def _csrf(response: requests.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', response.text)
    assert found, "no CSRF token in the form"
    return found.group(1)


def test_off_loopback_a_request_without_a_login_is_refused(
    database: str, password_file: Path
) -> None:
    """A page redirects a browser to the login; anything not asking for HTML gets 401;
    the health check answers anyone."""
    address = own_address()
    with serve_web(database, address, web_password_file=password_file) as served:
        assert served.startswith(f"http://{address}:")
        page = get(served + f"sv/assignments/{A}/3/")
        assert page.status_code == 302
        assert page.headers["Location"] == f"/sv/login?next=/sv/assignments/{A}/3/"
        assert get(served + "en/events/", headers={"Accept": "application/json"}).status_code == 401
        assert INTERNAL_NOTE not in page.text
        assert get(served + "healthz").status_code == 200
        login = get(served + "sv/login")
        cookie = login.headers["Set-Cookie"]
        assert cookie.startswith("__Host-council=")
        for part in ("Secure", "HttpOnly", "SameSite=Lax", "Path=/"):
            assert part in cookie
        assert "Domain=" not in cookie


def test_password_login_works_and_a_wrong_password_is_refused(
    database: str, password_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A wrong password: 401 and a log line without the password; the right one: in, with
    a session whose logout needs its CSRF token. (Plain http here, so the cookie is not
    Secure: web_secure_cookies=false.)"""
    address = own_address()
    with serve_web(database, address, web_password_file=password_file,
                   web_secure_cookies=False) as served:  # fmt: skip
        browser = requests.Session()
        form = browser.get(served + f"sv/login?next=/sv/assignments/{A}/3/", timeout=10)
        assert f'name="next" value="/sv/assignments/{A}/3/"' in form.text
        guess = {"csrf": _csrf(form), "user": "sara", "password": "fel lösenord"}
        with captured_logs(monkeypatch, web.login) as logged:
            wrong = browser.post(served + "sv/login", data=guess, timeout=10)
        assert wrong.status_code == 401
        assert "Fel användarnamn eller lösenord." in wrong.text
        assert [e["event"] for e in logged] == ["web.login_failed"]
        assert logged[0]["user"] == "sara"
        assert "fel lösenord" not in repr(logged)
        no_token = browser.post(served + "sv/login", data={"user": "sara", "password": PASSWORD},
                                timeout=10, allow_redirects=False)  # fmt: skip
        assert no_token.status_code == 403
        right = browser.post(served + "sv/login", data={
            "csrf": _csrf(form), "user": "sara", "password": PASSWORD,
            "next": f"/sv/assignments/{A}/3/"},
            timeout=10, allow_redirects=False)  # fmt: skip
        assert right.status_code == 303
        assert right.headers["Location"] == f"/sv/assignments/{A}/3/"
        point = browser.get(served + f"sv/assignments/{A}/3/", timeout=10)
        assert INTERNAL_NOTE in point.text
        assert "Inloggad som sara" in point.text
        assert browser.post(served + "logout", data={"csrf": "forged"}, timeout=10,
                            allow_redirects=False).status_code == 403  # fmt: skip
        out = browser.post(served + "logout", data={"csrf": _csrf(point), "lang": "sv"},
                           timeout=10, allow_redirects=False)  # fmt: skip
        assert out.status_code == 303
        assert browser.get(served + "sv/", timeout=10, allow_redirects=False).status_code == 302


def test_failed_logins_are_throttled(database: str, password_file: Path) -> None:
    address = own_address()
    with serve_web(database, address, web_password_file=password_file,
                   web_secure_cookies=False) as served:  # fmt: skip
        browser = requests.Session()
        token = _csrf(browser.get(served + "en/login", timeout=10))
        codes = [
            browser.post(
                served + "en/login",
                data={"csrf": token, "user": "sara", "password": f"guess {n}"},
                timeout=10,
            ).status_code
            for n in range(6)
        ]
        assert codes == [401] * 5 + [429]
        right = browser.post(served + "en/login", data={
            "csrf": token, "user": "sara", "password": PASSWORD}, timeout=10)  # fmt: skip
        assert right.status_code == 429  # even the right password waits out the window


# --- OpenID Connect --------------------------------------------------------------------


@pytest.fixture
def provider() -> Iterator[Any]:
    with oidc_provider() as found:
        yield found


def _oidc_web(database: str, provider: Any, tmp_path: Path, **extra: Any) -> Any:
    secret = tmp_path / "oidc-client-secret"
    secret.write_text(provider.client_secret + "\n")
    settings: dict[str, Any] = {
        "web_oidc_issuer": provider.issuer, "web_oidc_client_id": provider.client_id,
        "web_oidc_client_secret_file": secret, "web_secure_cookies": False,
        "web_oidc_allowed_emails": ["Sara.Nilsson@kommun.example"],
    }  # fmt: skip
    return serve_web(database, own_address(), **(settings | extra))


def test_an_oidc_login_lets_a_coordinator_in(database: str, provider: Any, tmp_path: Path) -> None:
    """The whole authorization-code flow: the view sends the browser to the provider (with
    state, nonce and a PKCE challenge), the provider back with a code, the view exchanges
    it (with the verifier) and checks the signed ID token."""
    with _oidc_web(database, provider, tmp_path) as served:
        browser = requests.Session()
        login = browser.get(served + f"en/login?next=/en/assignments/{A}/3/", timeout=10)
        assert "Log in with your organisation's account" in text(login)
        link = re.search(r'href="(/en/login/oidc\?[^"]+)"', login.text)
        assert link is not None
        page = browser.get(served + html.unescape(link.group(1)).lstrip("/"), timeout=20)
        assert page.status_code == 200
        assert page.url == served + f"en/assignments/{A}/3/"
        assert INTERNAL_NOTE in page.text
        assert "Logged in as sara.nilsson@kommun.example" in page.text
        (exchange,) = provider.exchanges
        assert exchange["grant_type"] == "authorization_code"
        assert exchange["redirect_uri"] == served + "login/oidc/callback"
        assert exchange["code_verifier"]


def test_an_oidc_login_by_group(database: str, provider: Any, tmp_path: Path) -> None:
    provider.email = "someone.else@kommun.example"
    with _oidc_web(database, provider, tmp_path, web_oidc_allowed_emails=[],
                   web_oidc_allowed_groups=["samordnare"]) as served:  # fmt: skip
        browser = requests.Session()
        assert browser.get(served + "sv/login/oidc", timeout=20).url == served + "sv/"


@pytest.mark.parametrize("tamper", ["audience", "audience_with_azp", "signature", "nonce"])
def test_a_forged_or_foreign_id_token_is_refused(
    database: str, provider: Any, tmp_path: Path, tamper: str
) -> None:
    """A token for another client, signed by another key, or carrying another login's
    nonce: refused, and no session."""
    provider.tamper = tamper
    with _oidc_web(database, provider, tmp_path) as served:
        browser = requests.Session()
        refused = browser.get(served + "sv/login/oidc", timeout=20)
        assert refused.status_code == 403
        assert "Inloggningen godtogs inte." in refused.text
        assert browser.get(served + "sv/", timeout=10, allow_redirects=False).status_code == 302


def test_an_oidc_user_not_allowed_is_refused(database: str, provider: Any, tmp_path: Path) -> None:
    provider.email = "intruder@elsewhere.example"
    with _oidc_web(database, provider, tmp_path) as served:
        browser = requests.Session()
        assert browser.get(served + "en/login/oidc", timeout=20).status_code == 403
        assert browser.get(served + "en/", timeout=10, allow_redirects=False).status_code == 302


def test_a_callback_without_a_login_started_is_refused(
    database: str, provider: Any, tmp_path: Path
) -> None:
    """A code and state the browser's session never asked for (a login CSRF): refused."""
    with _oidc_web(database, provider, tmp_path) as served:
        response = get(served + "login/oidc/callback?code=abc&state=forged")
        assert response.status_code == 403
