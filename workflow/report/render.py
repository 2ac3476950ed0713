"""Rendering a report (:class:`~workflow.report.model.Report`) or a register
(:class:`~workflow.report.register.Register`): Markdown, standalone HTML, JSON, CSV and DOCX.

Labels exist in Swedish and English; dates follow the report's language. The
HTML is accessible (``lang``, real headings, lists and tables, good contrast,
a print stylesheet) and self-contained: no scripts, no external resources.
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any

from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.mail.templating import environment, format_date, md_escape
from workflow.report.files import reproducible_zip, write_csv
from workflow.report.model import APART, GROUPS, Report, ReportDuty, ReportPoint
from workflow.report.register import Register, RegisterRow, assignment_category, work_points

#: The report's templates (HTML and Markdown).
TEMPLATES = Path(__file__).parent / "templates"


class Format(StrEnum):
    MARKDOWN = "md"
    HTML = "html"
    DOCX = "docx"
    JSON = "json"
    CSV = "csv"


LABELS: dict[Language, dict[str, str]] = {
    Language.SV: {
        "report": "Återrapportering",
        "reference": "Diarienummer",
        "decided": "Beslut",
        "given_to": "Uppdraget gavs till",
        "co_owners": "Medansvariga",
        "coordinator": "Samordnare",
        "report_back": "Återrapporteras senast",
        "as_of": "Läget per",
        "summary": "Sammanfattning",
        "category": "Kategori",
        "count": "Antal punkter",
        "overdue_count": "Varav försenade",
        Category.COMPLETED: "Avslutade åtgärder",
        Category.ONGOING: "Pågående åtgärder",
        Category.TO_START: "Åtgärder som ska påbörjas",
        Category.WRITTEN_OFF: "Avskrivna punkter",
        Category.REJECTED: "Punkter som fått avslag",
        "report_back_points": "Återrapportering till {receiver}",
        "rejected_text": "Avslag – {decision}.",
        "all_skipped": "Alla moment hoppades över.",
        "owner": "Ansvarig",
        "due": "Klart senast",
        "overdue": "Försenad",
        "late_since": "Försenad sedan {date}",
        "at_risk": "Snart försenad",
        "no_progress": "Ingen lägesbeskrivning ännu.",
        "delivered": "Återrapporterad {date}.",
        "not_delivered": "Ska återrapporteras senast {date}.",
        "reason": "Skäl",
        "none": "Inga punkter.",
        "duty": "{title}: {done} klara, {skipped} överhoppade, {missed} missade, {open} pågående",
        "duty_ended": "avslutad",
        "duty_latest": "Senast:",
        "register": "Uppdragslista",
        "register_to": "Uppdragslista till {receiver}",
        "selection": "Urval",
        "assignments_count": "Antal uppdrag",
        "assignments_by_status": "Uppdrag per status",
        "points_by_category": "Punkter per kategori",
        "status": "Status",
        "no_assignments": "Inga uppdrag.",
        "back_to_register": "Tillbaka till uppdragslistan",
        "col_reference": "Diarienummer",
        "col_decided": "Beslut",
        "col_title": "Uppdrag",
        "col_lead": "Ansvarig",
        "col_due": "Återrapporteras senast",
        "col_overdue": "Försenade punkter",
        "col_status": "Senaste lägesbeskrivning",
        "col_point": "Punkt",
        "col_point_title": "Punktens rubrik",
        "col_category": "Kategori",
        "col_owner": "Ansvarig för punkten",
        "col_point_due": "Klart senast",
        "col_reason": "Skäl",
        "col_id": "Uppdragets id",
        "col_point_overdue": "Försenad",
        "yes": "ja",
        "no": "nej",
        "a_completed": "Avslutat",
        "a_ongoing": "Pågående",
        "a_to_start": "Ska påbörjas",
        "a_written_off": "Avskrivet",
        "a_rejected": "Avslag",
    },
    Language.EN: {
        "report": "Report back",
        "reference": "Reference",
        "decided": "Decision",
        "given_to": "Assigned to",
        "co_owners": "Co-owners",
        "coordinator": "Coordinator",
        "report_back": "Report back by",
        "as_of": "Status as of",
        "summary": "Summary",
        "category": "Category",
        "count": "Points",
        "overdue_count": "Of which overdue",
        Category.COMPLETED: "Completed",
        Category.ONGOING: "Ongoing",
        Category.TO_START: "To be started",
        Category.WRITTEN_OFF: "Written off",
        Category.REJECTED: "Decided against",
        "report_back_points": "Reporting back to {receiver}",
        "rejected_text": "Decided against – {decision}.",
        "all_skipped": "Every step was skipped.",
        "owner": "Owner",
        "due": "Due",
        "overdue": "Overdue",
        "late_since": "Overdue since {date}",
        "at_risk": "At risk",
        "no_progress": "No progress reported yet.",
        "delivered": "Reported back on {date}.",
        "not_delivered": "To be reported back by {date}.",
        "reason": "Reason",
        "none": "No points.",
        "duty": "{title}: {done} done, {skipped} skipped, {missed} missed, {open} open",
        "duty_ended": "ended",
        "duty_latest": "Latest:",
        "register": "Register of assignments",
        "register_to": "Register of assignments for {receiver}",
        "selection": "Selection",
        "assignments_count": "Assignments",
        "assignments_by_status": "Assignments by status",
        "points_by_category": "Points by category",
        "status": "Status",
        "no_assignments": "No assignments.",
        "back_to_register": "Back to the register",
        "col_reference": "Reference",
        "col_decided": "Decision",
        "col_title": "Assignment",
        "col_lead": "Lead",
        "col_due": "Report back by",
        "col_overdue": "Overdue points",
        "col_status": "Latest status",
        "col_point": "Point",
        "col_point_title": "Point title",
        "col_category": "Category",
        "col_owner": "Point owner",
        "col_point_due": "Due",
        "col_reason": "Reason",
        "col_id": "Assignment id",
        "col_point_overdue": "Overdue",
        "yes": "yes",
        "no": "no",
        "a_completed": "Completed",
        "a_ongoing": "Ongoing",
        "a_to_start": "To be started",
        "a_written_off": "Written off",
        "a_rejected": "Decided against",
    },
}


def decision_line(report: Report) -> str:
    """Kommunfullmäktige, 14 november 2022, § 187."""
    parts = [report.decided_by, format_date(report.decided_on, report.language)]
    if report.paragraph:
        parts.append(report.paragraph)
    return ", ".join(parts)


def late_line(point: ReportPoint, report: Report) -> str:
    """Försenad sedan 14 april 2023."""
    labels = LABELS[report.language]
    if point.late_since is None:
        return labels["overdue"]
    return labels["late_since"].format(date=format_date(point.late_since, report.language))


def delivery_line(point: ReportPoint, report: Report) -> str:
    labels = LABELS[report.language]
    if point.delivered_on:
        return labels["delivered"].format(date=format_date(point.delivered_on, report.language))
    return labels["not_delivered"].format(
        date=format_date(point.due or report.report_back, report.language)
    )


def duty_line(duty: ReportDuty, report: Report) -> str:
    """Lägesbild: 8 klara, 1 överhoppade, 1 missade, 0 pågående (avslutad)."""
    labels = LABELS[report.language]
    line = labels["duty"].format(
        title=duty.title, done=duty.done, skipped=duty.skipped, missed=duty.missed,
        open=duty.open,
    )  # fmt: skip
    return f"{line} ({labels['duty_ended']})" if duty.ended else line


def rejected_line(report: Report) -> str:
    """Avslag – Kommunfullmäktige, 14 november 2022, § 187."""
    return LABELS[report.language]["rejected_text"].format(decision=decision_line(report))


#: What the point macros (templates/_points.*) call, each with the point's report.
HELPERS = {
    "delivery": delivery_line,
    "late": late_line,
    "duty": duty_line,
    "rejected": rejected_line,
    "decision_of": decision_line,
}


def _context(report: Report) -> dict[str, Any]:
    return {
        **HELPERS,
        "r": report,
        "l": LABELS[report.language],
        "lang": report.language,
        "groups": [(cat, report.groups[cat]) for cat in GROUPS],
        "apart": [(cat, report.apart[cat]) for cat in APART if report.apart[cat]],
        "summary_rows": [(cat, getattr(report.summary, cat.value)) for cat in (*GROUPS, *APART)],
        "decision": decision_line(report),
    }


def to_markdown(report: Report) -> str:
    return environment(TEMPLATES, markdown=True).get_template("report.md").render(_context(report))


def to_html(report: Report) -> str:
    return environment(TEMPLATES).get_template("report.html").render(_context(report))


def to_json(report: Report) -> str:
    return json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def to_docx(report: Report) -> bytes:
    """A Word document with real heading styles, for pasting into an agenda; the same
    report gives the same bytes (see :func:`workflow.report.files.reproducible_zip`)."""
    labels = LABELS[report.language]
    doc = _document(f"{labels['report']}: {report.title}", report.language, report.as_of)
    doc.add_heading(f"{labels['report']}: {report.title}", level=1)
    for label, value in _header_rows(report):
        paragraph = doc.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    doc.add_heading(labels["summary"], level=2)
    rows = [(labels[cat], str(count)) for cat, count in _context(report)["summary_rows"]]
    rows.append((labels["overdue_count"], str(report.summary.overdue)))
    _docx_table(doc, [labels["category"], labels["count"]], rows)
    sections = [(labels[cat], points) for cat, points in report.groups.items()]
    sections += [(labels[cat], points) for cat, points in report.apart.items() if points]
    for heading, points in sections:
        doc.add_heading(heading, level=2)
        if not points:
            doc.add_paragraph(labels["none"])
        for point in points:
            _docx_point(doc, point, report, level=3)
    _docx_report_back(doc, report, level=2)
    return _saved(doc, report.as_of)


def _document(title: str, language: Language, as_of: dt.date, *, landscape: bool = False) -> Any:
    """A new A4 document with its properties set from the report, not from the clock."""
    from docx import Document
    from docx.enum.section import WD_ORIENT
    from docx.shared import Mm

    doc = Document()
    props = doc.core_properties
    props.title = title
    props.language = language.value
    props.author = "council"
    props.last_modified_by = "council"
    props.comments = ""
    props.revision = 1
    props.created = props.modified = dt.datetime.combine(as_of, dt.time(0))
    props.last_printed = dt.datetime.combine(as_of, dt.time(0))
    package = doc.part.package  # no thumbnail of python-docx's template page
    for rel_id, rel in list(package.rels.items()):
        if rel.reltype.endswith("/thumbnail"):
            del package.rels[rel_id]
    section = doc.sections[0]
    section.page_width, section.page_height = Mm(210), Mm(297)
    section.left_margin = section.right_margin = Mm(20)
    section.top_margin = section.bottom_margin = Mm(20)
    if landscape:
        section.orientation = WD_ORIENT.LANDSCAPE
        section.page_width, section.page_height = section.page_height, section.page_width
    return doc


def _docx_table(
    doc: Any,
    header: list[str],
    rows: Sequence[Sequence[str]],
    widths: Sequence[int] = (),
    points: int | None = None,
) -> None:
    """A table with a bold header row; ``widths`` in millimetres per column, set on the
    column (which Word reads) and on every cell (which LibreOffice reads); ``points``, the
    text size."""
    from docx.shared import Mm, Pt

    table = doc.add_table(rows=1, cols=len(header))
    table.style = "Table Grid"
    for cell, text in zip(table.rows[0].cells, header, strict=True):
        cell.text = text
        for run in cell.paragraphs[0].runs:
            run.bold = True
    for row in rows:
        for cell, text in zip(table.add_row().cells, row, strict=True):
            cell.text = text
    if points is not None:
        for run in (run for row in table.rows for cell in row.cells
                    for run in cell.paragraphs[0].runs):  # fmt: skip
            run.font.size = Pt(points)
    if widths:
        table.autofit = False
        for column, width in zip(table.columns, widths, strict=True):
            column.width = Mm(width)
            for cell in column.cells:
                cell.width = Mm(width)


def _docx_report_back(doc: Any, report: Report, *, level: int) -> None:
    if not report.report_back_points:
        return
    labels = LABELS[report.language]
    doc.add_heading(labels["report_back_points"].format(receiver=report.receiver), level=level)
    for point in report.report_back_points:
        doc.add_heading(f"{point.number}. {point.title}", level=level + 1)
        doc.add_paragraph(delivery_line(point, report))


def _saved(doc: Any, as_of: dt.date) -> bytes:
    out = io.BytesIO()
    doc.save(out)
    return reproducible_zip(out.getvalue(), as_of, application=b"council")


def _header_rows(report: Report) -> list[tuple[str, str]]:
    labels = LABELS[report.language]
    rows = [
        (labels["reference"], report.reference),
        (labels["decided"], decision_line(report)),
        (labels["given_to"], report.lead),
    ]
    if report.co_owners:
        rows.append((labels["co_owners"], ", ".join(report.co_owners)))
    rows += [
        (labels["coordinator"], report.coordinator),
        (labels["report_back"], format_date(report.report_back, report.language)),
        (labels["as_of"], format_date(report.as_of, report.language)),
    ]
    return rows


def _docx_point(doc: Any, point: ReportPoint, report: Report, *, level: int) -> None:
    labels = LABELS[report.language]
    doc.add_heading(f"{point.number}. {point.title}", level=level)
    if point.category is Category.REJECTED:
        doc.add_paragraph(rejected_line(report))
    else:
        for text in point.progress or (labels["no_progress"],):
            doc.add_paragraph(text)
    if point.reason:
        lead = f"{labels['all_skipped']} " if point.all_skipped else ""
        doc.add_paragraph(f"{lead}{labels['reason']}: {point.reason}")
    for duty in point.duties:
        doc.add_paragraph(duty_line(duty, report), style="List Bullet")
        if duty.latest_note:
            doc.add_paragraph(f"{labels['duty_latest']} {duty.latest_note}")
    if facts := _facts(point, report):
        doc.add_paragraph().add_run(" · ".join(facts)).italic = True


def _facts(point: ReportPoint, report: Report) -> list[str]:
    """Owner · due · OVERDUE, under a point."""
    labels = LABELS[report.language]
    facts = []
    if point.owner:
        facts.append(f"{labels['owner']}: {point.owner}")
    if point.due:
        facts.append(f"{labels['due']}: {format_date(point.due, report.language)}")
    if point.overdue:
        facts.append(late_line(point, report).upper())
    elif point.at_risk:
        facts.append(labels["at_risk"])
    return facts


# --- one assignment as CSV -----------------------------------------------------------


def _csv_columns(language: Language) -> list[str]:
    labels = LABELS[language]
    keys = ("col_id", "col_reference", "col_decided", "col_title", "col_lead", "status",
            "col_due", "col_point", "col_point_title", "col_category", "col_owner",
            "col_point_due", "col_point_overdue", "col_status", "col_reason")  # fmt: skip
    return [labels[k] for k in keys]


def _csv_rows(report: Report, status: Category) -> list[list[str]]:
    """One row per point: the assignment's columns repeated, then the point's."""
    labels = LABELS[report.language]
    rows = []
    for point in sorted([*work_points(report), *report.report_back_points], key=lambda p: p.number):
        latest = point.progress[-1] if point.progress else ""
        if point.category is Category.REJECTED:
            latest = rejected_line(report)
        rows.append([
            report.assignment, report.reference, _decided_cell(report.decided_on,
            report.paragraph), report.title, report.lead, labels[f"a_{status.value}"],
            report.report_back.isoformat(), str(point.number), point.title,
            labels[point.category], point.owner or "", point.due.isoformat() if point.due else "",
            labels["yes"] if point.overdue else labels["no"], latest, point.reason or "",
        ])  # fmt: skip
    return rows


def _decided_cell(day: dt.date, paragraph: str | None) -> str:
    return f"{day.isoformat()} {paragraph}" if paragraph else day.isoformat()


def to_csv(report: Report) -> str:
    """The report's points as a table: one row per point (docs/register.md, CSV)."""
    return write_csv(_csv_columns(report.language),
                      _csv_rows(report, assignment_category(report)))  # fmt: skip


