"""Resolved plans: what the machine runs, built from checked definitions.

A plan has every override applied and every owner resolved to a person id, so
the machine never looks anything up. Plans are frozen and hashable into a
stable digest, which the store keeps to notice definitions that changed under
running points.
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any

from workflow.core import recurrence
from workflow.core.calendar import Calendar
from workflow.core.recurrence import Rule
from workflow.core.specs import (
    Absence,
    DueRule,
    Duration,
    Language,
    LocalLine,
    LocalProse,
    Person,
    PointSpec,
    StepSpec,
    WorkflowSpec,
)

#: The escalation target that means "the owner's manager".
MANAGER = "manager"


@dataclass(frozen=True, slots=True)
class Localized:
    """A text in Swedish, English or both; asking for a missing one falls back."""

    sv: str | None = None
    en: str | None = None

    def get(self, language: Language | str) -> str:
        primary, other = (self.sv, self.en) if language == Language.SV else (self.en, self.sv)
        return primary or other or ""

    def __str__(self) -> str:
        return self.sv or self.en or ""

    @classmethod
    def of(cls, value: LocalLine | LocalProse | None, default: Language) -> Localized | None:
        if value is None:
            return None
        if isinstance(value, str):
            return cls(**{default.value: value})
        return cls(**{lang.value: text for lang, text in value.items()})


@dataclass(frozen=True, slots=True)
class Rung:
    """One resolved escalation rung: ``to`` is a person id or :data:`MANAGER`."""

    level: int
    after: Duration
    to: str


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One step as the machine runs it."""

    id: str
    title: Localized
    owner: str
    after: tuple[str, ...] = ()
    description: Localized | None = None
    due: DueRule | None = None
    #: ``None`` means "no reminders declared": the deadline sweep's default policy applies.
    remind: tuple[Duration, ...] | None = None
    escalate: tuple[Rung, ...] = ()
    requires_note: bool = False
    assembles_report: bool = False
    delegable: bool = False
    #: A recurring duty's rule: the step itself is never worked on, its occurrences are.
    repeat: Rule | None = None
    #: For an occurrence: its period (``2027-W05``); its id is ``DUTY@PERIOD``.
    period: str | None = None

    @property
    def duty(self) -> bool:
        """The step recurs: each of its periods is an occurrence of its own."""
        return self.repeat is not None


@dataclass(frozen=True, slots=True)
class PointPlan:
    """One numbered point and the steps it runs through."""

    assignment: str
    number: int
    title: Localized
    owner: str | None
    steps: tuple[StepPlan, ...]
    workflow: str | None = None
    description: Localized | None = None
    start: dt.date | None = None
    due: dt.date | None = None
    rejected: bool = False
    report_back: bool = False

    @property
    def address(self) -> str:
        return f"{self.assignment}/{self.number}"

    def step(self, step_id: str) -> StepPlan:
        """A step by id; an occurrence's id (``DUTY@PERIOD``) gives its duty's plan for it."""
        for step in self.steps:
            if step.id == step_id:
                return step
        duty, period = recurrence.split(step_id)
        if period is not None:
            for step in self.steps:
                if step.id == duty and step.repeat is not None:
                    return occurrence_plan(step, period)
        raise KeyError(step_id)

    def duties(self) -> tuple[StepPlan, ...]:
        return tuple(step for step in self.steps if step.repeat is not None)

    def dependants(self, step_id: str) -> Iterator[StepPlan]:
        return (step for step in self.steps if step_id in step.after)


@dataclass(frozen=True, slots=True)
class AssignmentPlan:
    """One council assignment, resolved."""

    id: str
    title: Localized
    reference: str
    decided_by: str
    decided_on: dt.date
    lead: str
    coordinator: str
    report_back: dt.date
    language: Language
    points: tuple[PointPlan, ...]
    paragraph: str | None = None
    co_owners: tuple[str, ...] = ()
    description: Localized | None = None
    #: The body the report goes to; None: the body that decided (``decided_by``).
    report_to: str | None = None
    tags: tuple[str, ...] = ()
    #: Shown on the public site; never hashed (publishing changes nothing the machine runs).
    public: bool = False
    #: :attr:`digest`, once computed: the plan never changes, and hashing it costs
    #: milliseconds per hundred points, on every command and every site build.
    _digest: str | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def receiver(self) -> str:
        """The body the report back goes to."""
        return self.report_to or self.decided_by

    def involves(self, body: str) -> bool:
        """The body leads or co-owns the assignment."""
        return body == self.lead or body in self.co_owners

    def point(self, number: int) -> PointPlan:
        for point in self.points:
            if point.number == number:
                return point
        raise KeyError(number)

    @property
    def digest(self) -> str:
        """A stable hash of everything the machine would run differently.

        Fields a release added are left out while they hold their default, so an
        unchanged definition keeps its digest across an upgrade (a running assignment
        must not look changed because the code learnt something new).
        """
        if self._digest is not None:
            return self._digest
        data = _plain(self)
        data.pop("public")
        data.pop("_digest")
        for name in _ADDED_ASSIGNMENT_FIELDS:
            if not data.get(name):
                data.pop(name, None)
        for point in data["points"]:
            for step in point["steps"]:
                for name in _ADDED_STEP_FIELDS:
                    if step.get(name) is None:
                        step.pop(name, None)
        text = json.dumps(data, sort_keys=True, default=str, ensure_ascii=False)
        digest = hashlib.sha256(text.encode()).hexdigest()
        object.__setattr__(self, "_digest", digest)  # frozen: set once, like a cached property
        return digest


