"""The HTML report and the register pass an automated accessibility check (axe-core) in real
headless Chromium.

Chromium comes from Debian's packages, axe-core from the npm registry
(tests/a11y/package.json, installed by `make test`). Without them the test is
skipped locally and fails in CI.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from scripts.seed_history import AS_OF, TZ, A, play
from tests.integration.bundled_history import play_all, register_of
from tests.support import FIXTURES, ROOT, missing_server
from workflow.core.specs import Language
from workflow.engine import Engine
from workflow.report.model import build_report
from workflow.report.render import register_to_html, to_html

AXE = ROOT / "tests" / "a11y" / "node_modules" / "axe-core" / "axe.min.js"
#: Flags that keep headless Chromium off the network (this machine has none) and quiet.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip
RUNNER = """
<script>
axe.run(document, {runOnly: {type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa",
                                                    "best-practice"]}})
  .then(function (result) {
    var pre = document.createElement("pre");
    pre.id = "axe-results";
    pre.textContent = JSON.stringify({
      violations: result.violations.map(function (v) {
        return {id: v.id, impact: v.impact, help: v.help,
                targets: v.nodes.map(function (n) { return n.target.join(" "); })};
      }),
      passes: result.passes.map(function (p) { return p.id; })
    });
    document.body.appendChild(pre);
  });
</script>
"""


def chromium() -> str:
    found = os.environ.get("COUNCIL_TEST_CHROMIUM") or shutil.which("chromium")
    if not found:
        missing_server("Chromium (apt-get install chromium)")
    assert found is not None
    return found


def axe_source() -> str:
    if not AXE.exists():
        missing_server("axe-core (npm install --prefix tests/a11y)")
    return AXE.read_text()


def run_axe(page: str, tmp_path: Path) -> dict[str, list[object]]:
    """Load ``page`` with axe injected in headless Chromium; return axe's findings."""
    injected = page.replace("</body>", f"<script>{axe_source()}</script>{RUNNER}</body>")
    path = tmp_path / "report-axe.html"
    path.write_text(injected)
    result = subprocess.run(
        [chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'profile'}",
         "--virtual-time-budget=15000", "--dump-dom", path.as_uri()],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    found = re.search(r'<pre id="axe-results">(.*?)</pre>', result.stdout, re.DOTALL)
    assert found, f"axe did not report: {result.stderr[-1000:]}"
    return json.loads(html.unescape(found.group(1)))  # type: ignore[no-any-return]


@pytest.mark.parametrize("lang", [Language.SV, Language.EN])
def test_html_report_has_no_accessibility_violations(
    engine: Engine, lang: Language, tmp_path: Path
) -> None:
    """axe-core finds no WCAG 2.1 A/AA or best-practice violation in the report."""
    play(engine, later=True)
    events = [e for _, e in engine.events(assignment=A)]
    report = build_report(
        engine.definitions, engine.definitions.assignment(A), events, as_of=AS_OF, tz=TZ, lang=lang
    )
    findings = run_axe(to_html(report), tmp_path)
    assert findings["violations"] == []
    assert {"color-contrast", "html-has-lang", "heading-order"} <= set(findings["passes"])  # type: ignore[arg-type]


@pytest.mark.parametrize("lang", [Language.SV, Language.EN])
def test_html_register_has_no_accessibility_violations(
    engine: Engine, lang: Language, tmp_path: Path
) -> None:
    """axe-core finds no WCAG 2.1 A/AA or best-practice violation in the register of every
    assignment: its tables, links to each assignment, groups of points and overdue marks."""
    play_all(engine)
    register = register_of(engine, "all", lang)
    assert len(register.rows) == 3
    page = register_to_html(register)
    assert 'class="mark overdue"' in page
    assert 'class="mark at-risk"' in page
    findings = run_axe(page, tmp_path)
    assert findings["violations"] == []
    checked = {"color-contrast", "html-has-lang", "heading-order", "th-has-data-cells",
               "link-name", "landmark-one-main"}  # fmt: skip
    if lang is Language.EN:  # the Swedish notes in it say lang="sv"
        checked.add("valid-lang")
    assert checked <= set(findings["passes"])


@pytest.mark.parametrize("name", ["tertial-1-2027.sv.html", "arsredovisning-2027.en.html"])
def test_the_golden_registers_have_no_accessibility_violations(name: str, tmp_path: Path) -> None:
    """The golden registers (12 and 13 assignments of 5 bodies; test_register.py), with
    every kind of point, a recurring duty and notes in another language than the page's."""
    findings = run_axe((FIXTURES / "golden" / "register" / name).read_text(encoding="utf-8"),
                       tmp_path)  # fmt: skip
    assert findings["violations"] == []
    assert {"color-contrast", "heading-order", "th-has-data-cells", "link-name",
            "valid-lang"} <= set(findings["passes"])  # type: ignore[arg-type]  # fmt: skip


def test_the_check_catches_a_broken_page(tmp_path: Path) -> None:
    """The harness is not blind: a page without lang, with faint text and a bare image fails."""
    broken = (
        "<!DOCTYPE html><html><head><title>x</title></head><body>"
        '<p style="color:#bbbbbb;background:#ffffff">faint text</p>'
        '<img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">'
        "</body></html>"
    )
    ids = {v["id"] for v in run_axe(broken, tmp_path)["violations"]}  # type: ignore[index]
    assert {"html-has-lang", "color-contrast", "image-alt"} <= ids
