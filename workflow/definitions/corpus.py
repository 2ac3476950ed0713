"""The corpus: every definition file that passed its own validation, before cross-checks.

:mod:`workflow.definitions.loader` reads files into a :class:`Corpus`;
:mod:`workflow.definitions.checks` checks it across files; the loader then builds plans.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from pydantic import BaseModel

from workflow.core.plan import Directory
from workflow.core.specs import (
    AssignmentSpec,
    BodiesFile,
    FileKind,
    OccasionsFile,
    PeopleFile,
    WorkflowSpec,
)
from workflow.definitions.yamlsource import Document
from workflow.errors import Problem

M = TypeVar("M", bound=BaseModel)


@dataclass
class Parsed(Generic[M]):
    """One valid file: its model and the document it came from (for positions)."""

    model: M
    doc: Document


@dataclass
class Corpus:
    """Everything read from the given paths, before cross-checks."""

    people: list[Parsed[PeopleFile]] = field(default_factory=list)
    workflows: list[Parsed[WorkflowSpec]] = field(default_factory=list)
    assignments: list[Parsed[AssignmentSpec]] = field(default_factory=list)
    bodies: list[Parsed[BodiesFile]] = field(default_factory=list)
    occasions: list[Parsed[OccasionsFile]] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    #: Ids declared by files that failed validation: references to them are not
    #: reported again as "unknown", which would only be noise.
    broken_ids: set[str] = field(default_factory=set)
    #: Kinds of file of which one could not be read at all (invalid YAML): what it
    #: declares is unknown, so no reference to that kind is called unknown.
    unreadable: set[FileKind] = field(default_factory=set)

    def may_be_person(self, name: str) -> bool:
        """A name no file declares may still be a person (or role) of an unreadable one."""
        return name in self.broken_ids or FileKind.PEOPLE in self.unreadable

    def may_be_workflow(self, name: str) -> bool:
        return name in self.broken_ids or FileKind.WORKFLOW in self.unreadable

    def declares_bodies(self) -> bool:
        """Bodies are declared (or a bodies file failed): assignments must name them by id."""
        return bool(self.bodies) or FileKind.BODIES in self.unreadable or self.broken_bodies

    def may_be_body(self, name: str) -> bool:
        return name in self.broken_ids or FileKind.BODIES in self.unreadable

    #: A bodies file was given but failed its own validation.
    broken_bodies: bool = False


def first_by_id(items: Iterable[M]) -> dict[str, M]:
    """Models by their ``id``; with duplicates (reported elsewhere) the first one wins."""
    found: dict[str, M] = {}
    for item in items:
        found.setdefault(item.id, item)  # type: ignore[attr-defined]
    return found


def directory_of(corpus: Corpus) -> Directory:
    bodies = first_by_id(b for parsed in corpus.bodies for b in parsed.model.bodies)
    return Directory(
        first_by_id(p for parsed in corpus.people for p in parsed.model.people),
        {body_id: body.chief for body_id, body in bodies.items()},
    )


def workflows_of(corpus: Corpus) -> dict[str, WorkflowSpec]:
    return first_by_id(w.model for w in corpus.workflows)
