"""libyaml's C parser and PyYAML's pure-Python reader give the same documents.

``read_yaml`` parses with libyaml when it is there and falls back to the pure reader for
any text libyaml refuses; these tests hold the two paths to the same data, positions and
problems, on every YAML file of the repository and on texts chosen to break.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from workflow.definitions import yamlsource
from workflow.definitions.yamlsource import Document, read_yaml

ROOT = Path(__file__).resolve().parents[3]


def _utf8(path: Path) -> bool:
    """A file that is not UTF-8 is refused before any YAML is read (tested elsewhere)."""
    try:
        path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        return False
    return True


FILES = sorted(
    p
    for folder in (ROOT / "definitions", ROOT / "tests" / "fixtures")
    for p in folder.rglob("*")
    if p.suffix in (".yaml", ".yml") and _utf8(p)
)

pytestmark = pytest.mark.skipif(
    not yaml.__with_libyaml__, reason="PyYAML is built without libyaml here"
)


def _same(a: Document, b: Document) -> None:
    assert a.data == b.data
    assert a.positions == b.positions
    assert a.key_positions == b.key_positions
    assert a.problems == b.problems


def test_the_c_parser_is_used_when_libyaml_is_there() -> None:
    assert yamlsource._CStrictLoader is not None


@pytest.mark.parametrize("path", FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_file_of_the_repository_reads_the_same_both_ways(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _same(read_yaml(text, "f.yaml"), yamlsource._read_pure(text, "f.yaml"))


@pytest.mark.parametrize(
    "text",
    [
        "a: 1\nb: [x, y]\nc: {d: on, e: 2024-01-01, f: true, g: null, h: 1.5}\n",
        "a: 1\na: 2\n",
        "a:\n  b: 1\n  b: 2\n",
        "x: !!python/object:os.system ls\n",
        "x: !!set {a, b}\n",
        "x: !custom 1\n",
        "<<: {a: 1}\nb: 2\n",
        "? [a, b]\n: 1\n",
        "1: x\n",
        "a: *nowhere\n",
        "a: &x [1]\nb: *x\n",
        "a: b: c\n",
        "a:\n\t- b\n",
        "a: 1\n---\nb: 2\n",
        "a: 'unclosed\n",
        "a: \x07\n",
        "a: \ufeff1\n",
        "\ufeffa: 1\n",
        "%YAML 1.1\n---\na: 1\n",
        "%YAML 2.0\n---\na: 1\n",
        "a: |\n  text\n  more\nb: >-\n  folded\n",
        "list:\n- a\n- b\n",
        "x: " + "[" * 45 + "]" * 45,
        "x: " + "[" * 500 + "]" * 500,
        "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 60)),
        "",
        "# only a comment\n",
        "åäö: ö\n",
        "a: 1\r\nb: 2\r\n",
        "a: &x {b: 1, c: [2, 3]}\nd: *x\ne: *x\n",
        "a: &x [*x]\n",
        "a: &x 1\nb: &x 2\n",
        "a: ! 12\nb: !!str 12\nc: !!int '7'\n",
        "a:\nb: ~\nc: ''\nd: null\n",
        "[a, {b: c}, [d], {? e}]\n",
        "? a\n? b\n",
        "a:\n  - b: 1\n    c: [x, {d: [y]}]\n  - - - z\n",
        "- " * 45 + "x\n",
    ],
)
def test_hand_picked_texts_read_the_same_both_ways(text: str) -> None:
    _same(read_yaml(text, "t.yaml"), yamlsource._read_pure(text, "t.yaml"))


def test_without_libyaml_the_pure_reader_reads_everything(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(yamlsource, "_CStrictLoader", None)
    doc = read_yaml("a: 1\na: 2\n", "t.yaml")
    assert [(p.line, p.message) for p in doc.problems] == [
        (2, "duplicate key 'a' (first given on line 1)")
    ]
