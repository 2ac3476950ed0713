"""The public progress site (`council publish`): what it shows, what it never shows, how it
is switched and rebuilt, and that a resident can use it (real Chromium, axe-core).

The history is the bundled one (tests/integration/bundled_history.py): the seed assignment
and the safety assignment are public, the premises assignment is not. Every test builds
from a real database, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import io
import json
import os
import re
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from cli import main
from scripts.seed_history import TZ, A, at
from tests.browser import assert_accessible
from tests.integration.bundled_history import AS_OF_ALL, EST, LOKAL, play_all
from tests.support import DEFINITIONS
from workflow.core.actions import AddNote, CompleteStep, WriteOff
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.site.publish import MANIFEST, build, publish
from workflow.store import connect, migrate

SITE_URL = "https://uppfoljning.kommun.example/"
PUBLIC_NOTE = "Broschyrerna delas ut på alla skolor under våren."
INTERNAL_NOTE = "Internt: vänta med utskicket tills rektorerna fått informationen."
NOW = at("2025-03-31T12:00")


def history(engine: Engine) -> None:
    """The bundled history, a public and an internal note, and a report requested."""
    play_all(engine)
    point = engine.definitions.assignment(A).point(3)
    engine.act(point, AddNote(actor="sara.nilsson", text=PUBLIC_NOTE, public=True),
               now=at("2025-01-20T10:00"))  # fmt: skip
    engine.act(point, AddNote(actor="sara.nilsson", text=INTERNAL_NOTE),
               now=at("2025-01-21T10:00"))  # fmt: skip
    engine.request_report(A, as_of=dt.date(2025, 1, 31), language=Language.SV,
                          actor="sara.nilsson", now=at("2025-01-31T15:00"))  # fmt: skip


def files_of(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def readable(name: str, data: bytes) -> str:
    """A file's text as a reader would see it: HTML unescaped, DOCX unzipped."""
    if name.endswith(".docx"):
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            text = " ".join(z.read(n).decode() for n in z.namelist() if n.endswith(".xml"))
        return html.unescape(re.sub(r"<[^>]+>", "", text))
    return html.unescape(data.decode("utf-8"))


@pytest.fixture
def built(engine: Engine, tmp_path: Path) -> Path:
    history(engine)
    out = tmp_path / "site"
    build(engine.db, engine.definitions, out, as_of=AS_OF_ALL, tz=TZ, site_url=SITE_URL,
          contact="tillganglighet@kommun.example", calendar=Calendar())  # fmt: skip
    return out


def test_site_shows_the_public_assignments_their_points_and_public_events(built: Path) -> None:
    """The register lists the public assignments only; a point's page has its category,
    due date, overdue mark, latest public note and a dated timeline."""
    register = (built / "index.html").read_text()
    assert "Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck" in register
    assert 'href="uppdrag/kf-2022-hedersvald/"' in register
    assert LOKAL not in register
    assert not (built / "uppdrag" / LOKAL).exists()
    point = (built / "uppdrag" / A / "3" / "index.html").read_text()
    assert "<h1>Punkt 3: Säkerställ en samlad information" in point
    assert "Pågående" in point
    assert "Försenad sedan 14 april 2023" in point
    assert PUBLIC_NOTE in point
    assert '<time datetime="2023-02-01T08:00:00+01:00">1 februari 2023</time>: ' in point
    assert "Punkten påbörjades." in point
    assert "Klart: Ta fram innehåll." in point
    english = (built / "en" / "assignments" / A / "3" / "index.html").read_text()
    assert '<html lang="en">' in english
    assert "Overdue since 14 April 2023" in english
    assert f'<p lang="sv">{PUBLIC_NOTE}' in english  # the note, in the language it was written in
    # The filtered indexes, pre-rendered: by status, body and year.
    assert (built / "status" / "pagaende" / "index.html").exists()
    assert EST in (built / "organ" / "socialnamnden" / "index.html").read_text()
    assert A not in (built / "ar" / "2025" / "index.html").read_text().split("<main")[1]
    assert A in (built / "ar" / "2022" / "index.html").read_text()


