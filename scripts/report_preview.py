"""`make report-preview`: the seed's report as of June 2023, as HTML and a screenshot.

Writes var/report-preview.{sv,en}.html and var/report-preview.{sv,en}.png
(the screenshot needs Chromium: `apt-get install chromium`).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.seed_history import AS_OF, TZ, A, play
from workflow.core.calendar import Calendar
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.report.model import build_report
from workflow.report.render import to_html
from workflow.store import connect, migrate

OUT = Path("var")
FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--hide-scrollbars", "--window-size=1000,2200",
]  # fmt: skip


def main() -> int:
    OUT.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        db = connect(f"sqlite:///{tmp}/preview.db")
        migrate.upgrade(db)
        engine = Engine(db=db, definitions=load(), calendar=Calendar(), timezone=TZ)
        play(engine, later=True)
        events = [e for _, e in engine.events(assignment=A)]
        db.dispose()
        browser = shutil.which("chromium")
        for lang in Language:
            report = build_report(
                engine.definitions, engine.definitions.assignment(A), events,
                as_of=AS_OF, tz=TZ, lang=lang,
            )  # fmt: skip
            page = OUT / f"report-preview.{lang.value}.html"
            page.write_text(to_html(report))
            print(f"wrote {page}")
            if browser is None:
                print("no chromium on PATH: no screenshot (apt-get install chromium)")
                continue
            shot = OUT / f"report-preview.{lang.value}.png"
            subprocess.run(  # noqa: S603 - our own file and the system's chromium
                [browser, *FLAGS, f"--user-data-dir={tmp}/profile", f"--screenshot={shot}",
                 page.resolve().as_uri()],
                check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            print(f"wrote {shot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
