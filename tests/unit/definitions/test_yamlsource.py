"""Tests of the strict YAML reader (``workflow.definitions.yamlsource``)."""

from __future__ import annotations

import pytest

from workflow.definitions.yamlsource import MAX_DEPTH, Document, read_yaml
from workflow.errors import Problem


def _read(text: str) -> Document:
    return read_yaml(text, "test.yaml")


def _nested(levels: int) -> str:
    """One line of ``levels`` nested flow sequences: ``[[[...]]]``."""
    return "[" * levels + "]" * levels + "\n"


# --- scalars ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "word", ["on", "off", "yes", "no", "On", "OFF", "Yes", "NO", "y", "n", "Y", "N"]
)
def test_yaml11_booleans_stay_strings(word: str) -> None:
    """on/off/yes/no (YAML 1.1 booleans) are read as the text written, not as bools."""
    doc = _read(f"id: {word}\nlist: [{word}]\n{word}: key\n")

    assert doc.problems == []
    assert doc.data == {"id": word, "list": [word], word: "key"}
    assert all(isinstance(value, str) for value in (doc.data["id"], doc.data["list"][0]))


@pytest.mark.parametrize(
    ("word", "value"),
    [("true", True), ("True", True), ("TRUE", True), ("false", False), ("False", False)],
)
def test_true_and_false_are_booleans(word: str, value: bool) -> None:
    """Only true/false (in any of YAML 1.2's three spellings) become booleans."""
    doc = _read(f"flag: {word}\n")

    assert doc.problems == []
    assert doc.data["flag"] is value


@pytest.mark.parametrize("text", ["2023-05-31", "2023-02-30", "2023-05-31 10:00:00", "2023-5-1"])
def test_dates_stay_strings(text: str) -> None:
    """Dates and timestamps stay text, so an impossible date is left for validation."""
    doc = _read(f"due: {text}\n")

    assert doc.problems == []
    assert doc.data == {"due": text}


def test_numbers_and_null_keep_their_types() -> None:
    """Integers, floats and null are still resolved as YAML 1.2 core types."""
    doc = _read("number: 3\nratio: 1.5\nnothing: ~\nempty:\n")

    assert doc.problems == []
    assert doc.data == {"number": 3, "ratio": 1.5, "nothing": None, "empty": None}
    assert isinstance(doc.data["number"], int)


# --- positions -------------------------------------------------------------------


def test_positions_are_one_based_and_keyed_by_path() -> None:
    """Each value's line and column (1-based) is kept under its path; keys separately."""
    doc = _read("steps:\n  - id: draft\n    after: [one, two]\n")

    assert doc.positions[()] == (1, 1)
    assert doc.positions[("steps",)] == (2, 3)
    assert doc.positions[("steps", 0)] == (2, 5)
    assert doc.positions[("steps", 0, "id")] == (2, 9)
    assert doc.positions[("steps", 0, "after", 1)] == (3, 18)
    assert doc.key_positions[("steps", 0, "after")] == (3, 5)


def test_locate_falls_back_to_the_closest_enclosing_value() -> None:
    """locate() skips path parts that are not in the file (missing fields, union tags)."""
    doc = _read("steps:\n  - id: draft\n    title: Skriv\n")

    assert doc.locate(("steps", 0, "owner")) == (2, 5)
    assert doc.locate(("steps", 0, "title", "str")) == (3, 12)
    assert doc.locate(("steps", 0, "title"), key=True) == (3, 5)
    assert doc.locate(("nowhere",)) == (1, 1)


def test_problem_carries_path_line_and_column() -> None:
    """Document.problem() builds a Problem that prints as path:line:column: message."""
    doc = _read("id: x\nowner: nobody\n")

    problem = doc.problem(("owner",), "unknown owner 'nobody'")

    assert problem == Problem("test.yaml", 2, 8, "unknown owner 'nobody'")
    assert str(problem) == "test.yaml:2:8: unknown owner 'nobody'"


