"""Loading definitions: YAML reader -> typed models -> cross-checks -> plans.

``load(paths)`` returns :class:`Definitions` or raises :class:`DefinitionError`
carrying every problem of every file, each as ``path:line:column: message``.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from workflow.core.plan import (
    AssignmentPlan,
    BodyPlan,
    Definitions,
    Localized,
    OccasionPlan,
    build_point,
)
from workflow.core.specs import (
    MODELS,
    FileKind,
)
from workflow.core.values import Language
from workflow.definitions.checks import run_checks
from workflow.definitions.corpus import Corpus, Parsed, directory_of, workflows_of
from workflow.definitions.files import discover
from workflow.definitions.yamlsource import Document, read_yaml
from workflow.errors import DefinitionError, Problem

#: Default location of the definitions, relative to the working directory.
DEFAULT_ROOT = Path("definitions")
#: Definition files larger than this are refused unread.
MAX_FILE_BYTES = 1_000_000


def _display(path: Path) -> str:
    """The path as the user would type it: relative inside the working directory."""
    absolute = path.absolute()
    cwd = Path.cwd()
    return os.path.relpath(absolute, cwd) if absolute.is_relative_to(cwd) else str(absolute)


#: A file's kind by its name (people.yaml) or its folder (workflows/, assignments/).
_BY_STEM = {"people": FileKind.PEOPLE, "bodies": FileKind.BODIES, "occasions": FileKind.OCCASIONS}
_BY_FOLDER = {"workflows": FileKind.WORKFLOW, "assignments": FileKind.ASSIGNMENT}
#: Else by its first top-level key found, in this order.
_BY_KEY = (
    ("people", FileKind.PEOPLE),
    ("bodies", FileKind.BODIES),
    ("occasions", FileKind.OCCASIONS),
    ("points", FileKind.ASSIGNMENT),
    ("steps", FileKind.WORKFLOW),
)


def classify(path: Path, data: Any) -> FileKind | None:
    """Tell a file's kind from its place in the tree, else from its top-level keys."""
    kind = _BY_STEM.get(path.stem) or _BY_FOLDER.get(path.parent.name)
    if kind is not None or not isinstance(data, dict):
        return kind
    return next((kind for key, kind in _BY_KEY if key in data), None)


def _context(data: Any, loc: Sequence[str | int]) -> str:
    """Name the innermost ids along ``loc``: "point 3, step 'draft'"."""
    names: list[str] = []
    node = data
    for depth, part in enumerate(loc):
        try:
            node = node[part]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(node, dict):
            if isinstance(node.get("number"), int):
                names.append(f"point {node['number']}")
            elif isinstance(node.get("id"), str):
                kind = {"steps": "step", "people": "person"}.get(str(loc[depth - 1]), "entry")
                names.append(f"{kind} {node['id']!r}")
            elif depth and loc[depth - 1] == "override":
                names.append(f"override {part!r}")
    return ", ".join(names)


def _field_of(doc: Document, loc: Sequence[str | int]) -> str:
    """The name of the field an error is about, skipping pydantic's union tags."""
    known: tuple[str | int, ...] = ()
    name = ""
    for part in loc:
        if (*known, part) in doc.positions:
            known = (*known, part)
            name = part if isinstance(part, str) else ""
    return name


def _known_path(doc: Document, loc: Sequence[str | int]) -> tuple[str | int, ...]:
    known: tuple[str | int, ...] = ()
    for part in loc:
        if (*known, part) in doc.positions:
            known = (*known, part)
    return known


def _most_specific(errors: list[Any], doc: Document) -> list[Any]:
    """Of a union's alternatives, keep the errors that reach deepest into the value.

    ``title: {de: Titel}`` fails both as text and as a mapping; the mapping's
    complaint about ``de`` says what is wrong, "should be a valid string" does not.
    """
    paths = [_known_path(doc, tuple(e["loc"])) for e in errors]
    # An alternative of a union carries a tag in its loc that is no key of the document.
    tagged = [
        e["type"] != "missing" and len(tuple(e["loc"])) > len(p)
        for e, p in zip(errors, paths, strict=True)
    ]
    deepest = [p for p, t in zip(paths, tagged, strict=True) if t]
    return [
        error
        for error, path, is_tagged in zip(errors, paths, tagged, strict=True)
        if not is_tagged
        or not any(len(other) > len(path) and other[: len(path)] == path for other in deepest)
    ]