def test_site_never_shows_what_is_not_public(engine: Engine, built: Path) -> None:
    """No e-mail address, no person, no internal note or reason, nothing of a non-public
    assignment appears in any file of the site: pages, feeds, open data, reports."""
    definitions = engine.definitions
    forbidden = {LOKAL, definitions.assignment(LOKAL).title.get(Language.SV), INTERNAL_NOTE}
    for person in definitions.directory.people.values():
        forbidden |= {person.email, person.name}
    for _, event in engine.events():
        data = event.data
        if event.type == "note.added" and data.get("public"):
            continue
        forbidden |= {v for k, v in data.items() if k in ("note", "text", "reason") and v}
    forbidden -= {"", None}
    site = files_of(built)
    assert len(site) > 60
    assert any(n.endswith(".docx") for n in site)
    leaks = {
        (name, secret)
        for name, data in site.items()
        for secret in forbidden
        if secret in readable(name, data)
    }
    assert leaks == set()
    addresses = {
        found for name, data in site.items()
        for found in re.findall(r"[\w.+-]+@[\w-]+\.[\w.-]+", readable(name, data))
    }  # fmt: skip
    assert addresses <= {"tillganglighet@kommun.example"}  # the configured contact only


def test_open_data_feeds_and_sitemap(built: Path) -> None:
    """The open data has its schema, one file for the register and one per assignment, JSON
    and CSV; the feeds are Atom with the public events; the sitemap lists every page."""
    register = json.loads((built / "data" / "register.json").read_text())
    assert register["schema"] == "council-open-data/1"
    assert register["as_of"] == "2025-03-31"
    assert [a["id"] for a in register["assignments"]] == [A, EST]
    one = json.loads((built / "data" / "uppdrag" / f"{A}.json").read_text())["assignment"]
    point3 = next(p for p in one["points"] if p["number"] == 3)
    assert point3["category"] == "ongoing"
    assert point3["overdue"] is True
    assert point3["status_text"] == PUBLIC_NOTE
    csv_lines = (built / "data" / "uppdrag" / f"{A}.csv").read_text().splitlines()
    assert csv_lines[0].startswith("assignment,number,title_sv,title_en,category")
    assert len(csv_lines) == 1 + len(one["points"])
    atom = "{http://www.w3.org/2005/Atom}"
    feed = ET.parse(built / "uppdrag" / A / "feed.xml").getroot()
    entries = feed.findall(f"{atom}entry")
    assert entries
    assert len({e.findtext(f"{atom}id") for e in entries}) == len(entries)
    assert any(PUBLIC_NOTE in (e.findtext(f"{atom}title") or "") for e in entries)
    links = [e.find(f"{atom}link").get("href") for e in entries]  # type: ignore[union-attr]
    assert all(link.startswith(f"{SITE_URL}uppdrag/{A}/") for link in links)
    sitemap = ET.parse(built / "sitemap.xml").getroot()
    locs = {loc.text for loc in sitemap.iter("{http://www.sitemaps.org/schemas/sitemap/0.9}loc")}
    pages = {f"{SITE_URL}{p.relative_to(built).parent}/".replace("/./", "/")
             for p in built.rglob("index.html")}  # fmt: skip
    assert locs == {p.replace(f"{SITE_URL}./", SITE_URL) for p in pages}


def test_delivered_reports_are_offered_with_public_notes_only(built: Path) -> None:
    reports = built / "uppdrag" / A / "rapporter"
    assert sorted(p.name for p in reports.iterdir()) == [
        f"{A}-2025-01-31.sv.docx", f"{A}-2025-01-31.sv.html",
    ]  # fmt: skip
    text = (reports / f"{A}-2025-01-31.sv.html").read_text()
    assert "Återrapportering" in text
    assert PUBLIC_NOTE in text
    assert INTERNAL_NOTE not in text
    assert 'href="rapporter/' not in (built / "uppdrag" / A / "index.html").read_text()
    assert (
        f'href="../../uppdrag/{A}/rapporter/{A}-2025-01-31.sv.docx"'
        in (built / "uppdrag" / A / "index.html").read_text()
    )


def test_as_of_builds_the_site_as_it_stood(engine: Engine, tmp_path: Path) -> None:
    history(engine)
    then = tmp_path / "then"
    build(engine.db, engine.definitions, then, as_of=dt.date(2023, 6, 12), tz=TZ)
    assert not (then / "uppdrag" / EST).exists()  # decided in 2025
    point = (then / "uppdrag" / A / "3" / "index.html").read_text()
    assert PUBLIC_NOTE not in point
    assert "12 juni 2023" in point
    assert not (then / "sitemap.xml").exists()  # no site_url, no sitemap


def _publish(engine: Engine, root: Path, **kwargs: Any) -> Any:
    return publish(engine.db, engine.definitions, root, now=kwargs.pop("now", NOW), tz=TZ,
                   site_url=SITE_URL, calendar=Calendar(), **kwargs)  # fmt: skip