# --- duplicate and odd keys -----------------------------------------------------


def test_duplicate_key_is_reported_with_both_lines() -> None:
    """A key given twice is a problem at the second key naming the first key's line."""
    doc = _read("id: review\ntitle: Först\nsteps: []\ntitle: Sedan\n")

    assert doc.problems == [
        Problem("test.yaml", 4, 1, "duplicate key 'title' (first given on line 2)")
    ]
    assert doc.data["title"] == "Först", "the first value is kept, not silently overwritten"


def test_duplicate_key_in_a_nested_mapping_is_reported() -> None:
    """Duplicate keys are found at any depth, e.g. inside a flow mapping in a list."""
    doc = _read("steps:\n  - id: a\n    owner: x\n    owner: y\n")

    assert [(p.line, p.column, p.message) for p in doc.problems] == [
        (4, 5, "duplicate key 'owner' (first given on line 3)")
    ]


def test_same_key_in_different_mappings_is_fine() -> None:
    """Only a repeat within one mapping is a duplicate; sibling mappings may share keys."""
    doc = _read("steps:\n  - {id: a, title: A}\n  - {id: b, title: B}\n")

    assert doc.problems == []
    assert [step["id"] for step in doc.data["steps"]] == ["a", "b"]


@pytest.mark.parametrize(("key", "shown"), [("1", "1"), ("true", "True"), ("[a, b]", "['a', 'b']")])
def test_non_text_key_is_reported(key: str, shown: str) -> None:
    """A key that is not text (a number, a bool, a list) is a problem at that key."""
    doc = _read(f"id: x\n? {key}\n: value\n")

    assert [(p.line, p.column, p.message) for p in doc.problems] == [
        (2, 3, f"key {shown} must be text")
    ]


# --- anchors, aliases and limits -------------------------------------------------


def test_anchor_and_alias_share_a_value() -> None:
    """An alias reads as a copy of its anchored value, with positions under both paths."""
    doc = _read(
        "ladder: &ladder [{after: 3bd, to: manager}]\n"
        "steps:\n"
        "  - {id: a, escalate: *ladder}\n"
        "  - {id: b, escalate: *ladder}\n"
    )

    assert doc.problems == []
    expected = [{"after": "3bd", "to": "manager"}]
    assert doc.data["steps"][0]["escalate"] == expected
    assert doc.data["steps"][1]["escalate"] == expected
    assert ("steps", 1, "escalate", 0, "to") in doc.positions


def test_unknown_alias_is_invalid_yaml() -> None:
    """An alias to an anchor that was never defined is a YAML problem at the alias."""
    doc = _read("a: 1\nb: *missing\n")

    assert [(p.line, p.column) for p in doc.problems] == [(2, 4)]
    assert "invalid YAML" in doc.problems[0].message
    assert "missing" in doc.problems[0].message


def test_nesting_up_to_the_limit_is_accepted() -> None:
    """A value nested exactly MAX_DEPTH levels below the top is read normally."""
    doc = _read(_nested(MAX_DEPTH + 1))

    assert doc.problems == []


def test_nesting_beyond_the_limit_is_reported() -> None:
    """One level deeper than MAX_DEPTH is 'nested too deeply', at the offending value."""
    doc = _read(_nested(MAX_DEPTH + 2))

    assert doc.problems == [Problem("test.yaml", 1, MAX_DEPTH + 2, "nested too deeply")]


def test_alias_bomb_is_refused() -> None:
    """A few hundred bytes whose aliases expand to over half a million values are refused.

    The reader claims to stop alias bombs, but MAX_DEPTH only bounds depth: nine
    aliases per level over six levels stay shallow and expand 9**6 times.
    """
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 6)]
    text = "\n".join(lines) + "\n"
    assert len(text) < 400

    doc = _read(text)

    assert doc.problems, "an alias bomb must be reported, not expanded"