# --- the register ----------------------------------------------------------------------


def register_heading(register: Register) -> str:
    """Uppdragslista till Kommunfullmäktige – Tertialrapport 1 2027."""
    labels = LABELS[register.language]
    heading = (
        labels["register_to"].format(receiver=register.receiver)
        if register.receiver
        else labels["register"]
    )
    if register.occasion:
        heading += f" – {register.occasion} {register.year}"
    return heading


def _register_columns(language: Language) -> list[str]:
    labels = LABELS[language]
    keys = ("col_reference", "col_decided", "col_title", "col_lead", "status", "col_due",
            "col_overdue", "col_status")  # fmt: skip
    return [labels[k] for k in keys]


def _register_decided(row: RegisterRow, language: Language) -> str:
    """14 november 2022, § 187."""
    day = format_date(row.decided_on, language)
    return f"{day}, {row.paragraph}" if row.paragraph else day


def _sections(report: Report) -> list[tuple[Category, tuple[ReportPoint, ...]]]:
    """An assignment's groups in the register: only those with points."""
    groups = [(cat, report.groups[cat]) for cat in GROUPS]
    groups += [(cat, report.apart[cat]) for cat in APART]
    return [(cat, points) for cat, points in groups if points]


def _cell(text: str) -> str:
    """A Markdown table cell: one line, pipes escaped."""
    return md_escape(" ".join(text.split()))