def test_publish_switches_atomically_and_rebuilds_only_what_changed(
    engine: Engine, tmp_path: Path
) -> None:
    """site_dir is a link switched to each new build; a rebuild for one assignment writes
    its pages and the register's, carries the rest over as hard links, and gives the same
    bytes as a full build."""
    history(engine)
    root = tmp_path / "site"
    first = _publish(engine, root)
    assert root.is_symlink()
    assert root.resolve() == first.path
    assert first.full
    point = engine.definitions.assignment(A).point(3)
    for step in ("translate", "distribute"):
        done = CompleteStep(actor="sara.nilsson", step=step, note="Utdelat på alla skolor.")
        engine.act(point, done, now=at("2025-03-31T10:00"))
    second = _publish(engine, root, now=NOW + dt.timedelta(minutes=1), only={A})
    assert root.resolve() == second.path != first.path
    assert not second.full
    assert second.assignments == 1
    assert second.pages < first.pages
    est_page = Path(f"uppdrag/{EST}/1/index.html")
    assert os.stat(first.path / est_page).st_ino == os.stat(second.path / est_page).st_ino
    changed = Path(f"uppdrag/{A}/3/index.html")
    assert b"Avslutad" in (root / changed).read_bytes()
    assert b"Avslutad" not in (first.path / changed).read_bytes()  # the old build is untouched
    full = tmp_path / "full"
    build(engine.db, engine.definitions, full, as_of=AS_OF_ALL, tz=TZ, site_url=SITE_URL,
          calendar=Calendar())  # fmt: skip
    assert files_of(full) == files_of(root)
    # Another day, or other definitions, rebuild everything.
    third = _publish(engine, root, now=NOW + dt.timedelta(days=1), only={A})
    assert third.full
    assert third.assignments == 2


def test_publish_removes_an_assignment_no_longer_public(engine: Engine, tmp_path: Path) -> None:
    history(engine)
    root = tmp_path / "site"
    _publish(engine, root)
    private = dataclasses.replace(engine.definitions.assignment(EST), public=False)
    definitions = dataclasses.replace(
        engine.definitions, assignments={**engine.definitions.assignments, EST: private}
    )
    publish(engine.db, definitions, root, now=NOW, tz=TZ, only={EST})
    assert not (root / "uppdrag" / EST).exists()
    assert EST not in (root / "index.html").read_text()