def _problems_from(exc: ValidationError, doc: Document) -> list[Problem]:
    problems: list[Problem] = []
    seen: set[tuple[int, int]] = set()
    errors = _most_specific(exc.errors(), doc)
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        field_name = str(loc[-1]) if loc else "file"
        if kind == "extra_forbidden":
            message = f"unknown key {field_name!r}"
        elif kind == "missing":
            message = f"missing field {field_name!r}"
        else:
            text = str(error["msg"]).removeprefix("Value error, ")
            name = _field_of(doc, loc)
            message = f"{name}: {text}" if name else text
        where = doc.locate(loc, key=kind == "extra_forbidden")
        if where in seen:  # a union reports each alternative; the first says enough
            continue
        seen.add(where)
        context = _context(doc.data, loc if kind != "missing" else loc[:-1])
        if context:
            message = f"{context}: {message}"
        problems.append(Problem(doc.path, where[0], where[1], message))
    return problems


def read(paths: Iterable[Path]) -> Corpus:
    """Read and validate each file on its own; collect every problem."""
    corpus = Corpus()
    for path in discover(paths):
        shown = _display(path)
        try:
            if path.stat().st_size > MAX_FILE_BYTES:
                corpus.problems.append(Problem(shown, 1, 1, "file is too large"))
                continue
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            corpus.problems.append(Problem(shown, 0, 0, "no such file or directory"))
            continue
        except UnicodeDecodeError as exc:
            corpus.problems.append(_not_utf8(shown, exc))
            continue
        except OSError as exc:
            corpus.problems.append(Problem(shown, 1, 1, f"cannot read: {exc.strerror or exc}"))
            continue
        _read_one(corpus, path, read_yaml(text, shown))
    return corpus


def _not_utf8(shown: str, exc: UnicodeDecodeError) -> Problem:
    data = exc.object
    line = data.count(b"\n", 0, exc.start) + 1
    column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
    return Problem(shown, line, column, f"not UTF-8: byte 0x{data[exc.start]:02x} is not text")


def _read_one(corpus: Corpus, path: Path, doc: Document) -> None:
    corpus.problems.extend(doc.problems)
    if doc.problems:
        _remember_id(corpus, doc.data)
        kind = classify(path, doc.data)
        corpus.broken_bodies |= kind is FileKind.BODIES
        if not isinstance(doc.data, dict) and kind is not None:
            corpus.unreadable.add(kind)
        return
    if not isinstance(doc.data, dict):
        corpus.problems.append(doc.problem((), "expected a mapping of keys at the top level"))
        return
    kind = classify(path, doc.data)
    if kind is None:
        corpus.problems.append(
            doc.problem(
                (),
                "cannot tell the kind of file: expected people:, bodies:, occasions:, steps: "
                "or points:",
            )
        )
        return
    try:
        model = MODELS[kind].model_validate(doc.data)
    except ValidationError as exc:
        corpus.problems.extend(_problems_from(exc, doc))
        _remember_id(corpus, doc.data)
        corpus.broken_bodies |= kind is FileKind.BODIES
        return
    _lists(corpus)[kind].append(Parsed(model, doc))


def _lists(corpus: Corpus) -> dict[FileKind, list[Any]]:
    """The corpus's list of valid files of each kind."""
    return {
        FileKind.PEOPLE: corpus.people,
        FileKind.WORKFLOW: corpus.workflows,
        FileKind.ASSIGNMENT: corpus.assignments,
        FileKind.BODIES: corpus.bodies,
        FileKind.OCCASIONS: corpus.occasions,
    }


