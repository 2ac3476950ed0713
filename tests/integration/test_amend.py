"""The council amends a running assignment: versions in the store, points carried over.

On a real SQLite file and a real PostgreSQL database, with a copy of the bundled
definitions edited as a council's decision would: a step added after completed work
becomes active and is prompted; an open step removed is closed with a reason; a moved
date moves the open step; a changed owner takes the open step; work done is never
undone; every accepted version is recorded (digest, text, when); the report as of a
day before the amendment renders the same bytes before and after it (and matches its
golden file); a dry run writes nothing. End to end, a real worker mails the prompt of
the added step to a real SMTP server.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.integration.conftest import STOCKHOLM
from tests.integration.servers import SmtpCatcher, WorkerProcess, wait_for
from tests.integration.test_sweep import at, handle
from tests.support import ROOT, assert_golden, copy_definitions
from workflow.amend import amend
from workflow.core import versions
from workflow.core.actions import CompleteStep
from workflow.core.calendar import Calendar
from workflow.core.specs import Language
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.errors import DefinitionDrift, NotPermitted
from workflow.report.model import build_report, end_of_day
from workflow.report.render import Format, render
from workflow.store import tables
from workflow.store import versions as store_versions

LOKAL = "kf-2024-lokalforsorjning"  # point 2: study (per.lund), then decide (per.lund)
GOLDEN = ROOT / "tests" / "fixtures" / "golden"
FILE = Path("assignments") / "lokalforsorjning-2024.yaml"
#: Point 2 after the amendment: a follow-up step after the recommendation.
FOLLOW_UP = """        requires_note: true
      - id: follow-up
        title: {sv: Följ upp rekommendationen, en: Follow up the recommendation}
        after: [decide]
        owner: ulla.wik
        due: 15bd