def test_publish_refuses_a_real_directory(engine: Engine, tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    with pytest.raises(Exception, match="is a directory, not the link"):
        _publish(engine, tmp_path / "site")


def test_a_written_off_point_shows_the_councils_reason(engine: Engine, tmp_path: Path) -> None:
    history(engine)
    engine.act(engine.definitions.assignment(A).point(6),
               WriteOff(actor="sara.nilsson", reason="KF 2025-03-24 § 40"),
               now=at("2025-03-25T09:00"))  # fmt: skip
    out = tmp_path / "site"
    build(engine.db, engine.definitions, out, as_of=AS_OF_ALL, tz=TZ)
    page_ = (out / "uppdrag" / A / "6" / "index.html").read_text()
    assert "Avskriven" in page_
    assert "KF 2025-03-24 § 40" in page_


# --- the command ---


def test_council_publish(database_url: str, tmp_path: Path) -> None:
    """`council publish -o DIR` builds a site; without a place, or with --as-of on the live
    site, it says so in one line (exit 2); into a non-empty directory, exit 1."""
    env = {
        "COUNCIL_DATABASE_URL": database_url, "COUNCIL_DEFINITIONS": str(DEFINITIONS),
        "COUNCIL_VAR_DIR": str(tmp_path / "var"), "COUNCIL_ACTOR": "sara.nilsson",
        "COUNCIL_SITE_DIR": None,
    }  # fmt: skip
    runner = CliRunner()
    assert runner.invoke(main, ["db", "upgrade"], env=env).exit_code == 0
    assert runner.invoke(main, ["start", A, "--now", "2022-12-01T09:00"], env=env).exit_code == 0
    done = runner.invoke(main, ["publish", "-o", str(tmp_path / "out")], env=env)
    assert done.exit_code == 0, done.output
    assert "published 2 public assignment(s)" in done.output  # one not started yet
    assert (tmp_path / "out" / "uppdrag" / A / "1" / "index.html").exists()
    again = runner.invoke(main, ["publish", "-o", str(tmp_path / "out")], env=env)
    assert again.exit_code == 1
    assert "is not an empty directory" in again.output
    nowhere = runner.invoke(main, ["publish"], env=env)
    assert nowhere.exit_code == 2
    assert "no site_dir is configured" in nowhere.output
    live = runner.invoke(main, ["publish", "--as-of", "2023-01-01"],
                         env={**env, "COUNCIL_SITE_DIR": str(tmp_path / "site")})  # fmt: skip
    assert live.exit_code == 2
    assert "give -o DIR" in live.output
    bad = runner.invoke(
        main, ["publish", "-o", str(tmp_path / "x"), "--as-of", "tomorrow"], env=env
    )
    assert bad.exit_code == 2
    assert "is not a date" in bad.output
    site_dir = tmp_path / "site"
    done = runner.invoke(main, ["publish"], env={**env, "COUNCIL_SITE_DIR": str(site_dir)})
    assert done.exit_code == 0
    assert site_dir.is_symlink()
    assert json.loads((site_dir / MANIFEST).read_text())["assignments"] == [A, EST]
    for result in (again, nowhere, live, bad):
        assert "Traceback" not in result.output


# --- in a browser ---


@pytest.fixture(scope="module")
def browsed_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One site for the browser tests (on SQLite: the pages do not depend on the database)."""
    from tests.integration.conftest import STOCKHOLM
    from workflow.definitions.loader import load

    tmp = tmp_path_factory.mktemp("browsed")
    db = connect(f"sqlite:///{tmp / 'council.db'}")
    migrate.upgrade(db)
    definitions: Definitions = load([DEFINITIONS])
    engine = Engine(db=db, definitions=dataclasses.replace(definitions, occasions={}),
                    calendar=Calendar(), timezone=STOCKHOLM)  # fmt: skip
    history(engine)
    out = tmp / "site"
    build(db, engine.definitions, out, as_of=AS_OF_ALL, tz=TZ, site_url=SITE_URL)
    yield out
    db.dispose()


def test_a_resident_navigates_the_site_in_a_browser(
    browsed_site: Path,
    page: Any,
    serve_directory: Any,
) -> None:
    """From the register to a point and back by the breadcrumbs, the language switch, the
    skip link first under the keyboard with a visible focus, and every page type without
    an axe-core violation (WCAG 2.1 A/AA and best practice)."""
    base = serve_directory(browsed_site)
    page.goto(base)
    checked = assert_accessible(page)
    assert {"color-contrast", "html-has-lang", "landmark-one-main", "skip-link"} <= checked
    page.keyboard.press("Tab")
    focused = page.evaluate("document.activeElement.textContent")
    assert focused == "Hoppa till innehållet"
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    page.get_by_role("link", name="Uppdrag att utveckla arbetet mot hedersrelaterat våld").click()
    assert page.url == f"{base}uppdrag/{A}/"
    assert_accessible(page)
    page.get_by_role("link", name=re.compile(r"^Punkt 3: ")).click()
    assert page.url == f"{base}uppdrag/{A}/3/"
    assert page.locator("h1").inner_text().startswith("Punkt 3: ")
    assert_accessible(page)
    page.get_by_role("navigation", name="Du är här").get_by_role(
        "link", name="Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck"
    ).click()
    assert page.url == f"{base}uppdrag/{A}/"
    page.get_by_role("link", name="English").click()
    assert page.url == f"{base}en/assignments/{A}/"
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("h2").first.inner_text() == "Points"
    assert_accessible(page)
    page.get_by_role("link", name="All assignments").click()
    assert page.url == f"{base}en/"
    page.get_by_role("link", name="Social Services Committee").first.click()
    assert page.url == f"{base}en/bodies/socialnamnden/"
    assert_accessible(page)
    for path in ("status/pagaende/", "tillganglighet/", "en/accessibility/", "404.html",
                 f"en/assignments/{EST}/2/", "ar/2025/"):  # fmt: skip
        page.goto(base + path)
        assert_accessible(page)
    assert "tillganglighet@kommun.example" not in page.content()  # no contact configured here


def test_a_personal_number_never_reaches_the_site(engine: Engine, tmp_path: Path) -> None:
    """Commands refuse a personal identity number in a note; a public note written around
    the guard (a row from before it, or by hand) is still kept off the site."""
    from workflow import store
    from workflow.core.events import Event, EventType, NoteAdded

    history(engine)
    leaked = "Kontakta 19121212-1212 om broschyrerna."
    with engine.db.begin() as conn:
        store.append_events(conn, [Event(
            type=EventType.NOTE_ADDED, assignment=A, point=3, actor="sara.nilsson",
            occurred_at=at("2025-02-01T10:00"), payload=NoteAdded(text=leaked, public=True),
        )], now=at("2025-02-01T10:00"))  # fmt: skip
    out = tmp_path / "site"
    build(engine.db, engine.definitions, out, as_of=AS_OF_ALL, tz=TZ)
    site = files_of(out)
    assert not [name for name, data in site.items() if "19121212" in readable(name, data)]
    point = (out / "uppdrag" / A / "3" / "index.html").read_text()
    assert PUBLIC_NOTE in point  # the latest public note that may be shown
