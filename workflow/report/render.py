"""Rendering a :class:`~workflow.report.Report`: Markdown, standalone HTML, JSON and DOCX.

Labels exist in Swedish and English; dates follow the report's language. The
HTML is accessible (``lang``, real headings, lists and tables, good contrast,
a print stylesheet) and self-contained: no scripts, no external resources.
"""

from __future__ import annotations

import io
import json
from enum import StrEnum
from pathlib import Path
from typing import Any

from workflow.core.specs import Language
from workflow.core.state import Category
from workflow.mail.templating import environment, format_date
from workflow.report.model import APART, GROUPS, Report, ReportDuty, ReportPoint

#: The report's templates (HTML and Markdown).
TEMPLATES = Path(__file__).parent / "templates"


class Format(StrEnum):
    MARKDOWN = "md"
    HTML = "html"
    DOCX = "docx"
    JSON = "json"


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
        "report_back_points": "Återrapportering till fullmäktige",
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
        "report_back_points": "Reporting back to the council",
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


def _context(report: Report) -> dict[str, Any]:
    return {
        "r": report,
        "l": LABELS[report.language],
        "lang": report.language,
        "groups": [(cat, report.groups[cat]) for cat in GROUPS],
        "apart": [(cat, report.apart[cat]) for cat in APART if report.apart[cat]],
        "summary_rows": [(cat, getattr(report.summary, cat.value)) for cat in (*GROUPS, *APART)],
        "decision": decision_line(report),
        "delivery": lambda point: delivery_line(point, report),
        "late": lambda point: late_line(point, report),
        "duty": lambda duty: duty_line(duty, report),
    }


def to_markdown(report: Report) -> str:
    return environment(TEMPLATES, markdown=True).get_template("report.md").render(_context(report))


def to_html(report: Report) -> str:
    return environment(TEMPLATES).get_template("report.html").render(_context(report))


def to_json(report: Report) -> str:
    return json.dumps(report.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


def to_docx(report: Report) -> bytes:
    """A Word document with real heading styles, for pasting into an agenda."""
    from docx import Document

    labels = LABELS[report.language]
    lang = report.language
    doc = Document()
    doc.core_properties.title = f"{labels['report']}: {report.title}"
    doc.core_properties.language = lang.value
    doc.add_heading(f"{labels['report']}: {report.title}", level=1)
    for label, value in _header_rows(report):
        paragraph = doc.add_paragraph()
        paragraph.add_run(f"{label}: ").bold = True
        paragraph.add_run(value)
    doc.add_heading(labels["summary"], level=2)
    table = doc.add_table(rows=1, cols=2)
    table.style = "Table Grid"
    table.rows[0].cells[0].text = labels["category"]
    table.rows[0].cells[1].text = labels["count"]
    for cat, count in _context(report)["summary_rows"]:
        cells = table.add_row().cells
        cells[0].text = labels[cat]
        cells[1].text = str(count)
    cells = table.add_row().cells
    cells[0].text = labels["overdue_count"]
    cells[1].text = str(report.summary.overdue)
    sections = [(labels[cat], points) for cat, points in report.groups.items()]
    sections += [(labels[cat], points) for cat, points in report.apart.items() if points]
    for heading, points in sections:
        doc.add_heading(heading, level=2)
        if not points:
            doc.add_paragraph(labels["none"])
        for point in points:
            _docx_point(doc, point, report)
    if report.report_back_points:
        doc.add_heading(labels["report_back_points"], level=2)
        for point in report.report_back_points:
            doc.add_heading(f"{point.number}. {point.title}", level=3)
            doc.add_paragraph(delivery_line(point, report))
    out = io.BytesIO()
    doc.save(out)
    return out.getvalue()


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


def _docx_point(doc: Any, point: ReportPoint, report: Report) -> None:
    labels = LABELS[report.language]
    doc.add_heading(f"{point.number}. {point.title}", level=3)
    for text in point.progress or (labels["no_progress"],):
        doc.add_paragraph(text)
    if point.reason:
        doc.add_paragraph(f"{labels['reason']}: {point.reason}")
    for duty in point.duties:
        doc.add_paragraph(duty_line(duty, report), style="List Bullet")
        if duty.latest_note:
            doc.add_paragraph(f"{labels['duty_latest']} {duty.latest_note}")
    facts = []
    if point.owner:
        facts.append(f"{labels['owner']}: {point.owner}")
    if point.due:
        facts.append(f"{labels['due']}: {format_date(point.due, report.language)}")
    if point.overdue:
        facts.append(late_line(point, report).upper())
    elif point.at_risk:
        facts.append(labels["at_risk"])
    if facts:
        doc.add_paragraph(" · ".join(facts)).italic = True


RENDERERS = {
    Format.MARKDOWN: to_markdown,
    Format.HTML: to_html,
    Format.JSON: to_json,
}


def render(report: Report, fmt: Format) -> bytes:
    """The report in ``fmt``, as bytes ready to write."""
    if fmt is Format.DOCX:
        return to_docx(report)
    return RENDERERS[fmt](report).encode()