"""


class Council:
    """The engine over a copy of the bundled definitions, which a test edits and reloads."""

    def __init__(
        self, db: sa.Engine, tmp_path: Path, on_commit: Callable[..., object] | None = None
    ):
        self.db = db
        self.folder = tmp_path / "definitions"
        copy_definitions(self.folder)
        self.on_commit = on_commit
        self.engine = self._engine()

    def _engine(self) -> Engine:
        return Engine(db=self.db, definitions=load([self.folder]), calendar=Calendar(),
                      timezone=STOCKHOLM, on_commit=self.on_commit)  # fmt: skip

    def edit(self, old: str, new: str) -> None:
        """Change the premises assignment's file, as the council's decision says."""
        path = self.folder / FILE
        text = path.read_text(encoding="utf-8")
        assert old in text
        path.write_text(text.replace(old, new, 1), encoding="utf-8")
        self.engine = self._engine()

    def act(self, number: int, action: object, when: dt.datetime) -> None:
        point = self.engine.definitions.assignment(LOKAL).point(number)
        handle(self.engine, list(self.engine.act(point, action, now=when).event_ids), when)  # type: ignore[arg-type]

    def amend(self, when: dt.datetime, **kwargs: object) -> object:
        report = amend(self.engine, LOKAL, actor="erik.sjoberg", now=when, **kwargs)  # type: ignore[arg-type]
        handle(self.engine, report.event_ids, when)
        return report

    def report(self, as_of: dt.date, lang: Language, fmt: Format) -> bytes:
        plan = self.engine.definitions.assignment(LOKAL)
        with self.db.connect() as conn:
            in_force = self.engine.plan_in_force(conn, LOKAL, end_of_day(as_of, STOCKHOLM))
        events = [e for _, e in self.engine.events(assignment=LOKAL)]
        built = build_report(self.engine.definitions, in_force, events, as_of=as_of, tz=STOCKHOLM,
                             lang=lang, calendar=self.engine.calendar)  # fmt: skip
        assert plan.id == in_force.id
        return render(built, fmt)

    def steps(self, number: int) -> dict[str, str]:
        state = self.engine.snapshot(LOKAL)[(LOKAL, number)]
        return {s.id: s.status.value for s in state.steps}


def completed_point_2(council: Council) -> None:
    """Point 2 started on its day and both its steps done by 2024-06-03."""
    start = council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    handle(council.engine, start.event_ids, at("2024-04-02", "09:00"))
    council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-05-06", "08:00"), only=2)
    council.act(2, CompleteStep(actor="per.lund", step="study", note="Förstudien visar att "
                "samlokalisering är möjlig."), at("2024-05-28", "10:00"))  # fmt: skip
    council.act(2, CompleteStep(actor="per.lund", step="decide", note="Vi rekommenderar "
                "samlokalisering i Vega."), at("2024-06-03", "10:00"))  # fmt: skip


@pytest.fixture
def council(db: sa.Engine, tmp_path: Path) -> Council:
    return Council(db, tmp_path)


REPORTS = [(lang, fmt) for lang in Language for fmt in (Format.MARKDOWN, Format.HTML, Format.JSON)]


def test_a_step_added_after_completed_work_becomes_active_and_old_reports_stay(
    council: Council,
) -> None:
    """Point 2 is completed; the council adds a follow-up step after `decide`: amending
    activates it for ulla.wik (prompted; due 15 working days later, midsommarafton off),
    the point is ongoing again; the report as of the day before the amendment gives the
    same bytes as before it (and its golden file)."""
    completed_point_2(council)
    as_of = dt.date(2024, 6, 10)
    before = {(lang, fmt): council.report(as_of, lang, fmt) for lang, fmt in REPORTS}
    for lang in Language:
        golden = GOLDEN / f"report-{LOKAL}-{as_of}-amended-later.{lang.value}.md"
        assert_golden(golden, before[(lang, Format.MARKDOWN)].decode())
    assert council.engine.snapshot(LOKAL)[(LOKAL, 2)].completed_at is not None

    council.edit("        requires_note: true\n\n  - number: 3", FOLLOW_UP + "\n  - number: 3")
    report = council.amend(at("2024-06-12", "09:00"))
    assert report.version == 2  # type: ignore[attr-defined]
    assert report.changes == ["point 2: step 'follow-up' added"]  # type: ignore[attr-defined]
    assert report.points[2] == [  # type: ignore[attr-defined]
        "step follow-up becomes active (ulla.wik is prompted, due 2024-07-04)"
    ]
    assert council.steps(2) == {"study": "done", "decide": "done", "follow-up": "active"}
    state = council.engine.snapshot(LOKAL)[(LOKAL, 2)]
    assert state.completed_at is None
    with council.db.connect() as conn:
        prompted = conn.execute(
            sa.select(tables.events.c.step)
            .join(tables.effects, tables.effects.c.event_id == tables.events.c.id)
            .where(tables.effects.c.kind == "prompt", tables.events.c.step == "follow-up")
        ).scalars().all()  # fmt: skip
    assert prompted == ["follow-up"]

    after = {(lang, fmt): council.report(as_of, lang, fmt) for lang, fmt in REPORTS}
    assert after == before  # the same command, the same bytes
    now_md = council.report(dt.date(2024, 6, 12), Language.SV, Format.MARKDOWN).decode()
    ongoing = now_md.split("## Pågående åtgärder")[1].split("## Åtgärder som ska påbörjas")[0]
    assert "### 2. Utred samlokalisering" in ongoing

    council.act(2, CompleteStep(actor="ulla.wik", step="follow-up"), at("2024-06-20", "10:00"))
    assert council.engine.snapshot(LOKAL)[(LOKAL, 2)].completed_at is not None


def test_every_version_is_recorded_with_its_digest_text_and_time(council: Council) -> None:
    completed_point_2(council)
    council.edit("        requires_note: true\n\n  - number: 3", FOLLOW_UP + "\n  - number: 3")
    council.amend(at("2024-06-12", "09:00"))
    with council.db.connect() as conn:
        found = store_versions.versions(conn, LOKAL)
    assert [(v.number, v.accepted_by) for v in found] == [(1, "erik.sjoberg"), (2, "erik.sjoberg")]
    assert found[0].effective_at == at("2024-04-02", "09:00")
    assert found[1].effective_at == at("2024-06-12", "09:00")
    assert found[1].digest == council.engine.definitions.assignment(LOKAL).digest
    assert "follow-up" in found[1].text
    assert "follow-up" not in found[0].text
    assert versions.from_data(found[1].plan) == council.engine.definitions.assignment(LOKAL)
    assert versions.from_data(found[0].plan).digest == found[0].digest
    events = [e for _, e in council.engine.events(assignment=LOKAL) if e.point is None]
    assert [(e.type.value, e.data) for e in events] == [(
        "definition.amended",
        {"version": 2, "digest": found[1].digest, "changes": ["point 2: step 'follow-up' added"]},
    )]  # fmt: skip


def test_removed_moved_and_reassigned_steps_follow_and_done_work_stays(council: Council) -> None:
    """Point 1: forecast done, inventory and (soon) nothing else open. The amendment moves
    inventory's due date and gives it to ulla.wik, removes the forecast (done: kept) and
    the consult step (pending): inventory is rescheduled and reassigned; the done forecast
    stays in the history and its note in the report."""
    start = council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    handle(council.engine, start.event_ids, at("2024-04-02", "09:00"))
    council.act(1, CompleteStep(actor="ulla.wik", step="forecast", note="Prognosen är klar."),
                at("2024-04-10", "10:00"))  # fmt: skip
    council.edit("        owner: fastighetschef\n        due: 40bd",
                 "        owner: strategisk-lokalplanerare\n        due: 2024-06-14")  # fmt: skip
    report = council.amend(at("2024-04-20", "10:00"))
    assert report.points[1] == [  # type: ignore[attr-defined]
        "step inventory now owned by ulla.wik (was per.lund)",
        "step inventory now due 2024-06-14 (was 2024-05-30)",
    ]
    state = council.engine.snapshot(LOKAL)[(LOKAL, 1)]
    assert (state.step("inventory").owner, state.step("inventory").due) == (
        "ulla.wik", dt.date(2024, 6, 14),
    )  # fmt: skip
    assert state.step("forecast").status.value == "done"


def test_an_open_step_removed_is_closed_and_the_point_completes(council: Council) -> None:
    """Point 2's study done, its recommendation open: the council drops the
    recommendation; it is closed (step.removed, was active) and the point is completed."""
    start = council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-04-02", "09:00"))
    handle(council.engine, start.event_ids, at("2024-04-02", "09:00"))
    council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-05-06", "08:00"), only=2)
    council.act(2, CompleteStep(actor="per.lund", step="study", note="Klar."),
                at("2024-05-28", "10:00"))  # fmt: skip
    council.edit(
        "      - id: decide\n        title: {sv: Lämna rekommendation, en: Make a recommendation}\n"
        "        after: [study]\n        requires_note: true\n",
        "",
    )
    report = council.amend(at("2024-06-03", "09:00"))
    assert report.points[2] == [  # type: ignore[attr-defined]
        "step decide removed (it was active)", "the point is completed"
    ]  # fmt: skip
    assert council.steps(2) == {"study": "done"}
    history = [e.type.value for _, e in council.engine.events(assignment=LOKAL, point=2)]
    assert history[-2:] == ["step.removed", "point.completed"]


def test_a_dry_run_writes_nothing_and_refusals_change_nothing(council: Council) -> None:
    completed_point_2(council)
    council.edit("        requires_note: true\n\n  - number: 3", FOLLOW_UP + "\n  - number: 3")
    count = len(council.engine.events())
    dry = council.amend(at("2024-06-12", "09:00"), dry_run=True)
    assert dry.version == 2  # type: ignore[attr-defined]
    assert len(council.engine.events()) == count
    with council.db.connect() as conn:
        assert len(store_versions.versions(conn, LOKAL)) == 1
    with pytest.raises(NotPermitted):
        amend(council.engine, LOKAL, actor="per.lund", now=at("2024-06-12", "09:00"))
    text = (council.folder / FILE).read_text(encoding="utf-8")
    start, end = text.index("  - number: 2\n"), text.index("  - number: 3\n")
    council.edit(text[start:end], "  - number: 2\n    title: Utredning\n    decision: rejected\n\n")
    with pytest.raises(DefinitionDrift, match=r"running point\(s\) 2 would be removed or decided"):
        amend(council.engine, LOKAL, actor="erik.sjoberg", now=at("2024-06-12", "09:00"))
    assert len(council.engine.events()) == count
    with council.db.connect() as conn:
        assert len(store_versions.versions(conn, LOKAL)) == 1


def test_a_worker_mails_the_prompt_of_the_added_step(
    worker_env: dict[str, str],
    start_worker: Callable[..., WorkerProcess],
    smtp: SmtpCatcher,
    db: sa.Engine,
    publisher: Callable[[int], None],
    tmp_path: Path,
) -> None:
    """Against a real worker and SMTP server: amending the completed point mails ulla.wik
    the prompt of the follow-up step, once."""

    def publish(ids: object) -> None:
        for event_id in ids:  # type: ignore[attr-defined]
            publisher(event_id)

    council = Council(db, tmp_path, on_commit=publish)
    # the worker reads the same files; it reloads them when they change
    start_worker({**worker_env, "COUNCIL_SWEEP_INTERVAL": "3600",
                  "COUNCIL_DEFINITIONS": str(council.folder)})  # fmt: skip
    completed_point_2(council)
    council.edit("        requires_note: true\n\n  - number: 3", FOLLOW_UP + "\n  - number: 3")
    amend(council.engine, LOKAL, actor="erik.sjoberg", now=at("2024-06-12", "09:00"))

    def follow_ups() -> list[str]:
        return [r.envelope_to[0] for r in smtp.received
                if "Follow up the recommendation" in str(r.message["Subject"])
                or "Följ upp rekommendationen" in str(r.message["Subject"])]  # fmt: skip

    wait_for(lambda: len(follow_ups()) == 1, timeout=60, what="the follow-up's prompt",
             progress=lambda: len(smtp.received))  # fmt: skip
    assert follow_ups() == ["ulla.wik@kommun.example"]
    assert len(set(smtp.message_ids())) == len(smtp.received)


def test_council_amend_on_the_command_line(
    database_url: str, db: sa.Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`council amend`: refused before start and for an owner (exit 4), unknown assignment
    (exit 3), nothing to do when unchanged; --dry-run shows the change per point and writes
    nothing; then it applies, and other commands work again."""
    from tests.integration.test_sweep import Council as Cli

    folder = tmp_path / "definitions"
    copy_definitions(folder)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    cli = Cli(database_url, folder, tmp_path / "var")
    assert cli("amend", LOKAL, "--now", "2024-04-01T09:00").exit_code == 4
    assert cli("amend", "no-such-assignment", "--now", "2024-04-01T09:00").exit_code == 3
    cli.ok("start", LOKAL, "--now", "2024-04-02T09:00")
    assert "nothing to amend" in cli.ok("amend", LOKAL, "--now", "2024-04-02T10:00")
    path = folder / FILE
    text = path.read_text(encoding="utf-8")
    moved = text.replace(
        "fastighetschef\n        due: 40bd", "fastighetschef\n        due: 2024-06-14"
    )
    path.write_text(moved, encoding="utf-8")
    refused = cli("complete", f"{LOKAL}/1/inventory", "--as", "per.lund", "--now",
                  "2024-04-03T09:00")  # fmt: skip
    assert refused.exit_code == 4
    assert f"`council amend {LOKAL}`" in refused.stderr
    dry = cli.ok("amend", LOKAL, "--dry-run", "--now", "2024-04-03T09:00")
    assert dry.splitlines() == [
        "change: titles, dates, owners or reminders changed",
        f"{LOKAL}/1: step inventory now due 2024-06-14 (was 2024-05-30)",
        f"would amend {LOKAL} to version 2: nothing was written",
    ]
    owner = cli("amend", LOKAL, "--as", "per.lund", "--now", "2024-04-03T09:00")
    assert owner.exit_code == 4
    assert "may not amend" in owner.stderr
    done = cli.ok("amend", LOKAL, "--now", "2024-04-03T09:05")
    assert done.splitlines()[-1] == f"amended {LOKAL}: version 2 in force (2 events)"
    cli.ok("complete", f"{LOKAL}/1/inventory", "--as", "per.lund", "--now", "2024-04-03T10:00")


