"""What every tabular and packaged output shares: CSV that a spreadsheet opens safely,
and ZIP packages (DOCX, XLSX) that carry no clock, so one report gives one sequence of
bytes."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile
from collections.abc import Iterable, Sequence

#: A cell starting with one of these is a formula to Excel and LibreOffice Calc.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` as a spreadsheet shows it, never as a formula: a leading ``=``, ``+``,
    ``-``, ``@``, tab or carriage return gets an apostrophe before it (OWASP's advice on
    CSV injection). Notes come from owners' e-mail: ``=HYPERLINK(...)`` stays text."""
    return f"'{text}" if text.startswith(_FORMULA_START) else text


def write_csv(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    """RFC 4180: comma-separated, quoted where needed, CRLF line ends; every cell made
    :func:`spreadsheet_safe`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header)
    writer.writerows([spreadsheet_safe(cell) for cell in row] for row in rows)
    return out.getvalue()


def reproducible_zip(data: bytes, as_of: dt.date, *, application: bytes | None = None) -> bytes:
    """The same package with every member stamped with ``as_of`` at midnight (python-docx
    and openpyxl stamp them with the time of saving) and owner-only permissions; with
    ``application``, python-docx's template's ``Microsoft Macintosh Word`` in
    docProps/app.xml replaced by it."""
    stamp = (as_of.year, as_of.month, as_of.day, 0, 0, 0)
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(data)) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            member = zipfile.ZipInfo(info.filename, date_time=stamp)
            member.compress_type = zipfile.ZIP_DEFLATED
            member.external_attr = 0o600 << 16
            content = src.read(info.filename)
            if application is not None and info.filename == "docProps/app.xml":
                content = content.replace(b"Microsoft Macintosh Word", application)
            dst.writestr(member, content)
    return out.getvalue()
