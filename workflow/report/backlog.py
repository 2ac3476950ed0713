"""The backlog: every open point across all assignments, oldest decision first.

Auditors ask each year how old each open item is and which decisions are the
oldest still not carried out. Ages count from the council's decision; points
older than the configured limit (11 months by default) are flagged.

Renderers: a table for a terminal (grouped by decision, titles cut to its width or
wrapped), Markdown, JSON, CSV (RFC 4180, one fact per column) and an Excel workbook.
Nothing here reads a clock: the same backlog as of a day gives the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import textwrap
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict

from workflow.core.calendar import Calendar
from workflow.core.events import Event
from workflow.core.plan import AssignmentPlan, Definitions
from workflow.core.specs import Language
from workflow.core.state import (
    Category,
    category,
    is_at_risk,
    is_overdue,
    point_due,
    replay,
)
from workflow.report.files import reproducible_zip, write_csv
from workflow.report.model import end_of_day

if TYPE_CHECKING:
    from rich.console import RenderableType

OPEN = (Category.TO_START, Category.ONGOING)

#: ``--format`` values, and the one a ``-o FILE``'s extension stands for.
FORMATS = ("table", "md", "json", "csv", "xlsx")
EXTENSIONS = {".txt": "table", ".md": "md", ".markdown": "md", ".json": "json",
              ".csv": "csv", ".xlsx": "xlsx"}  # fmt: skip


class BacklogItem(BaseModel):
    """One open point. The field names are the JSON keys and the CSV and Excel headers."""

    model_config = ConfigDict(frozen=True)

    assignment: str
    point: int
    address: str
    title: str
    reference: str
    #: The lead body's id (as written when the definitions declare no bodies).
    lead_id: str
    #: The lead body's name in Swedish, as the backlog's titles are.
    lead: str
    decided_on: dt.date
    age_days: int
    age_months: int
    category: Category
    #: The due date the point shows everywhere (:func:`workflow.core.state.point_due`).
    due: dt.date | None
    overdue: bool
    at_risk: bool
    old: bool


#: The CSV and Excel columns, in order: one fact each.
FIELDS: tuple[str, ...] = tuple(BacklogItem.model_fields)


def months_between(start: dt.date, end: dt.date) -> int:
    """Whole months from ``start`` to ``end`` (14 Nov -> 13 Dec is 0, -> 14 Dec is 1)."""
    months = (end.year - start.year) * 12 + end.month - start.month
    return months - 1 if end.day < start.day else months


def selected(plan: AssignmentPlan, as_of: dt.date, body: str | None) -> bool:
    """The backlog looks at an assignment decided by ``as_of`` (and ``body``'s, if given)."""
    return plan.decided_on <= as_of and (body is None or plan.involves(body))


def points_as_of(definitions: Definitions, as_of: dt.date, body: str | None = None) -> int:
    """How many points the backlog looks at (those of the assignments it selects)."""
    return sum(len(p.points) for p in definitions.assignments.values() if selected(p, as_of, body))


def build_backlog(
    definitions: Definitions,
    events: Iterable[Event],
    *,
    as_of: dt.date,
    tz: ZoneInfo,
    calendar: Calendar,
    at_risk_days: int,
    age_limit_months: int,
    body: str | None = None,
    on_point: Callable[[int], None] | None = None,
) -> list[BacklogItem]:
    """The open points as of ``as_of``, of the assignments ``body`` leads or co-owns when
    given; ``on_point(1)`` after each point looked at (a progress bar)."""
    cutoff = end_of_day(as_of, tz)
    by_point: dict[tuple[str, int], list[Event]] = defaultdict(list)
    for event in events:
        if event.point is not None and event.occurred_at < cutoff:
            by_point[(event.assignment, event.point)].append(event)
    items = []
    for plan in definitions.assignments.values():
        if not selected(plan, as_of, body):
            continue
        for point in plan.points:
            if on_point is not None:
                on_point(1)
            state = replay(point, by_point.get((plan.id, point.number), []))
            cat = category(point, state)
            if cat not in OPEN:
                continue
            months = months_between(plan.decided_on, as_of)
            items.append(
                BacklogItem(
                    assignment=plan.id,
                    point=point.number,
                    address=point.address,
                    title=str(point.title),
                    reference=plan.reference,
                    lead_id=plan.lead,
                    lead=definitions.body_name(plan.lead, Language.SV),
                    decided_on=plan.decided_on,
                    age_days=(as_of - plan.decided_on).days,
                    age_months=months,
                    category=cat,
                    due=point_due(point, state),
                    overdue=is_overdue(point, state, as_of),
                    at_risk=is_at_risk(point, state, as_of, within=at_risk_days, calendar=calendar),
                    old=months >= age_limit_months,
                )
            )
    items.sort(key=lambda item: (item.decided_on, item.assignment, item.point))
    return items


def format_of(output: Path) -> str | None:
    """The format a file's extension stands for; None when it stands for none."""
    return EXTENSIONS.get(output.suffix.lower())


# --- JSON, CSV, Excel: every fact, nothing cut -------------------------------------


def to_json(items: Sequence[BacklogItem]) -> str:
    data = [item.model_dump(mode="json") for item in items]
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def _csv_value(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)  # a Category is a StrEnum: its value


def to_csv(items: Sequence[BacklogItem]) -> str:
    """RFC 4180: a header of :data:`FIELDS`, CRLF line ends, fields quoted when needed;
    ISO dates, plain integers, ``true``/``false``, an empty field for no due date."""
    return write_csv(FIELDS, ([_csv_value(getattr(item, name)) for name in FIELDS]
                              for item in items))  # fmt: skip


#: Excel's column widths (in characters) never grow past this; longer titles overflow.
XLSX_MAX_WIDTH = 60


def to_xlsx(items: Sequence[BacklogItem], *, as_of: dt.date, title: str) -> bytes:
    """An Excel workbook, one sheet: a bold, frozen header of :data:`FIELDS` with a filter,
    a row per point with real dates, integers and booleans. The same backlog gives the
    same bytes: the properties carry ``as_of``, never the clock (``save`` would stamp it),
    and every zip member is stamped with ``as_of`` too."""
    import zipfile

    from openpyxl import Workbook
    from openpyxl.styles import Font
    from openpyxl.utils import get_column_letter
    from openpyxl.writer.excel import ExcelWriter

    book = Workbook()
    sheet = book.worksheets[0]
    sheet.title = "Backlog"
    sheet.append(list(FIELDS))
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for item in items:
        sheet.append([_xlsx_value(getattr(item, name)) for name in FIELDS])
    widths = [len(name) for name in FIELDS]
    for row in sheet.iter_rows(min_row=2):
        for i, cell in enumerate(row):
            if isinstance(cell.value, dt.date):
                cell.number_format = "yyyy-mm-dd"
            elif isinstance(cell.value, str):
                cell.data_type = "s"  # text, never a formula, whatever it starts with
            widths[i] = max(widths[i], len(_csv_value(cell.value)))
    for i, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(i)].width = min(width + 2, XLSX_MAX_WIDTH)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = f"A1:{get_column_letter(len(FIELDS))}{len(items) + 1}"
    props = book.properties
    props.title = title
    props.creator = props.lastModifiedBy = "council"
    props.language = Language.SV.value
    props.created = props.modified = dt.datetime.combine(as_of, dt.time(0))
    out = io.BytesIO()
    ExcelWriter(book, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED)).save()
    return reproducible_zip(out.getvalue(), as_of)