# --- syntax and reader errors ----------------------------------------------------


def test_syntax_error_is_a_problem_with_its_position() -> None:
    """A YAML syntax error becomes one Problem at the error's mark; data is None."""
    doc = _read("id: x\ntitle: a: b\n")

    assert doc.data is None
    assert doc.problems == [
        Problem("test.yaml", 2, 9, "invalid YAML: mapping values are not allowed here")
    ]


def test_tab_indentation_is_a_problem() -> None:
    """A tab used for indentation is reported as invalid YAML on its line."""
    doc = _read("steps:\n\t- a\n")

    assert [(p.line, p.column) for p in doc.problems] == [(2, 1)]
    assert doc.problems[0].message.startswith("invalid YAML:")


def test_second_document_is_a_problem() -> None:
    """A file holds one document; a second one after --- is invalid YAML."""
    doc = _read("a: 1\n---\nb: 2\n")

    assert [(p.line, p.column) for p in doc.problems] == [(2, 1)]
    assert "another document" in doc.problems[0].message


def test_python_tags_are_refused() -> None:
    """A tag that would build a Python object from a scalar is invalid YAML, never run."""
    doc = _read("a: !!python/object/apply:os.system echo\n")

    assert doc.data is None
    assert len(doc.problems) == 1
    assert doc.problems[0].message.startswith("invalid YAML: could not determine a constructor")


def test_tags_on_collections_are_refused() -> None:
    """A Python tag on a sequence or mapping is a problem at its line; nothing is executed."""
    doc = _read("a: !!python/object/apply:os.system [echo hi]\nb: !!python/object:x {k: v}\n")

    assert [(p.line, p.column) for p in doc.problems] == [(1, 4), (2, 4)]
    assert all("is not allowed in definitions" in p.message for p in doc.problems)
    assert doc.data == {"a": None, "b": None}


def test_merge_keys_get_a_clear_message() -> None:
    """A YAML merge key is refused with a message saying so, at the key's position."""
    doc = _read("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n")

    assert [(p.line, p.column) for p in doc.problems] == [(3, 3)]
    assert "merge keys (<<) are not supported" in doc.problems[0].message


def test_raw_control_character_is_a_problem_not_a_crash() -> None:
    """A raw control character is one invalid-YAML problem on one line, at its position."""
    doc = _read("id: x\ntitle: Skriv\x01\n")

    assert len(doc.problems) == 1
    problem = doc.problems[0]
    assert problem.message.startswith("invalid YAML")
    assert "U+0001" in problem.message, "the character is named as a code point"
    assert "\n" not in problem.message, "one problem, one line of output"
    assert (problem.line, problem.column) == (2, 13)


@pytest.mark.parametrize("text", ["", "\n", "# only a comment\n"])
def test_empty_text_has_no_data_and_no_problem(text: str) -> None:
    """An empty document reads as None without a problem (the loader judges that)."""
    doc = _read(text)

    assert doc.data is None
    assert doc.problems == []


@pytest.mark.parametrize(
    "text",
    [
        "x: " + "[" * 500 + "]" * 500,
        "x: " + "{a: " * 500 + "1" + "}" * 500,
        "x:\n" + "".join("  " * i + f"k{i}:\n" for i in range(1, 500)) + "  " * 500 + "v: 1\n",
        "a0: &a0 [1]\n" + "".join(f"a{i}: &a{i} [*a{i - 1}]\n" for i in range(1, 600)),
    ],
    ids=["flow-sequences", "flow-mappings", "block-mappings", "aliases-of-aliases"],
)
def test_five_hundred_levels_are_refused_without_a_recursion_error(text: str) -> None:
    """Hundreds of nested levels (written out, or built by aliases of aliases) are one
    'nested too deeply' problem, found before Python's recursion limit is near."""
    doc = _read(text)
    assert [p.message for p in doc.problems] == ["nested too deeply"]
    assert doc.data is None or isinstance(doc.data, dict)
