"""One register gives one sequence of bytes, in every format, whenever it is rendered.

A DOCX is a zip, and python-docx stamps every member with the time of saving; the
renderer restamps them with the as-of day (``workflow.report.files.reproducible_zip``). The clock as
zipfile sees it is moved between two renders to show that nothing of it gets through.
"""

from __future__ import annotations

import datetime as dt
import io
import time
import types
import zipfile
from collections.abc import Callable
from xml.etree import ElementTree

import pytest

from scripts.seed_history import AS_OF, TZ, A
from tests.integration.bundled_history import AS_OF_ALL, play_all, register_of
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.report.model import build_report
from workflow.report.render import Format, render

#: Two moments far apart, as the clock that zipfile reads.
NEW_YEAR_1999 = dt.datetime(1999, 12, 31, 23, 59, 58).timestamp()
MIDSUMMER_2031 = dt.datetime(2031, 6, 20, 12, 30, 4).timestamp()
CORE = {"dcterms": "http://purl.org/dc/terms/"}


@pytest.fixture
def seeded(engine: Engine) -> Engine:
    play_all(engine)
    return engine


def clock_at(monkeypatch: pytest.MonkeyPatch, moment: float) -> None:
    """zipfile's clock (it stamps members written by name with ``time.time()``)."""
    fake = types.SimpleNamespace(time=lambda: moment, localtime=time.localtime)
    monkeypatch.setattr(zipfile, "time", fake)


def members(data: bytes) -> dict[str, tuple[int, ...]]:
    with zipfile.ZipFile(io.BytesIO(data)) as package:
        return {info.filename: info.date_time for info in package.infolist()}


@pytest.mark.parametrize("lang", [Language.SV, Language.EN])
@pytest.mark.parametrize("fmt", list(Format))
def test_the_same_register_renders_to_the_same_bytes(
    seeded: Engine, lang: Language, fmt: Format
) -> None:
    """Built twice from the same events and rendered twice: the same bytes."""
    first = render(register_of(seeded, "all", lang), fmt)
    second = render(register_of(seeded, "all", lang), fmt)
    assert first
    assert first == second


def test_the_clock_moves_python_docx_output(monkeypatch: pytest.MonkeyPatch) -> None:
    """The test below is not blind: unfixed, python-docx's package carries the clock."""
    from docx import Document

    stamps = []
    for moment in (NEW_YEAR_1999, MIDSUMMER_2031):
        clock_at(monkeypatch, moment)
        out = io.BytesIO()
        Document().save(out)
        stamps.append(set(members(out.getvalue()).values()))
    assert stamps == [{(1999, 12, 31, 23, 59, 58)}, {(2031, 6, 20, 12, 30, 4)}]


@pytest.mark.parametrize("lang", [Language.SV, Language.EN])
def test_docx_bytes_do_not_depend_on_the_clock(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch, lang: Language
) -> None:
    """The register and the report, rendered at two moments 31 years apart: the same bytes,
    every member stamped with the as-of day at midnight, as are the core properties."""
    plan = seeded.definitions.assignment(A)
    events = [e for _, e in seeded.events(assignment=A)]
    documents: dict[dt.date, Callable[[], bytes]] = {
        AS_OF_ALL: lambda: render(register_of(seeded, "all", lang), Format.DOCX),
        AS_OF: lambda: render(
            build_report(seeded.definitions, plan, events, as_of=AS_OF, tz=TZ, lang=lang),
            Format.DOCX,
        ),
    }
    for as_of, make in documents.items():
        clock_at(monkeypatch, NEW_YEAR_1999)
        early = make()
        clock_at(monkeypatch, MIDSUMMER_2031)
        late = make()
        assert early == late
        stamped = members(late)
        assert "word/document.xml" in stamped
        assert set(stamped.values()) == {(as_of.year, as_of.month, as_of.day, 0, 0, 0)}
        with zipfile.ZipFile(io.BytesIO(late)) as package:
            core = ElementTree.fromstring(package.read("docProps/core.xml"))
        midnight = f"{as_of.isoformat()}T00:00:00Z"
        assert core.findtext("dcterms:created", namespaces=CORE) == midnight
        assert core.findtext("dcterms:modified", namespaces=CORE) == midnight