def _register_context(register: Register) -> dict[str, Any]:
    lang = register.language
    return {
        **HELPERS,
        "g": register,
        "l": LABELS[lang],
        "lang": lang,
        "heading": register_heading(register),
        "columns": _register_columns(lang),
        "assignment_rows": list(register.assignments.items()),
        "summary_rows": [(cat, getattr(register.summary, cat.value)) for cat in (*GROUPS, *APART)],
        "decided": lambda row: _register_decided(row, lang),
        "sections": _sections,
        "source_lang": lambda row: row.source_language,
    }


def register_to_markdown(register: Register) -> str:
    env = environment(TEMPLATES, markdown=True)
    return env.get_template("register.md").render(_register_context(register), cell=_cell)


def register_to_html(register: Register) -> str:
    return environment(TEMPLATES).get_template("register.html").render(_register_context(register))


def register_to_json(register: Register) -> str:
    return json.dumps(register.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def register_to_csv(register: Register) -> str:
    """Every point of every assignment, one row each, in the register's order."""
    rows = [
        row
        for report, reg_row in zip(register.reports, register.rows, strict=True)
        for row in _csv_rows(report, reg_row.category)
    ]
    return write_csv(_csv_columns(register.language), rows)


#: The register table's columns in a landscape A4 page (257 mm between the margins).
REGISTER_WIDTHS = (25, 26, 48, 44, 21, 27, 20, 46)


def register_to_docx(register: Register) -> bytes:
    """The register as a Word document in landscape: the table, then each assignment."""
    labels = LABELS[register.language]
    lang = register.language
    heading = register_heading(register)
    doc = _document(heading, lang, register.as_of, landscape=True)
    doc.add_heading(heading, level=1)
    facts = [(labels["as_of"], format_date(register.as_of, lang))]
    if register.selection:
        facts.append((labels["selection"], ", ".join(register.selection)))
    facts.append((labels["assignments_count"], str(len(register.rows))))
    for label, value in facts:
        paragraph = doc.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    doc.add_heading(labels["summary"], level=2)
    counts = [(labels[f"a_{cat.value}"], str(n)) for cat, n in register.assignments.items()]
    _docx_table(doc, [labels["status"], labels["assignments_count"]], counts)
    doc.add_paragraph()
    rows = [(labels[cat], str(getattr(register.summary, cat.value))) for cat in (*GROUPS, *APART)]
    rows.append((labels["overdue_count"], str(register.summary.overdue)))
    _docx_table(doc, [labels["category"], labels["count"]], rows)
    doc.add_heading(labels["register"], level=2)
    if not register.rows:
        doc.add_paragraph(labels["no_assignments"])
    else:
        _docx_table(doc, _register_columns(lang), [
            (row.reference, _register_decided(row, lang), row.title, row.lead,
             labels[f"a_{row.category.value}"], format_date(row.due, lang), str(row.overdue),
             " ".join((row.status or "–").split()))
            for row in register.rows
        ], REGISTER_WIDTHS, points=9)  # fmt: skip
    for report in register.reports:
        doc.add_heading(f"{report.reference}: {report.title}", level=2)
        shown = (labels["coordinator"], labels["as_of"], labels["reference"])
        for label, value in [r for r in _header_rows(report) if r[0] not in shown]:
            paragraph = doc.add_paragraph()
            paragraph.add_run(f"{label}: ").bold = True
            paragraph.add_run(value)
        for cat, points in _sections(report):
            doc.add_heading(labels[cat], level=3)
            for point in points:
                _docx_point(doc, point, report, level=4)
        _docx_report_back(doc, report, level=3)
    return _saved(doc, register.as_of)


RENDERERS: dict[Format, Callable[[Report], str | bytes]] = {
    Format.MARKDOWN: to_markdown,
    Format.HTML: to_html,
    Format.JSON: to_json,
    Format.CSV: to_csv,
    Format.DOCX: to_docx,
}
REGISTER_RENDERERS: dict[Format, Callable[[Register], str | bytes]] = {
    Format.MARKDOWN: register_to_markdown,
    Format.HTML: register_to_html,
    Format.JSON: register_to_json,
    Format.CSV: register_to_csv,
    Format.DOCX: register_to_docx,
}


def render(report: Report | Register, fmt: Format) -> bytes:
    """The report (or register) in ``fmt``, as bytes ready to write."""
    if isinstance(report, Register):
        data = REGISTER_RENDERERS[fmt](report)
    else:
        data = RENDERERS[fmt](report)
    return data if isinstance(data, bytes) else data.encode()