def _xlsx_value(value: object) -> object:
    if isinstance(value, Category):
        return value.value
    return value  # a date stays a date, a bool a bool, None an empty cell


# --- Markdown: a flat table, whole titles ------------------------------------------

MARKDOWN_COLUMNS = [
    "point", "title", "reference", "decided", "age (months)", "category", "due", "marks",
]  # fmt: skip


def marks(item: BacklogItem) -> str:
    flags = []
    if item.overdue:
        flags.append("OVERDUE")
    elif item.at_risk:
        flags.append("at risk")
    if item.old:
        flags.append("OLD")
    return ", ".join(flags)


def markdown_rows(items: Sequence[BacklogItem]) -> list[list[str]]:
    return [
        [
            i.address,
            i.title,
            i.reference,
            i.decided_on.isoformat(),
            str(i.age_months),
            i.category.value,
            i.due.isoformat() if i.due else "",
            marks(i),
        ]
        for i in items
    ]


def to_markdown(items: Sequence[BacklogItem]) -> str:
    def cell(text: str) -> str:
        return text.replace("|", "\\|")

    columns = MARKDOWN_COLUMNS
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c) for c in row) + " |" for row in markdown_rows(items)]
    return "\n".join(lines) + "\n"


# --- the table: grouped by decision, fitted to a width -----------------------------
#
# What a decision has, its points share: reference, date, age, lead body and OLD are
# said once, in a heading above its points; a point's row is its number, title,
# category, due date and mark. Every column but the title is as wide as its widest
# cell; the title gets what the width leaves (at least TITLE_MIN), and a longer title
# is cut with an ellipsis, or wrapped with ``full``.

TABLE_COLUMNS = ("point", "title", "category", "due", "marks")
_TITLE = TABLE_COLUMNS.index("title")
#: A title column is never narrower than this, however narrow the terminal.
TITLE_MIN = 12
#: What the plain table adds to its cells' widths: two spaces between columns.
PLAIN_OVERHEAD = 2 * (len(TABLE_COLUMNS) - 1)
#: What a rich table adds: a space either side of each cell and a border around each.
RICH_OVERHEAD = 3 * len(TABLE_COLUMNS) + 1


def caption(as_of: dt.date, count: int, body: str | None = None) -> str:
    """``Backlog as of 2023-12-01, Socialnämnden (lead or co-owner): 6 open points``."""
    scope = f", {body} (lead or co-owner)" if body else ""
    points = "no open points" if not count else f"{count} open point{'s' * (count != 1)}"
    return f"Backlog as of {as_of}{scope}: {points}"