def test_a_written_off_point_and_points_not_started_are_left_alone(council: Council) -> None:
    """Point 1 written off, point 2 started by hand, point 4 planned: an amendment moving
    point 2's study date carries point 2 over only; nothing starts point 1 again, and
    point 4 stays planned for its day."""
    from workflow.core.actions import WriteOff

    council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-05-06", "08:00"), only=2)
    council.engine.start(LOKAL, actor="erik.sjoberg", now=at("2024-05-06", "08:05"), only=1)
    council.act(1, WriteOff(actor="erik.sjoberg", reason="Ersätts av ny lokalplan."),
                at("2024-05-07", "10:00"))  # fmt: skip
    council.edit("        due: start+60bd", "        due: start+70bd")
    report = council.amend(at("2024-05-08", "09:00"))
    assert report.started == []  # type: ignore[attr-defined]
    assert report.scheduled == {}  # type: ignore[attr-defined]
    assert list(report.points) == [2]  # type: ignore[attr-defined]
    assert report.points[2] == ["step study now due 2024-08-15 (was 2024-08-01)"]  # type: ignore[attr-defined]
    assert council.engine.planned_starts(LOKAL) == {}  # point 4 was never planned: not now
    rows = council.engine.snapshot(LOKAL)
    assert sorted(n for (_, n) in rows) == [1, 2]
