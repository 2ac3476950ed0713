"""The report back to the council, built from the event log of a scripted seed history."""

from __future__ import annotations

import datetime as dt
import io
import json
from html.parser import HTMLParser
from pathlib import Path

import pytest
from click.testing import CliRunner

from cli import main
from scripts.seed_history import AS_OF, TZ, A, play
from tests.support import DEFINITIONS, FIXTURES, assert_golden
from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.engine import Engine
from workflow.report.model import Report, build_report
from workflow.report.render import to_docx, to_html, to_json, to_markdown

GOLDEN = FIXTURES / "golden"


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    """The seed history up to June 2023, and work done after it."""
    play(engine, later=True)
    return engine


def report_of(
    engine: Engine, lang: Language, as_of: dt.date = AS_OF, notes: str = "latest"
) -> Report:
    events = [e for _, e in engine.events(assignment=A)]
    plan = engine.definitions.assignment(A)
    return build_report(
        engine.definitions,
        plan,
        events,
        as_of=as_of,
        tz=TZ,
        lang=lang,
        notes=notes,  # type: ignore[arg-type]
    )


@pytest.mark.parametrize("lang", [Language.SV, Language.EN])
def test_golden_report_as_of_june_2023(seeded: Engine, lang: Language) -> None:
    """As of 2023-06-12 the report reads exactly as the golden file, in both languages."""
    assert_golden(GOLDEN / f"report-{A}-2023-06-12.{lang.value}.md",
                  to_markdown(report_of(seeded, lang)))  # fmt: skip


def test_points_are_grouped_as_the_council_reads_them(seeded: Engine) -> None:
    """1-2 completed, 3-5 ongoing, 6 to be started, in order; 7 is the delivered report back."""
    report = report_of(seeded, Language.SV)
    numbers = {cat: [p.number for p in points] for cat, points in report.groups.items()}
    assert numbers == {
        Category.COMPLETED: [1, 2],
        Category.ONGOING: [3, 4, 5],
        Category.TO_START: [6],
    }
    assert [p.number for p in report.report_back_points] == [7]
    assert report.report_back_points[0].delivered_on == dt.date(2023, 6, 12)
    assert report.summary.model_dump() == {
        "completed": 2, "ongoing": 3, "to_start": 1, "written_off": 0, "rejected": 0, "overdue": 3,
    }  # fmt: skip
    assert report.groups[Category.ONGOING][0].progress == (
        "Arbete pågår med att ta fram broschyrer och affischer riktade mot barn och unga.",
    )


def test_a_report_as_of_june_ignores_later_work(engine: Engine) -> None:
    """Work after the as-of date changes later reports, never the one as of June."""
    play(engine, later=False)
    before = to_markdown(report_of(engine, Language.SV))
    play_later(engine)
    assert to_markdown(report_of(engine, Language.SV)) == before
    autumn = report_of(engine, Language.SV, as_of=dt.date(2023, 9, 30))
    point4 = autumn.groups[Category.ONGOING][1]
    assert point4.progress == ("Rapporteringsvägarna är kartlagda.",)


def play_later(engine: Engine) -> None:
    from scripts.seed_history import LATER, at

    for when, number, command in LATER:
        engine.act(engine.definitions.assignment(A).point(number), command, now=at(when))


def test_all_notes_in_order_when_asked(seeded: Engine) -> None:
    """With notes=all, a point's progress is every note, oldest first."""
    report = report_of(seeded, Language.SV, notes="all")
    point2 = report.groups[Category.COMPLETED][1]
    assert len(point2.progress) == 2
    assert point2.progress[0].startswith("Det finns ett särskilt chefsstöd")


def test_written_off_and_rejected_points_are_listed_apart(engine: Engine) -> None:
    """A written-off point leaves the groups and shows with its reason."""
    from workflow.core.actions import WriteOff

    play(engine)
    point6 = engine.definitions.assignment(A).point(6)
    engine.act(
        point6,
        WriteOff(actor="sara.nilsson", reason="KF 2023-06-12 § 99"),
        now=dt.datetime(2023, 6, 12, 20, tzinfo=TZ),
    )
    report = report_of(engine, Language.EN)
    assert report.groups[Category.TO_START] == ()
    (written_off,) = report.apart[Category.WRITTEN_OFF]
    assert written_off.reason == "KF 2023-06-12 § 99"
    assert "## Written off" in to_markdown(report)


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.headings: list[str] = []
        self._in_heading = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in_heading = tag in ("h1", "h2", "h3")
        if self._in_heading:
            self.headings.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self._in_heading = False


