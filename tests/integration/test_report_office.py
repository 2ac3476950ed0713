"""The DOCX documents open in real office software: LibreOffice, headless, converts each
to a PDF whose text says what the report says.

A single assignment's report and two registers (every assignment; the first tertial
report of 2023), in Swedish and English, and two of the golden registers (12 and 13
assignments of 5 bodies), are converted in one ``soffice`` run with a
private profile (the user's profile and parallel runs are untouched); poppler's
``pdftotext`` reads the PDFs back. Both come from Debian's packages
(libreoffice-writer-nogui, poppler-utils; `.ci/run` installs them). Without them the
tests are skipped locally and fail in CI.

The documents do not depend on the database, so they are built once, on SQLite.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

from scripts.seed_history import AS_OF, TZ, A
from tests.integration.bundled_history import play_all, register_of
from tests.support import FIXTURES, missing_server
from workflow.core.calendar import Calendar
from workflow.core.plan import Definitions
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.report.model import build_report
from workflow.report.render import Format, render
from workflow.store import connect, migrate

#: One LibreOffice start converts every document; a cold start takes a few seconds.
SOFFICE_TIMEOUT = 240

HEDERSVALD = "KS 2022/0417"
LOKAL = "KS 2024/0088"
EST = "KS 2025/0031"


@dataclass(frozen=True)
class Expected:
    """What the PDF of one document must say."""

    heading: str
    #: The receiving body, and the words that name it as the one the document goes to.
    receiver: str
    to_receiver: str
    references: tuple[str, ...]
    landscape: bool


#: Each document by name: what it is, and what its text must contain.
DOCUMENTS: dict[str, tuple[str, Language, Expected]] = {
    "report.sv": ("report", Language.SV, Expected(
        "Återrapportering: Uppdrag att utveckla arbetet mot hedersrelaterat våld och förtryck",
        "Kommunfullmäktige", "Återrapportering till Kommunfullmäktige", (HEDERSVALD,),
        landscape=False)),
    "report.en": ("report", Language.EN, Expected(
        "Report back: Assignment to develop the work against honour-related violence and "
        "oppression", "Municipal Council", "Reporting back to Municipal Council",
        (HEDERSVALD,), landscape=False)),
    "register-all.sv": ("all", Language.SV, Expected(
        "Uppdragslista till Kommunfullmäktige", "Kommunfullmäktige",
        "Uppdragslista till Kommunfullmäktige", (HEDERSVALD, LOKAL, EST), landscape=True)),
    "register-all.en": ("all", Language.EN, Expected(
        "Register of assignments for Municipal Council", "Municipal Council",
        "Register of assignments for Municipal Council", (HEDERSVALD, LOKAL, EST),
        landscape=True)),
    "register-tertial.sv": ("tertial", Language.SV, Expected(
        "Uppdragslista till Kommunfullmäktige – Tertialrapport 1 2023", "Kommunfullmäktige",
        "Uppdragslista till Kommunfullmäktige", (HEDERSVALD,), landscape=True)),
    "register-tertial.en": ("tertial", Language.EN, Expected(
        "Register of assignments for Municipal Council – First tertial report 2023",
        "Municipal Council", "Register of assignments for Municipal Council", (HEDERSVALD,),
        landscape=True)),
}  # fmt: skip
#: The golden registers (tests/integration/test_register.py): 12 and 13 assignments.
GOLDEN = FIXTURES / "golden" / "register"
for _name, _lang, _heading, _receiver, _to in (
    ("tertial-1-2027.sv", Language.SV, "Uppdragslista till Kommunfullmäktige – Tertialrapport 1 "
     "2027", "Kommunfullmäktige", "Uppdragslista till Kommunfullmäktige"),
    ("arsredovisning-2027.en", Language.EN, "Register of assignments for Municipal Council – "
     "Annual report 2027", "Municipal Council", "Register of assignments for Municipal Council"),
):  # fmt: skip
    _rows = json.loads((GOLDEN / f"{_name}.json").read_text(encoding="utf-8"))["rows"]
    _references = tuple(row["reference"] for row in _rows)
    DOCUMENTS[f"golden-{_name}"] = (
        f"golden:{_name}",
        _lang,
        Expected(_heading, _receiver, _to, _references, landscape=True),
    )


def tool(name: str, package: str) -> str:
    found = shutil.which(name)
    if not found:
        missing_server(f"{name} (apt-get install {package})")
    assert found is not None
    return found


def docx(engine: Engine, kind: str, lang: Language) -> tuple[bytes, tuple[str, ...]]:
    """The document as DOCX, and the reference numbers of the assignments it covers."""
    if kind.startswith("golden:"):
        name = kind.removeprefix("golden:")
        return (GOLDEN / f"{name}.docx").read_bytes(), DOCUMENTS[f"golden-{name}"][2].references
    if kind == "report":
        events = [e for _, e in engine.events(assignment=A)]
        plan = engine.definitions.assignment(A)
        report = build_report(engine.definitions, plan, events, as_of=AS_OF, tz=TZ, lang=lang)
        return render(report, Format.DOCX), (report.reference,)
    register = register_of(engine, kind, lang)
    return render(register, Format.DOCX), tuple(row.reference for row in register.rows)


def soffice_to_pdf(soffice: str, files: list[Path], out: Path, profile: Path) -> None:
    """Convert ``files`` to PDF in ``out`` in one headless LibreOffice run of its own."""
    command = [
        soffice, f"-env:UserInstallation={profile.as_uri()}", "--headless", "--norestore",
        "--nolockcheck", "--convert-to", "pdf", "--outdir", str(out), *map(str, files),
    ]  # fmt: skip
    # Its own process group: on a timeout the wrapper script and soffice.bin both go.
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True, env={**os.environ, "HOME": str(profile.parent)},
    ) as process:  # fmt: skip
        try:
            output, _ = process.communicate(timeout=SOFFICE_TIMEOUT)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            pytest.fail(f"soffice did not finish within {SOFFICE_TIMEOUT} s", pytrace=False)
    assert process.returncode == 0, output
    missing = [f.name for f in files if not (out / f.with_suffix(".pdf").name).exists()]
    assert not missing, f"no PDF for {missing}: {output}"


@dataclass(frozen=True)
class Converted:
    references: tuple[str, ...]
    pdf: bytes
    text: str
    page_size: str


@pytest.fixture(scope="module")
def converted(
    definitions: Definitions, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Converted]:
    """Every document rendered as DOCX, converted by LibreOffice and read back by poppler."""
    soffice = tool("soffice", "libreoffice-writer-nogui")
    pdftotext = tool("pdftotext", "poppler-utils")
    pdfinfo = tool("pdfinfo", "poppler-utils")
    tmp = tmp_path_factory.mktemp("office")
    db = connect(f"sqlite:///{tmp / 'council.db'}")
    migrate.upgrade(db)
    engine = Engine(db=db, definitions=definitions, calendar=Calendar(), timezone=TZ)
    play_all(engine)
    files, references = [], {}
    for name, (kind, lang, _) in DOCUMENTS.items():
        data, references[name] = docx(engine, kind, lang)
        files.append(tmp / f"{name}.docx")
        files[-1].write_bytes(data)
    db.dispose()
    soffice_to_pdf(soffice, files, tmp, tmp / "profile")
    result = {}
    for name in DOCUMENTS:
        pdf = tmp / f"{name}.pdf"
        text = output(pdftotext, "-enc", "UTF-8", str(pdf), "-")
        info = output(pdfinfo, str(pdf))
        size = next(line for line in info.splitlines() if line.startswith("Page size:"))
        result[name] = Converted(references[name], pdf.read_bytes(), text, size)
    return result


def output(*command: str) -> str:
    return subprocess.run(command, capture_output=True, text=True, check=True, timeout=60).stdout


def words(text: str) -> str:
    """The text as one line: a PDF breaks lines wherever the page does."""
    return " ".join(text.split())


@pytest.mark.parametrize("name", DOCUMENTS)
def test_docx_converts_to_a_pdf_that_says_what_the_report_says(
    converted: dict[str, Converted], name: str
) -> None:
    """The PDF is a PDF; its text has the heading, the receiving body (named as the one
    the document goes to) and every assignment's reference number."""
    expected = DOCUMENTS[name][2]
    document = converted[name]
    assert document.pdf.startswith(b"%PDF-")
    assert document.references == expected.references
    text = words(document.text)
    assert words(expected.heading) in text
    assert expected.receiver in expected.to_receiver
    assert expected.to_receiver in text
    for reference in expected.references:
        assert reference in text


@pytest.mark.parametrize("name", DOCUMENTS)
def test_the_register_is_landscape_a4_and_the_report_portrait_a4(
    converted: dict[str, Converted], name: str
) -> None:
    """LibreOffice keeps the page orientation the document asks for."""
    width, height = (float(n) for n in converted[name].page_size.split()[2:5:2])
    assert (width > height) is DOCUMENTS[name][2].landscape, converted[name].page_size
    assert sorted((round(width), round(height))) == [595, 842], "A4"
