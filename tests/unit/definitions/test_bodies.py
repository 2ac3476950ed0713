"""Bodies and reporting occasions in the definitions: references by id, chiefs, days."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

from workflow.core.calendar import Calendar
from workflow.definitions.loader import check, load

REPO = Path(__file__).resolve().parents[3]
BASE = REPO / "tests" / "fixtures" / "base"
BUNDLED = REPO / "definitions"

BODIES = """\
bodies:
  - {id: kf, name: {sv: Kommunfullmäktige, en: The Municipal Council}, chief: registrator}
  - {id: ks, name: Kommunstyrelsen, chief: direktor}
  - id: son
    name: {sv: Socialnämnden, en: The Social Services Committee}
    chief: cecilia.ek
    registrar: registrator@kommun.example
"""


def _tree(tmp_path: Path, assignment_head: str, extra: dict[str, str] | None = None) -> Path:
    """The base tree with bodies declared and its assignment's head replaced."""
    root = tmp_path / "defs"
    shutil.copytree(BASE, root)
    (root / "bodies.yaml").write_text(BODIES, encoding="utf-8")
    path = root / "assignments" / "base-2024.yaml"
    text = path.read_text(encoding="utf-8")
    _, points = text.split("points:\n", 1)
    path.write_text(assignment_head + "points:\n" + points, encoding="utf-8")
    for name, body in (extra or {}).items():
        (root / name).write_text(body, encoding="utf-8")
    return root


HEAD = """\
id: base-2024
title: Ett giltigt uppdrag
reference: KS 2024/1
decided_by: kf
decided_on: 2024-01-15
assigned_to: {lead: ks, co_owners: [son]}
coordinator: registrator
report_back: 2024-12-16
tags: [budget]
"""


def test_an_assignment_names_declared_bodies_and_reports_show_their_names(tmp_path):
    definitions = load([_tree(tmp_path, HEAD)])
    plan = definitions.assignment("base-2024")
    assert (plan.decided_by, plan.lead, plan.co_owners, plan.receiver) == ("kf", "ks", ("son",),
                                                                          "kf")  # fmt: skip
    assert plan.involves("son")
    assert plan.involves("ks")
    assert not plan.involves("kf")
    assert definitions.body_name("son", "en") == "The Social Services Committee"
    assert definitions.body_name("ks", "en") == "Kommunstyrelsen", "only Swedish: falls back"
    assert definitions.bodies["son"].chief == "cecilia.ek"
    assert definitions.bodies["kf"].chief == "bo.berg", "a role resolves to its holder"
    assert definitions.summary().startswith("3 people, 3 bodies, 2 workflows")


def test_an_unknown_body_is_a_definition_error_with_its_line(tmp_path):
    head = HEAD.replace("co_owners: [son]", "co_owners: [son, bun]").replace(
        "decided_by: kf", "decided_by: Kommunfullmäktige"
    )
    definitions, problems = check([_tree(tmp_path, head)])
    assert definitions is None
    shown = [f"{Path(p.path).name}:{p.line}:{p.column}: {p.message}" for p in problems]
    assert shown == [
        "base-2024.yaml:4:13: unknown body 'Kommunfullmäktige' (bodies.yaml declares: kf, ks, son)",
        "base-2024.yaml:6:42: unknown body 'bun' (bodies.yaml declares: kf, ks, son)",
    ]


def test_a_step_owned_by_a_body_prompts_its_chief(tmp_path):
    root = _tree(tmp_path, HEAD)
    path = root / "assignments" / "base-2024.yaml"
    text = path.read_text(encoding="utf-8")
    owned = text.replace(
        "{id: one, title: Ett, owner: bo.berg}", "{id: one, title: Ett, owner: son}"
    )
    path.write_text(owned, encoding="utf-8")
    plan = load([root]).assignment("base-2024")
    assert plan.point(3).step("one").owner == "cecilia.ek"


def test_occasions_fall_on_their_day_and_cover_by_body_and_tag(tmp_path):
    occasions = """\
occasions:
  - id: tertial-1
    name: {sv: Tertialrapport 1, en: First tertial report}
    month: 4
    coordinator: registrator
    remind: [-10bd]
  - id: son-arsbokslut
    name: Socialnämndens årsbokslut
    month: 12
    on: 31
    coordinator: cecilia.ek
    covers: {bodies: [son]}
    report_to: son
  - id: budget
    name: Budgetuppföljning
    month: 9
    on: first-business-day
    coordinator: bo.berg
    covers: {tags: [budget], bodies: [kf]}
"""
    definitions = load([_tree(tmp_path, HEAD, {"occasions.yaml": occasions})])
    calendar = Calendar()
    tertial = definitions.occasions["tertial-1"]
    assert tertial.day(2027, calendar) == dt.date(2027, 4, 30)  # a Friday
    assert tertial.day(2026, calendar) == dt.date(2026, 4, 30)  # a Thursday
    assert tertial.day(2028, calendar) == dt.date(2028, 4, 28)  # the 30th is a Sunday
    assert definitions.occasions["son-arsbokslut"].day(2027, calendar) == dt.date(2027, 12, 31)
    assert definitions.occasions["budget"].day(2027, calendar) == dt.date(2027, 9, 1)
    plan = definitions.assignment("base-2024")
    assert tertial.covers(plan), "no selection: every assignment"
    assert definitions.occasions["son-arsbokslut"].covers(plan), "a co-owning body"
    assert not definitions.occasions["budget"].covers(plan), "tag matches, body does not"
    assert tertial.coordinator == "bo.berg"


def test_the_bundled_definitions_declare_bodies_and_occasions():
    definitions = load([BUNDLED])
    assert set(definitions.bodies) >= {"kf", "ks", "socialnamnden"}
    assert set(definitions.occasions) == {"tertial-1", "delarsrapport", "arsredovisning"}
    for plan in definitions.assignments.values():
        assert plan.decided_by in definitions.bodies
        assert plan.lead in definitions.bodies
        assert all(b in definitions.bodies for b in plan.co_owners)
