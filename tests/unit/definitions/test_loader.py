"""Tests of loading definitions: the invalid corpus, the bundled tree, error collection.

Each file in ``tests/fixtures/invalid/`` breaks one rule and starts with comment lines

    # expect: LINE:COLUMN: message fragment

giving every problem that file must produce when validated together with the valid tree
``tests/fixtures/base/``: the message must contain the fragment. A fixture whose header
has a line ``# alone`` is validated with the base's people and workflows only (a bodies
file makes the base's free-text bodies unknown ids).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from workflow.core.specs import FileKind
from workflow.definitions import checks
from workflow.definitions.corpus import Corpus
from workflow.definitions.loader import MAX_FILE_BYTES, check, classify, load
from workflow.errors import DefinitionError, Problem

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures"
BASE = FIXTURES / "base"
INVALID = FIXTURES / "invalid"
BUNDLED = REPO / "definitions"

INVALID_FILES = sorted(INVALID.glob("*.yaml"))

_EXPECT = re.compile(r"^# expect: (\d+):(\d+): (.+)$")


@dataclass(frozen=True)
class Expected:
    """One problem a fixture announces in its ``# expect:`` header."""

    line: int
    column: int
    fragment: str

    def matches(self, problem: Problem) -> bool:
        where = (problem.line, problem.column) == (self.line, self.column)
        return where and self.fragment in problem.message

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.fragment}"


def expectations(path: Path) -> list[Expected]:
    """The ``# expect:`` lines of a fixture's leading comment block."""
    text = path.read_bytes().decode("utf-8", errors="replace")
    found: list[Expected] = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        if match := _EXPECT.match(line):
            line, column, fragment = match.groups()
            found.append(Expected(int(line), int(column), fragment.strip()))
    return found


def paths_for(path: Path) -> list[Path]:
    """What a fixture is validated with: the base tree, or (``# alone``) its people and
    workflows only."""
    header = path.read_bytes().decode("utf-8", errors="replace").split("\n# alone\n")[0]
    if header != path.read_bytes().decode("utf-8", errors="replace"):
        return [BASE / "people.yaml", BASE / "workflows", path]
    return [BASE, path]


def _same_file(problem: Problem, path: Path) -> bool:
    return Path(problem.path).resolve() == path.resolve()


def _shown(problems: list[Problem]) -> str:
    return "\n".join(str(p) for p in problems) or "(no problems)"


def _write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


_ASSIGNMENT_HEAD = """\
id: {id}
title: Uppdrag
reference: KS 2024/99
decided_by: Kommunfullmäktige
decided_on: 2024-01-15
assigned_to: {{lead: Kommunstyrelsen}}
coordinator: registrator
report_back: 2024-12-16
points:
"""


# --- the corpus itself -------------------------------------------------------------


def test_corpus_is_large_enough_and_every_file_announces_its_problems() -> None:
    """There are at least 28 invalid fixtures, each with at least one # expect: line."""
    assert len(INVALID_FILES) >= 28
    silent = [path.name for path in INVALID_FILES if not expectations(path)]
    assert silent == []


def test_fixture_numbers_are_unique() -> None:
    """Fixture names are NN-rule-name.yaml with distinct numbers, so each rule has one file."""
    numbers = [path.name.split("-", 1)[0] for path in INVALID_FILES]
    assert all(re.fullmatch(r"\d\d", number) for number in numbers), numbers
    assert len(numbers) == len(set(numbers))


def test_base_tree_is_valid() -> None:
    """The base tree the invalid fixtures lean on loads without a single problem."""
    definitions, problems = check([BASE])

    assert problems == [], _shown(problems)
    assert definitions is not None
    assert set(definitions.workflows) == {"review", "publish"}
    assert definitions.directory.holders("handlaggare") == ["bo.berg", "cecilia.ek"]
    plan = definitions.assignment("base-2024")
    assert [p.number for p in plan.points] == [1, 2, 3, 4]
    assert plan.coordinator == "bo.berg"
    assert plan.point(1).step("draft").owner == "cecilia.ek", "override of the owner applies"
    assert plan.point(1).step("approve").owner == "anna.chef", "role resolved to its holder"
    assert plan.point(4).rejected
    assert plan.point(4).steps == ()


