"""One sandboxed Jinja2 environment for every template council renders, and date formats.

Sandboxed because titles, names and notes come from people; HTML autoescaped
(Markdown templates escape with the ``md`` filter instead); undefined names are
errors, not empty strings.
"""

from __future__ import annotations

import datetime as dt
import re
from functools import cache
from pathlib import Path

from jinja2 import FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

from workflow.core.specs import Language

#: The e-mail templates (the report keeps its own, under workflow/report/templates/).
TEMPLATES = Path(__file__).parent / "templates"
_MONTHS = {
    Language.SV: [
        "januari",
        "februari",
        "mars",
        "april",
        "maj",
        "juni",
        "juli",
        "augusti",
        "september",
        "oktober",
        "november",
        "december",
    ],
    Language.EN: [
        "January",
        "February",
        "March",
        "April",
        "May",
        "June",
        "July",
        "August",
        "September",
        "October",
        "November",
        "December",
    ],
}


def format_date(day: dt.date | None, language: Language) -> str:
    """12 juni 2023 / 12 June 2023."""
    if day is None:
        return "–"
    return f"{day.day} {_MONTHS[language][day.month - 1]} {day.year}"


_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>#|])")


def md_escape(text: str) -> str:
    """Text that Markdown shows as written (no emphasis, links, HTML or tables)."""
    return _MD_SPECIAL.sub(r"\\\1", text)


@cache
def environment(templates: Path = TEMPLATES, *, markdown: bool = False) -> SandboxedEnvironment:
    """The templates under ``templates`` (the e-mails' by default); ``markdown`` for .md ones."""
    env = SandboxedEnvironment(
        loader=FileSystemLoader(templates),
        autoescape=lambda name: not markdown and bool(name) and str(name).endswith(".html"),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["date"] = format_date
    env.filters["md"] = md_escape if markdown else (lambda text: text)
    return env
