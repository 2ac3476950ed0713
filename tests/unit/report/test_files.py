"""CSV that a spreadsheet opens safely, and packages without a clock."""

from __future__ import annotations

import csv
import datetime as dt
import io
import zipfile

import pytest

from workflow.report.files import reproducible_zip, spreadsheet_safe, write_csv


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("=HYPERLINK(\"http://evil.example\",\"klicka\")", "'=HYPERLINK(\"http://evil.example\",\"klicka\")"),
        ("+46 8 123 45", "'+46 8 123 45"),
        ("-1+1", "'-1+1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("Arbete pågår = klart i maj", "Arbete pågår = klart i maj"),
        ("2027-04-30", "2027-04-30"),
        ("", ""),
    ],
)  # fmt: skip
def test_a_cell_that_would_be_a_formula_stays_text(text: str, shown: str) -> None:
    assert spreadsheet_safe(text) == shown


def test_csv_is_rfc_4180_with_every_cell_safe() -> None:
    data = write_csv(["a", "b"], [["=1+1", 'say "hi", twice'], ["x", "y\nz"]])
    assert data.split("\r\n")[0] == "a,b"
    assert list(csv.reader(io.StringIO(data, newline=""))) == [
        ["a", "b"], ["'=1+1", 'say "hi", twice'], ["x", "y\nz"]
    ]  # fmt: skip


def test_a_package_carries_the_as_of_day_and_no_clock() -> None:
    raw = io.BytesIO()
    with zipfile.ZipFile(raw, "w") as package:
        package.writestr("docProps/app.xml", b"<Application>Microsoft Macintosh Word</Application>")
        package.writestr("word/document.xml", b"<w:document/>")
    day = dt.date(2027, 4, 30)
    once = reproducible_zip(raw.getvalue(), day, application=b"council")
    assert once == reproducible_zip(raw.getvalue(), day, application=b"council")
    with zipfile.ZipFile(io.BytesIO(once)) as package:
        assert {i.date_time for i in package.infolist()} == {(2027, 4, 30, 0, 0, 0)}
        assert {i.external_attr >> 16 for i in package.infolist()} == {0o600}
        assert package.read("docProps/app.xml") == b"<Application>council</Application>"
