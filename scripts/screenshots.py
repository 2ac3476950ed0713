"""`make screenshots`: the public site's register and a point page, as a resident sees them.

Builds the site of the bundled definitions (definitions/) from an example history (the
seed assignment's scripted history and later work, the safety assignment started with
its method settled, a public note and a report back requested), as of 31 March 2025,
then takes full-page screenshots with headless Chromium (Playwright driving Debian's
``chromium``, as the tests do: tests/browser.py) of the Swedish register and one point
page, at desktop width (1280) and phone width (390), into var/screenshots/ (``--out``).

    .venv/bin/python -m scripts.screenshots [--out DIR] [--chromium PATH]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
from pathlib import Path

from scripts.seed_history import TZ, A, at, play
from workflow.core.actions import AddNote, CompleteStep
from workflow.core.calendar import Calendar
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.site.publish import build
from workflow.store import connect, migrate

OUT = Path("var/screenshots")
#: The safety assignment, decided in 2025 (public, like the seed assignment).
EST = "kf-2025-trygghet"
AS_OF = dt.date(2025, 3, 31)
SITE_URL = "https://uppfoljning.kommun.example/"
#: The pages: (name, path in the site). The point page has a public note, an overdue mark
#: and a timeline.
PAGES = [("register", "index.html"), ("point", f"uppdrag/{A}/3/index.html")]
#: (name, viewport width, height): the height is the first screen; the shot is the page.
WIDTHS = [("desktop", 1280, 800), ("phone", 390, 844)]
#: As tests/browser.py: headless Chromium kept off the network and quiet.
CHROMIUM_FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def history(engine: Engine) -> None:
    """The example history of the public assignments (the test suite's, in short)."""
    play(engine, later=True)
    engine.start(EST, actor="sara.nilsson", now=at("2025-02-03T08:00"))
    engine.act(engine.definitions.assignment(EST).point(2),
               CompleteStep(actor="amir.hassan", step="metod",
                            note="Analysen utgår från polisens och skolornas statistik."),
               now=at("2025-02-20T09:00"))  # fmt: skip
    engine.act(engine.definitions.assignment(A).point(3),
               AddNote(actor="sara.nilsson", public=True,
                       text="Broschyrerna delas ut på alla skolor under våren."),
               now=at("2025-01-20T10:00"))  # fmt: skip
    engine.request_report(A, as_of=dt.date(2025, 1, 31), language=Language.SV,
                          actor="sara.nilsson", now=at("2025-01-31T15:00"))  # fmt: skip


def build_site(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(f"sqlite:///{tmp}/screenshots.db")
        migrate.upgrade(db)
        engine = Engine(db=db, definitions=load(), calendar=Calendar(), timezone=TZ)
        history(engine)
        build(db, engine.definitions, out, as_of=AS_OF, tz=TZ, site_url=SITE_URL,
              calendar=Calendar())  # fmt: skip
        db.dispose()


def screenshots(site: Path, out: Path, chromium: str) -> list[Path]:
    from playwright.sync_api import sync_playwright

    shots = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        try:
            for width_name, width, height in WIDTHS:
                context = browser.new_context(
                    viewport={"width": width, "height": height}, device_scale_factor=1,
                    locale="sv-SE",
                )  # fmt: skip
                page = context.new_page()
                for page_name, path in PAGES:
                    page.goto((site / path).as_uri())
                    shot = out / f"{page_name}.{width_name}.png"
                    page.screenshot(path=str(shot), full_page=True)
                    shots.append(shot)
                context.close()
        finally:
            browser.close()
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m scripts.screenshots", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    parser.add_argument("--out", type=Path, default=OUT, help=f"(default {OUT})")
    parser.add_argument("--chromium", help="the browser (default: chromium on PATH)")
    args = parser.parse_args(argv)
    chromium = args.chromium or shutil.which("chromium")
    if not chromium or not os.access(chromium, os.X_OK):
        print(f"screenshots: no Chromium at {chromium or 'chromium on PATH'} "
              "(apt-get install chromium, or --chromium PATH)", file=sys.stderr)  # fmt: skip
        return 1
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        site = Path(tmp) / "site"
        build_site(site)
        for shot in screenshots(site, out, chromium):
            print(shot)
    return 0


if __name__ == "__main__":
    sys.exit(main())