def _remember_id(corpus: Corpus, data: Any) -> None:
    """What a file that failed declares (its id, its people and their roles): references to
    them elsewhere are not reported as unknown, which would bury the one real problem."""
    if not isinstance(data, dict):
        return
    if isinstance(data.get("id"), str):
        corpus.broken_ids.add(data["id"])
    bodies = data.get("bodies")
    for body in bodies if isinstance(bodies, list) else []:
        if isinstance(body, dict) and isinstance(body.get("id"), str):
            corpus.broken_ids.add(body["id"])
    people = data.get("people")
    for person in people if isinstance(people, list) else []:
        if not isinstance(person, dict):
            continue
        if isinstance(person.get("id"), str):
            corpus.broken_ids.add(person["id"])
        roles = person.get("roles")
        corpus.broken_ids.update(r for r in (roles if isinstance(roles, list) else []) if
                                 isinstance(r, str))  # fmt: skip


def build(corpus: Corpus) -> Definitions:
    """Resolve a checked corpus into plans."""
    directory = directory_of(corpus)
    workflows = workflows_of(corpus)
    assignments: dict[str, AssignmentPlan] = {}
    sources: dict[str, str] = {}
    for parsed in corpus.assignments:
        spec = parsed.model
        lang = spec.language
        title = Localized.of(spec.title, lang)
        assert title is not None
        assignments[spec.id] = AssignmentPlan(
            id=spec.id,
            title=title,
            reference=spec.reference,
            decided_by=spec.decided_by,
            decided_on=spec.decided_on,
            paragraph=spec.paragraph,
            lead=spec.assigned_to.lead,
            co_owners=tuple(spec.assigned_to.co_owners),
            coordinator=directory.resolve(spec.coordinator),
            report_back=spec.report_back,
            report_to=spec.report_to,
            tags=tuple(spec.tags),
            public=spec.public,
            language=lang,
            description=Localized.of(spec.description, lang),
            points=tuple(
                build_point(spec.id, p, workflows, directory, lang)
                for p in sorted(spec.points, key=lambda p: p.number)
            ),
        )
        sources[spec.id] = parsed.doc.path
    return Definitions(
        directory, workflows, assignments, sources, bodies_of(corpus), occasions_of(corpus)
    )


def bodies_of(corpus: Corpus) -> dict[str, BodyPlan]:
    directory = directory_of(corpus)
    bodies: dict[str, BodyPlan] = {}
    for parsed in corpus.bodies:
        for body in parsed.model.bodies:
            name = Localized.of(body.name, Language.SV)
            assert name is not None
            bodies.setdefault(body.id, BodyPlan(body.id, name, directory.resolve(body.chief),
                                                body.registrar))  # fmt: skip
    return bodies


def occasions_of(corpus: Corpus) -> dict[str, OccasionPlan]:
    directory = directory_of(corpus)
    occasions: dict[str, OccasionPlan] = {}
    for parsed in corpus.occasions:
        for occasion in parsed.model.occasions:
            name = Localized.of(occasion.name, occasion.language)
            assert name is not None
            occasions.setdefault(occasion.id, OccasionPlan(
                id=occasion.id, name=name, rule=occasion.rule(),
                coordinator=directory.resolve(occasion.coordinator),
                language=occasion.language, bodies=tuple(occasion.covers.bodies),
                tags=tuple(occasion.covers.tags), report_to=occasion.report_to,
                remind=tuple(occasion.remind),
            ))  # fmt: skip
    return occasions


def check(paths: Iterable[Path]) -> tuple[Definitions | None, list[Problem]]:
    """Load ``paths``; return the definitions (when valid) and every problem."""
    corpus = read(paths)
    problems = [*corpus.problems, *run_checks(corpus)]
    problems.sort(key=lambda p: (p.path, p.line, p.column))
    if problems:
        return None, problems
    return build(corpus), []


def load(paths: Iterable[Path] = (DEFAULT_ROOT,)) -> Definitions:
    """Load and resolve definitions, or raise :class:`DefinitionError` with every problem."""
    definitions, problems = check(paths)
    if definitions is None:
        raise DefinitionError(problems)
    return definitions