@pytest.mark.parametrize("path", INVALID_FILES, ids=lambda path: path.stem)
def test_invalid_fixture_reports_exactly_its_problems(path: Path) -> None:
    """Each invalid fixture yields exactly the announced problems, in itself only.

    Same set of (line, column) as the # expect: lines, each message holding its fragment
    (and with it the offending id), no problem in the base tree and no extra one.
    """
    expected = expectations(path)

    definitions, problems = check(paths_for(path))

    assert definitions is None
    elsewhere = [p for p in problems if not _same_file(p, path)]
    assert elsewhere == [], f"problems outside the fixture:\n{_shown(elsewhere)}"
    assert sorted((p.line, p.column) for p in problems) == sorted(
        (e.line, e.column) for e in expected
    ), f"got:\n{_shown(problems)}"
    unmatched = list(problems)
    for want in expected:
        hit = next((p for p in unmatched if want.matches(p)), None)
        assert hit is not None, f"no problem matches {want}; got:\n{_shown(problems)}"
        unmatched.remove(hit)


def test_every_cross_check_is_exercised_by_the_corpus(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each registered check in workflow.definitions.checks reports something for a fixture."""
    fired: set[str] = set()

    def spy(fn: Callable[[Corpus], Iterator[Problem]]) -> Callable[[Corpus], Iterator[Problem]]:
        def wrapper(corpus: Corpus) -> Iterator[Problem]:
            for problem in fn(corpus):
                fired.add(fn.__name__)
                yield problem

        return wrapper

    names = {fn.__name__ for fn in checks.CHECKS}
    monkeypatch.setattr(checks, "CHECKS", [spy(fn) for fn in checks.CHECKS])
    for path in INVALID_FILES:
        try:
            check(paths_for(path))
        except Exception:  # a crash fails the fixture's own test, not this one
            continue

    assert sorted(names - fired) == []


# --- the bundled definitions -------------------------------------------------------


def test_bundled_definitions_load_without_problems() -> None:
    """definitions/ validates cleanly and builds its assignments with 7, 4 and 4 points."""
    definitions, problems = check([BUNDLED])

    assert problems == [], _shown(problems)
    assert definitions is not None
    points = {aid: len(plan.points) for aid, plan in definitions.assignments.items()}
    assert points == {"kf-2022-hedersvald": 7, "kf-2024-lokalforsorjning": 4, "kf-2025-trygghet": 4}
    assert len(definitions.workflows) == 7


def test_bundled_definitions_resolve_roles_and_rejections() -> None:
    """load() resolves roles to person ids and keeps the rejected point without steps."""
    definitions = load([BUNDLED])

    seed = definitions.assignment("kf-2022-hedersvald")
    assert seed.coordinator == "sara.nilsson"
    assert seed.point(2).step("offer").owner == "sara.nilsson"
    assert seed.point(7).report_back
    premises = definitions.assignment("kf-2024-lokalforsorjning")
    assert premises.point(3).rejected
    assert premises.point(3).steps == ()
    assert premises.point(1).step("inventory").owner == "per.lund"


# --- collecting every problem ------------------------------------------------------


def test_all_field_errors_of_one_file_are_reported_together(tmp_path: Path) -> None:
    """Several field mistakes in one file come back at once, each at its own line."""
    path = _write(
        tmp_path,
        "workflows/many.yaml",
        "id: many\n"
        "title: Många fel\n"
        "colour: red\n"
        "steps:\n"
        "  - id: Write\n"
        "    title: Skriv\n"
        "    due: 10x\n"
        "  - id: check\n"
        "    requires_note: maybe\n",
    )

    _, problems = check([path])

    assert [(p.line, p.column) for p in problems] == [(3, 1), (5, 9), (7, 10), (8, 5), (9, 20)]
    messages = [p.message for p in problems]
    assert "unknown key 'colour'" in messages[0]
    assert "step 'Write': id: 'Write' is not a valid id: use lower-case letters" in messages[1]
    assert "step 'Write': due: '10x' is not a due rule" in messages[2]
    assert "step 'check': missing field 'title'" in messages[3]
    assert "step 'check': requires_note: Input should be a valid boolean" in messages[4]


def test_all_cross_file_errors_of_one_file_are_reported_together(tmp_path: Path) -> None:
    """Several broken references in one valid-shaped file are all reported in one run."""
    path = _write(
        tmp_path,
        "assignments/many.yaml",
        _ASSIGNMENT_HEAD.format(id="many-refs").replace("registrator", "nobody") + "  - number: 1\n"
        "    title: Ett\n"
        "    workflow: missing-flow\n"
        "    owner: bo.berg\n"
        "  - number: 1\n"
        "    title: Ett igen\n"
        "    owner: handlaggare\n"
        "    due: 2024-06-14\n"
        "    steps:\n"
        "      - {id: a, title: A, after: [b]}\n"
        "      - {id: b, title: B, after: [a], escalate: [{after: 2bd, to: nobody}]}\n",
    )

    _, problems = check([BASE, path])

    assert all(_same_file(p, path) for p in problems), _shown(problems)
    assert [(p.line, p.column) for p in problems] == [
        (7, 14),
        (12, 15),
        (14, 13),
        (16, 12),
        (19, 34),
        (20, 34),
        (20, 67),
    ], _shown(problems)
    text = _shown(problems)
    for fragment in (
        "coordinator 'nobody' is no person or role",
        "point 1: unknown workflow 'missing-flow'",
        "duplicate point number 1",
        "owner 'handlaggare' is a role held by 2 people",
        "cycle in after: a -> b -> a",
        "cycle in after: b -> a -> b",
        "escalation to 'nobody' is no person or role",
    ):
        assert fragment in text


def test_problems_of_several_files_are_reported_together_and_sorted() -> None:
    """Problems from several broken files come back in one list, sorted by path and line."""
    files = [INVALID / "34-cycle-in-after.yaml", INVALID / "07-unknown-key.yaml"]

    _, problems = check([BASE, *files])

    assert {Path(p.path).name for p in problems} == {f.name for f in files}
    assert problems == sorted(problems, key=lambda p: (p.path, p.line, p.column))
    assert len(problems) == 3


def test_load_raises_definition_error_listing_every_problem() -> None:
    """load() raises DefinitionError whose text is one path:line:column: message per line."""
    path = INVALID / "34-cycle-in-after.yaml"

    with pytest.raises(DefinitionError) as caught:
        load([BASE, path])

    assert len(caught.value.problems) == 2
    lines = str(caught.value).splitlines()
    assert len(lines) == 2
    for line in lines:
        shown, line_no, column, message = line.split(":", 3)
        assert Path(shown).resolve() == path.resolve()
        assert line_no.isdigit()
        assert column.isdigit()
        assert "cycle in after:" in message


def test_ids_of_broken_files_are_not_reported_as_unknown(tmp_path: Path) -> None:
    """A workflow that fails its own validation is not also 'unknown' where it is used."""
    broken = _write(
        tmp_path,
        "workflows/broken.yaml",
        "id: broken-flow\ntitle: Trasig\nsteps: [{id: a, title: A, colour: red}]\n",
    )
    user = _write(
        tmp_path,
        "assignments/user.yaml",
        _ASSIGNMENT_HEAD.format(id="user")
        + "  - {number: 1, title: Ett, workflow: broken-flow, owner: bo.berg}\n",
    )

    _, problems = check([BASE, broken, user])

    assert [(Path(p.path).name, p.line, p.message) for p in problems] == [
        ("broken.yaml", 3, "step 'a': unknown key 'colour'")
    ]


def test_naming_a_file_twice_does_not_make_duplicates() -> None:
    """A file given both itself and through its directory is read once, not duplicated."""
    _, problems = check([BASE, BASE / "people.yaml"])

    assert problems == [], _shown(problems)


# --- files that cannot be read -----------------------------------------------------


def test_missing_file_is_reported_at_zero_zero(tmp_path: Path) -> None:
    """A path that does not exist is a problem at 0:0, not an exception."""
    missing = tmp_path / "nope.yaml"

    _, problems = check([missing])

    assert [(p.line, p.column, p.message) for p in problems] == [
        (0, 0, "no such file or directory")
    ]
    assert _same_file(problems[0], missing)


def test_too_large_file_is_refused_unread(tmp_path: Path) -> None:
    """A file over MAX_FILE_BYTES is refused with 'file is too large' at 1:1."""
    path = tmp_path / "huge.yaml"
    path.write_bytes(b"# " + b"x" * MAX_FILE_BYTES + b"\n")

    _, problems = check([path])

    assert [(p.line, p.column, p.message) for p in problems] == [(1, 1, "file is too large")]


def test_directory_discovery_reads_yaml_and_yml_only(tmp_path: Path) -> None:
    """Directories are searched for *.yaml and *.yml at any depth; other files are ignored."""
    _write(tmp_path, "deep/er/bad.yml", "- a list\n")
    _write(tmp_path, "notes.txt", "not: [yaml\n")
    _write(tmp_path, "readme.md", "# nothing\n")

    _, problems = check([tmp_path])

    assert [(Path(p.path).name, p.message) for p in problems] == [
        ("bad.yml", "expected a mapping of keys at the top level")
    ]


# --- telling the kind of a file ----------------------------------------------------


@pytest.mark.parametrize(
    ("path", "data", "kind"),
    [
        ("defs/people.yaml", {"points": []}, FileKind.PEOPLE),
        ("defs/people.yml", None, FileKind.PEOPLE),
        ("defs/workflows/x.yaml", {"people": []}, FileKind.WORKFLOW),
        ("defs/assignments/x.yaml", {"steps": []}, FileKind.ASSIGNMENT),
        ("loose.yaml", {"people": [], "points": []}, FileKind.PEOPLE),
        ("loose.yaml", {"points": [], "steps": []}, FileKind.ASSIGNMENT),
        ("loose.yaml", {"steps": []}, FileKind.WORKFLOW),
        ("loose.yaml", {"id": "x"}, None),
        ("loose.yaml", ["people"], None),
        ("defs/workflows/sub/x.yaml", {"id": "x"}, None),
    ],
)
def test_classify_uses_place_then_top_level_keys(
    path: str, data: object, kind: FileKind | None
) -> None:
    """classify(): stem people, then a workflows/ or assignments/ parent, then the keys."""
    assert classify(Path(path), data) is kind


@pytest.mark.parametrize(
    ("file", "old", "new", "problem"),
    [
        ("people.yaml", "email: amir.hassan@kommun.example", "email: amir.hassan.kommun.example",
         "person 'amir.hassan': email: value is not a valid email address"),
        ("workflows/follow-up-system.yaml", "en: Systematic follow-up}", "de: Nein}",
         "de: Input should be 'sv' or 'en'"),
        ("people.yaml", "  - id: karin.holm\n", "  - id: karin.holm\n  bad: [\n",
         "invalid YAML"),
        ("workflows/follow-up-system.yaml", "steps:\n", "steps: {\n", "invalid YAML"),
    ],
    ids=["a person's e-mail", "a workflow's title", "people.yaml's YAML",
         "a workflow's YAML"],
)  # fmt: skip
def test_one_bad_field_is_one_problem(
    tmp_path: Path, file: str, old: str, new: str, problem: str
) -> None:
    """A file that fails (people.yaml with one bad e-mail, a workflow with one bad title)
    is its own one problem: the people, roles and workflows it declares are not reported
    as unknown wherever they are used."""
    copy = tmp_path / "definitions"
    shutil.copytree(BUNDLED, copy)
    path = copy / file
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new), encoding="utf-8")
    definitions, problems = check([copy])
    assert definitions is None
    assert len(problems) == 1, _shown(problems)
    assert problem in problems[0].message