def test_html_is_standalone_and_semantic(seeded: Engine) -> None:
    """The HTML has a lang, one h1, h2 per group, lists and a table; no script, nothing external."""
    html = to_html(report_of(seeded, Language.EN))
    parser = _Structure()
    parser.feed(html)
    tags = [tag for tag, _ in parser.tags]
    assert parser.tags[0] == ("html", {"lang": "en"})
    assert parser.headings.count("h1") == 1
    assert parser.headings.count("h2") == 5  # summary, 3 groups, report back
    assert {"table", "caption", "ul", "li", "dl", "time"} <= set(tags)
    assert not {"script", "img", "link", "iframe", "object"} & set(tags)
    assert "http://" not in html
    assert "https://" not in html
    assert "@media print" in html
    assert '<p lang="sv">' in html  # Swedish notes inside an English report say so


def test_docx_has_real_heading_styles(seeded: Engine) -> None:
    """The DOCX opens with python-docx; titles, groups and points use Heading 1, 2 and 3."""
    from docx import Document

    doc = Document(io.BytesIO(to_docx(report_of(seeded, Language.SV))))
    headings = [
        (p.style.name, p.text) for p in doc.paragraphs if p.style.name.startswith("Heading")
    ]
    assert headings[0][0] == "Heading 1"
    assert headings[0][1].startswith("Återrapportering: Uppdrag att utveckla")
    level2 = [text for style, text in headings if style == "Heading 2"]
    assert level2 == [
        "Sammanfattning",
        "Avslutade åtgärder",
        "Pågående åtgärder",
        "Åtgärder som ska påbörjas",
        "Återrapportering till Kommunfullmäktige",
    ]
    point6 = (
        "6. Initiera ett arbete tillsammans med studieförbunden och andra relevanta "
        "organisationer för utbildning för föreningslivets olika funktionärer"
    )
    assert ("Heading 3", point6) in headings
    assert len(doc.tables) == 1


def test_json_carries_the_whole_model(seeded: Engine) -> None:
    """The JSON parses back into the same report."""
    report = report_of(seeded, Language.SV)
    assert Report.model_validate(json.loads(to_json(report))) == report


# --- the CLI -------------------------------------------------------------------------


@pytest.fixture
def cli_env(seeded: Engine, database_url: str, tmp_path: Path) -> dict[str, str]:
    return {
        "COUNCIL_DATABASE_URL": database_url,
        "COUNCIL_DEFINITIONS": str(DEFINITIONS),
        "COUNCIL_VAR_DIR": str(tmp_path / "var"),
    }


def test_cli_report_format_follows_the_file_extension(
    cli_env: dict[str, str], tmp_path: Path
) -> None:
    """`report -o x.docx` writes DOCX, `-o x.html` HTML; stdout defaults to Markdown."""
    runner = CliRunner()
    for name, magic in [("r.docx", b"PK"), ("r.html", b"<!DOCTYPE html>"), ("r.json", b"{")]:
        result = runner.invoke(
            main, ["report", A, "--as-of", "2023-06-12", "-o", str(tmp_path / name)], env=cli_env
        )
        assert result.exit_code == 0, result.output
        assert (tmp_path / name).read_bytes().startswith(magic)
    result = runner.invoke(
        main, ["report", A, "--as-of", "2023-06-12", "--lang", "en"], env=cli_env
    )
    assert result.stdout == (GOLDEN / f"report-{A}-2023-06-12.en.md").read_text()
    result = runner.invoke(main, ["report", A, "-o", str(tmp_path / "r.pdf")], env=cli_env)
    assert result.exit_code == 2
    assert "cannot tell the format" in result.stderr


def test_cli_backlog_lists_open_points_oldest_first(cli_env: dict[str, str]) -> None:
    """The backlog lists every open point with its age; old ones are flagged."""
    runner = CliRunner()
    result = runner.invoke(
        main, ["backlog", "--as-of", "2023-12-01", "--format", "json"], env=cli_env
    )
    assert result.exit_code == 0, result.output
    items = json.loads(result.stdout)
    seed = [i for i in items if i["assignment"] == A]
    assert [i["point"] for i in seed] == [3, 4, 5, 6]
    assert all(i["age_months"] == 12 and i["old"] for i in seed)  # decided 2022-11-14
    assert seed[0]["overdue"] is True
    assert items == sorted(items, key=lambda i: (i["decided_on"], i["assignment"], i["point"]))
    csv_out = runner.invoke(
        main, ["backlog", "--as-of", "2023-12-01", "--format", "csv"], env=cli_env
    )
    assert csv_out.stdout.splitlines()[0].startswith("assignment,point,address,title")