def heading(item: BacklogItem, width: int) -> list[str]:
    """What a decision's points share, in lines of at most ``width``, broken between its
    parts: ``kf-2022-hedersvald · KS 2022/0417 · decided 2022-11-14, 12 months ago``,
    ``· lead Kommunstyrelsen · OLD``."""
    months = f"{item.age_months} month{'s' * (item.age_months != 1)}"
    parts = [item.assignment, item.reference, f"decided {item.decided_on}, {months} ago",
             f"lead {item.lead}", *["OLD"] * item.old]  # fmt: skip
    lines: list[str] = []
    for part in parts:
        if lines and len(lines[-1]) + len(" · ") + len(part) <= width:
            lines[-1] += " · " + part
            continue
        first, *more = textwrap.wrap(part, max(width - 2, 1), break_on_hyphens=False) or [""]
        lines += [f"· {first}" if lines else first, *more]
    return lines


def _point_mark(item: BacklogItem) -> str:
    return "OVERDUE" if item.overdue else "at risk" if item.at_risk else ""


def _cells(item: BacklogItem) -> list[str]:
    due = item.due.isoformat() if item.due else ""
    title = " ".join(item.title.split())  # one line, whatever the definition holds
    return [str(item.point), title, item.category.value, due, _point_mark(item)]


def groups(items: Sequence[BacklogItem]) -> list[list[BacklogItem]]:
    """The items of each assignment together, in the backlog's order (oldest first)."""
    found: list[list[BacklogItem]] = []
    for item in items:
        if found and found[-1][0].assignment == item.assignment:
            found[-1].append(item)
        else:
            found.append([item])
    return found


def column_widths(items: Sequence[BacklogItem], width: int, overhead: int) -> list[int]:
    """Each column as wide as its widest cell, but the title's: what ``width`` leaves."""
    rows = [list(TABLE_COLUMNS), *(_cells(item) for item in items)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(TABLE_COLUMNS))]
    rest = width - overhead - (sum(widths) - widths[_TITLE])
    widths[_TITLE] = max(TITLE_MIN, min(widths[_TITLE], rest))
    return widths


def cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, with an ellipsis when cut."""
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


def _title_lines(title: str, width: int, full: bool) -> list[str]:
    if not full:
        return [cut(title, width)]
    return textwrap.wrap(title, width, break_long_words=True, break_on_hyphens=False) or [""]


def to_table(items: Sequence[BacklogItem], *, title: str, width: int, full: bool) -> str:
    """The plain table (piped, or into a file): no line longer than ``width`` unless the
    width leaves the title less than :data:`TITLE_MIN`."""
    widths = column_widths(items, width, PLAIN_OVERHEAD)

    def line(cells: Sequence[str]) -> str:
        padded = [cell.ljust(w) for cell, w in zip(cells, widths, strict=True)]
        return "  ".join(padded).rstrip()

    lines = textwrap.wrap(title, width)
    for group in groups(items):
        lines += ["", *heading(group[0], width), line(TABLE_COLUMNS)]
        for item in group:
            cells = _cells(item)
            first, *more = _title_lines(cells[_TITLE], widths[_TITLE], full)
            lines.append(line([*cells[:_TITLE], first, *cells[_TITLE + 1 :]]))
            blank = [""] * len(cells)
            lines += [line([*blank[:_TITLE], text, *blank[_TITLE + 1 :]]) for text in more]
    return "\n".join(lines) + "\n"


def rich_tables(
    items: Sequence[BacklogItem], *, title: str, width: int, full: bool
) -> list[RenderableType]:
    """The table for a terminal: each decision's heading, then a boxed table of its
    points; printed on a console ``width`` wide, no line is longer."""
    from rich.table import Table
    from rich.text import Text

    widths = column_widths(items, width, RICH_OVERHEAD)
    shown: list[RenderableType] = [Text(title, style="bold")]
    for group in groups(items):
        shown += [Text(), Text("\n".join(heading(group[0], width)), style="bold")]
        table = Table(header_style="bold")
        for i, (name, column_width) in enumerate(zip(TABLE_COLUMNS, widths, strict=True)):
            wraps = full and i == _TITLE
            table.add_column(name, width=column_width, no_wrap=not wraps,
                             overflow="fold" if wraps else "ellipsis")  # fmt: skip
        for item in group:
            cells = _cells(item)
            if not full:
                cells[_TITLE] = cut(cells[_TITLE], widths[_TITLE])
            table.add_row(*(Text(cell) for cell in cells))  # text, never markup
        shown.append(table)
    return shown


def render(
    items: Sequence[BacklogItem], fmt: str, *, as_of: dt.date, title: str, width: int,
    full: bool,
) -> bytes:  # fmt: skip
    """The backlog as ``fmt`` (any of :data:`FORMATS`), as the bytes to write."""
    if fmt == "xlsx":
        return to_xlsx(items, as_of=as_of, title=title)
    if fmt == "json":
        text = to_json(items)
    elif fmt == "csv":
        text = to_csv(items)
    elif fmt == "md":
        text = to_markdown(items)
    else:
        text = to_table(items, title=title, width=width, full=full)
    return text.encode()