def _plain(value: Any) -> Any:
    """``dataclasses.asdict`` without its deep copies (a plan's values are immutable): the
    same dicts and lists, so the same JSON, in a fraction of the time."""
    if value is None or isinstance(value, (str, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {_plain(k): _plain(v) for k, v in value.items()}
    names = _FIELDS.get(type(value))
    if names is None:
        if not is_dataclass(value) or isinstance(value, type):
            return value
        names = _FIELDS[type(value)] = tuple(f.name for f in fields(value))
    return {name: _plain(getattr(value, name)) for name in names}


#: Each dataclass's field names, as :func:`_plain` meets them.
_FIELDS: dict[type, tuple[str, ...]] = {}

#: StepPlan fields added after release 0.2: hashed only when set.
_ADDED_STEP_FIELDS = ("repeat", "period")
#: AssignmentPlan fields added after release 0.3: hashed only when set.
_ADDED_ASSIGNMENT_FIELDS = ("report_to", "tags")


@functools.lru_cache(maxsize=4096)
def occurrence_plan(duty: StepPlan, period: str) -> StepPlan:
    """One occurrence of a duty: the duty's owner, reminders and escalation, its period in
    its title ("Lägesbild – vecka 5 2027"), its due date given when it opens."""
    title = Localized(
        sv=f"{duty.title.get(Language.SV)} – {recurrence.period_words(period, Language.SV)}",
        en=f"{duty.title.get(Language.EN)} – {recurrence.period_words(period, Language.EN)}",
    )
    return replace(
        duty,
        id=f"{duty.id}{recurrence.MARK}{period}",
        title=title,
        after=(),
        due=None,
        repeat=None,
        period=period,
    )


@dataclass(frozen=True, slots=True)
class BodyPlan:
    """A committee or board: its name, the person who answers for it, its registry."""

    id: str
    name: Localized
    #: The chief officer's person id.
    chief: str
    registrar: str | None = None


@dataclass(frozen=True, slots=True)
class OccasionPlan:
    """A reporting occasion, resolved: its yearly day rule and what it covers."""

    id: str
    name: Localized
    rule: Rule
    #: The coordinator's person id: reminded before the day, sent the report on it.
    coordinator: str
    language: Language
    bodies: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    report_to: str | None = None
    remind: tuple[Duration, ...] = ()

    def day(self, year: int, calendar: Calendar) -> dt.date:
        """The occasion's day in ``year``."""
        return recurrence.day_in_year(self.rule, year, calendar)

    def covers(self, assignment: AssignmentPlan) -> bool:
        """The occasion's selection, by body and tag (whether it is open is the report's
        business: it depends on the day)."""
        if self.bodies and not any(assignment.involves(b) for b in self.bodies):
            return False
        return not self.tags or any(t in assignment.tags for t in self.tags)


@dataclass(frozen=True)
class Directory:
    """People by id, with role lookup; a body's id stands for its chief officer."""

    people: Mapping[str, Person] = field(default_factory=dict)
    #: Body id -> the person id or role that answers for it.
    chiefs: Mapping[str, str] = field(default_factory=dict)

    def holders(self, role: str) -> list[str]:
        return [p.id for p in self.people.values() if role in p.roles]

    def roles(self) -> set[str]:
        return {role for person in self.people.values() for role in person.roles}

    def resolve(self, name: str) -> str:
        """Return the person id that ``name`` (a person id, a role, or a body: its chief)
        stands for."""
        if name in self.people:
            return name
        if name in self.chiefs and self.chiefs[name] != name:
            return self.resolve(self.chiefs[name])
        holders = self.holders(name)
        if len(holders) != 1:
            raise KeyError(name)
        return holders[0]

    def language_of(self, person_id: str) -> Language:
        person = self.people.get(person_id)
        return person.language if person else Language.SV

    def absence_on(self, person_id: str, day: dt.date) -> Absence | None:
        """The absence that covers ``day`` for the person, if any (one with a substitute first).

        The one place that says whether someone is away: deadlines and prompts go to
        the substitute it names, and a copy waits for the day after it ends.
        """
        person = self.people.get(person_id)
        covering = [a for a in (person.away if person else ()) if a.from_ <= day <= a.to]
        covering.sort(key=lambda a: a.substitute is None)
        return covering[0] if covering else None

    def substitute_on(self, person_id: str, day: dt.date) -> str | None:
        """Who acts for the person on ``day``: their substitute while they are away."""
        absence = self.absence_on(person_id, day)
        return absence.substitute if absence else None


@dataclass(frozen=True)
class Definitions:
    """A valid, resolved set of definitions: the directory, workflows and assignment plans."""

    directory: Directory
    workflows: dict[str, WorkflowSpec]
    assignments: dict[str, AssignmentPlan]
    #: Each assignment's definition file, as the user would type its path.
    sources: dict[str, str]
    #: Declared bodies by id; empty when no bodies.yaml is given (names are then free text).
    bodies: dict[str, BodyPlan] = field(default_factory=dict)
    occasions: dict[str, OccasionPlan] = field(default_factory=dict)

    def summary(self) -> str:
        """11 people, 5 bodies, 3 occasions, 7 workflows, 3 assignments, 15 points."""
        counts = [(len(self.directory.people), "people"), (len(self.bodies), "bodies"),
                  (len(self.occasions), "occasions"), (len(self.workflows), "workflows"),
                  (len(self.assignments), "assignments"),
                  (sum(len(a.points) for a in self.assignments.values()), "points")]  # fmt: skip
        shown = [c for c in counts if c[0] or c[1] not in ("bodies", "occasions")]
        return ", ".join(f"{n} {what}" for n, what in shown)

    def body_name(self, ref: str, language: Language | str) -> str:
        """A body's name in ``language``; an undeclared name is shown as written."""
        body = self.bodies.get(ref)
        return body.name.get(language) if body else ref

    def assignment(self, assignment_id: str) -> AssignmentPlan:
        return self.assignments[assignment_id]


def _merge(step: StepSpec, point: PointSpec) -> StepSpec:
    """The workflow's step with the point's override applied, validated again."""
    override = point.override.get(step.id)
    if override is None:
        return step
    merged = {
        **step.model_dump(exclude_unset=True),
        **override.model_dump(exclude_unset=True, exclude_none=True),
    }
    return StepSpec.model_validate(merged)


def build_step(step: StepSpec, point: PointSpec, directory: Directory, lang: Language) -> StepPlan:
    """Resolve one (already overridden) step of a point."""
    owner = step.owner or point.owner
    assert owner is not None, "checks guarantee every step has an owner"
    title = Localized.of(step.title, lang)
    assert title is not None
    return StepPlan(
        id=step.id,
        title=title,
        owner=directory.resolve(owner),
        after=tuple(step.after or ()),
        description=Localized.of(step.description, lang),
        due=step.due,
        remind=tuple(step.remind) if step.remind is not None else None,
        escalate=tuple(
            Rung(level, r.after, r.to if r.to == MANAGER else directory.resolve(r.to))
            for level, r in enumerate(step.escalate or (), start=1)
        ),
        requires_note=bool(step.requires_note),
        assembles_report=bool(step.assembles_report),
        delegable=bool(step.delegable),
        repeat=step.repeat.rule() if step.repeat is not None else None,
    )


def effective_steps(point: PointSpec, workflows: Mapping[str, WorkflowSpec]) -> list[StepSpec]:
    """The steps a point runs: its inline steps, or its workflow's with overrides applied."""
    if point.steps is not None:
        return list(point.steps)
    if point.workflow is None or point.workflow not in workflows:
        return []
    return [_merge(step, point) for step in workflows[point.workflow].steps]


def build_point(
    assignment_id: str,
    point: PointSpec,
    workflows: Mapping[str, WorkflowSpec],
    directory: Directory,
    lang: Language,
) -> PointPlan:
    title = Localized.of(point.title, lang)
    assert title is not None
    steps = () if point.decision == "rejected" else effective_steps(point, workflows)
    return PointPlan(
        assignment=assignment_id,
        number=point.number,
        title=title,
        owner=directory.resolve(point.owner) if point.owner else None,
        steps=tuple(build_step(s, point, directory, lang) for s in steps),
        workflow=point.workflow,
        description=Localized.of(point.description, lang),
        start=point.start,
        due=point.due,
        rejected=point.decision == "rejected",
        report_back=point.report_back,
    )
