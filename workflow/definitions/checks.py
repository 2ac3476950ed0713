"""Cross-file checks of definitions: one small function per rule.

Each check reads the :class:`~workflow.definitions.loader.Corpus` of files that passed
their own validation and yields :class:`Problem` entries naming the offending
ids. :func:`run_checks` runs them all, so every problem is reported at once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from workflow.core.actions import SYSTEM
from workflow.core.plan import MANAGER, Directory, effective_steps
from workflow.core.recurrence import MAX_DUTY_ID
from workflow.core.specs import PointSpec, StepFields, StepSpec
from workflow.definitions.corpus import Corpus, Parsed, directory_of, workflows_of
from workflow.definitions.dag import Where, dag_problems, under
from workflow.definitions.yamlsource import Document, Path
from workflow.errors import Problem

Check = Callable[[Corpus], Iterator[Problem]]
CHECKS: list[Check] = []


def check(fn: Check) -> Check:
    """Register a check; the order of registration is the order of the report."""
    CHECKS.append(fn)
    return fn


def run_checks(corpus: Corpus) -> list[Problem]:
    return [problem for fn in CHECKS for problem in fn(corpus)]


def _directory(corpus: Corpus) -> Directory:
    return directory_of(corpus)


def _known(corpus: Corpus, name: str) -> bool:
    directory = _directory(corpus)
    return (
        name in directory.people
        or name in directory.roles()
        or name in directory.chiefs
        or corpus.may_be_person(name)
    )


# --- people ----------------------------------------------------------------------


@check
def _check_duplicate_people(corpus: Corpus) -> Iterator[Problem]:
    seen: dict[str, str] = {}
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            where = parsed.doc.problem(("people", i, "id"), "")
            if person.id in seen:
                yield parsed.doc.problem(
                    ("people", i, "id"),
                    f"duplicate person id {person.id!r} (first at {seen[person.id]})",
                )
            else:
                seen[person.id] = f"{where.path}:{where.line}"


@check
def _check_reserved_ids(corpus: Corpus) -> Iterator[Problem]:
    """``council`` is the actor of what council does by itself: no person or role."""
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            if person.id == SYSTEM:
                yield parsed.doc.problem(("people", i, "id"),
                                         f"{SYSTEM!r} is reserved for council itself")  # fmt: skip
            for j, role in enumerate(person.roles):
                if role == SYSTEM:
                    yield parsed.doc.problem(
                        ("people", i, "roles", j),
                        f"person {person.id!r}: role {SYSTEM!r} is reserved for council itself",
                    )


@check
def _check_roles_distinct_from_people(corpus: Corpus) -> Iterator[Problem]:
    directory = _directory(corpus)
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            for j, role in enumerate(person.roles):
                if role in directory.people:
                    yield parsed.doc.problem(
                        ("people", i, "roles", j),
                        f"person {person.id!r}: role {role!r} has the same name as a person id",
                    )


@check
def _check_managers_exist(corpus: Corpus) -> Iterator[Problem]:
    directory = _directory(corpus)
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            manager = person.manager
            if manager and manager not in directory.people and not corpus.may_be_person(manager):
                yield parsed.doc.problem(
                    ("people", i, "manager"),
                    f"person {person.id!r}: unknown manager {person.manager!r}",
                )
            if person.manager == person.id:
                yield parsed.doc.problem(
                    ("people", i, "manager"), f"person {person.id!r} is their own manager"
                )


@check
def _check_manager_chain_ends(corpus: Corpus) -> Iterator[Problem]:
    """Escalating "to manager" must climb somewhere: report each loop once."""
    directory = _directory(corpus)
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            chain = [person.id]
            current = person.manager
            while current is not None and current in directory.people and current not in chain:
                chain.append(current)
                current = directory.people[current].manager
            if current == person.id and len(chain) > 1 and person.id == min(chain):
                loop = " -> ".join([*chain, person.id])
                yield parsed.doc.problem(("people", i, "manager"), f"manager chain loops: {loop}")


@check
def _check_substitutes_exist(corpus: Corpus) -> Iterator[Problem]:
    directory = _directory(corpus)
    for parsed in corpus.people:
        for i, person in enumerate(parsed.model.people):
            for j, absence in enumerate(person.away):
                sub = absence.substitute
                if sub and sub not in directory.people and not corpus.may_be_person(sub):
                    yield parsed.doc.problem(
                        ("people", i, "away", j, "substitute"),
                        f"person {person.id!r}: unknown substitute {sub!r}",
                    )


# --- references to people and roles ----------------------------------------------


def _resolve_problem(corpus: Corpus, name: str, what: str) -> str | None:
    """Why ``name`` cannot stand for exactly one person, or None when it can."""
    directory = _directory(corpus)
    if name in directory.people or corpus.may_be_person(name):
        return None
    if name in directory.chiefs:  # a body: its chief officer (checked with the bodies)
        return None
    holders = directory.holders(name)
    if not holders:
        return f"{what} {name!r} is no person or role"
    if len(holders) > 1:
        return f"{what} {name!r} is a role held by {len(holders)} people ({', '.join(holders)})"
    return None


@dataclass(frozen=True)
class _StepSite:
    """A step (or step override) and where it is written."""

    doc: Document
    path: Path
    label: str
    fields: StepFields


def _workflow_steps(corpus: Corpus) -> Iterator[_StepSite]:
    for parsed in corpus.workflows:
        for i, step in enumerate(parsed.model.steps):
            label = f"workflow {parsed.model.id!r}, step {step.id!r}"
            yield _StepSite(parsed.doc, ("steps", i), label, step)


def _point_steps(corpus: Corpus) -> Iterator[tuple[_StepSite, PointSpec]]:
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            base = ("points", i)
            for j, step in enumerate(point.steps or ()):
                label = f"point {point.number}, step {step.id!r}"
                yield _StepSite(parsed.doc, (*base, "steps", j), label, step), point
            for step_id, fields in point.override.items():
                label = f"point {point.number}, override {step_id!r}"
                yield _StepSite(parsed.doc, (*base, "override", step_id), label, fields), point


@check
def _check_step_owners(corpus: Corpus) -> Iterator[Problem]:
    for site in _workflow_steps(corpus):
        if site.fields.owner and (msg := _resolve_problem(corpus, site.fields.owner, "owner")):
            yield site.doc.problem((*site.path, "owner"), f"{site.label}: {msg}")
    for site, _point in _point_steps(corpus):
        if site.fields.owner and (msg := _resolve_problem(corpus, site.fields.owner, "owner")):
            yield site.doc.problem((*site.path, "owner"), f"{site.label}: {msg}")


@check
def _check_point_owners(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            if point.owner and (msg := _resolve_problem(corpus, point.owner, "owner")):
                yield parsed.doc.problem(("points", i, "owner"), f"point {point.number}: {msg}")


@check
def _check_coordinators(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.assignments:
        spec = parsed.model
        if msg := _resolve_problem(corpus, spec.coordinator, "coordinator"):
            yield parsed.doc.problem(("coordinator",), f"assignment {spec.id!r}: {msg}")


def _escalations(corpus: Corpus) -> Iterator[_StepSite]:
    yield from _workflow_steps(corpus)
    for site, _point in _point_steps(corpus):
        yield site


@check
def _check_escalation_targets(corpus: Corpus) -> Iterator[Problem]:
    for site in _escalations(corpus):
        for k, rung in enumerate(site.fields.escalate or ()):
            if rung.to == MANAGER:
                continue
            msg = _resolve_problem(corpus, rung.to, "escalation to")
            if msg:
                yield site.doc.problem(
                    (*site.path, "escalate", k, "to"), f"{site.label}: {msg} (escalation to nobody)"
                )


@check
def _check_escalation_order(corpus: Corpus) -> Iterator[Problem]:
    for site in _escalations(corpus):
        ladder = site.fields.escalate or ()
        for k in range(1, len(ladder)):
            before, rung = ladder[k - 1].after, ladder[k].after
            if before.kind == rung.kind and rung.days <= before.days:
                yield site.doc.problem(
                    (*site.path, "escalate", k, "after"),
                    f"{site.label}: escalation rung {k + 1} ({rung}) must come after "
                    f"rung {k} ({before})",
                )


# --- workflows and their DAGs ----------------------------------------------------


def _duplicate_ids(kind: str, files: Sequence[Parsed[Any]]) -> Iterator[Problem]:
    """Files of one kind whose ``id`` an earlier file already declared."""
    seen: dict[str, str] = {}
    for parsed in files:
        file_id = parsed.model.id
        if file_id in seen:
            yield parsed.doc.problem(
                ("id",), f"duplicate {kind} id {file_id!r} (also in {seen[file_id]})"
            )
        else:
            seen[file_id] = parsed.doc.path


@check
def _check_duplicate_workflows(corpus: Corpus) -> Iterator[Problem]:
    yield from _duplicate_ids("workflow", corpus.workflows)


@check
def _check_workflow_dags(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.workflows:
        wf = parsed.model
        yield from dag_problems(wf.steps, parsed.doc, under(("steps",)), f"workflow {wf.id!r}")


@check
def _check_point_dags(corpus: Corpus) -> Iterator[Problem]:
    workflows = workflows_of(corpus)
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            label = f"point {point.number}"
            if point.steps is not None:
                where = under(("points", i, "steps"))
                yield from dag_problems(point.steps, parsed.doc, where, label)
            elif any(o.after is not None for o in point.override.values()):
                steps = effective_steps(point, workflows)
                yield from dag_problems(steps, parsed.doc, _in_override(i, steps), label)


def _in_override(point_index: int, steps: Sequence[StepSpec]) -> Where:
    """Problems of an overridden DAG point at the override that caused them, if any."""
    return lambda i, rest: ("points", point_index, "override", steps[i].id, *rest)


# --- assignments -----------------------------------------------------------------


@check
def _check_duplicate_assignments(corpus: Corpus) -> Iterator[Problem]:
    yield from _duplicate_ids("assignment", corpus.assignments)


@check
def _check_point_numbers(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.assignments:
        seen: set[int] = set()
        for i, point in enumerate(parsed.model.points):
            if point.number in seen:
                yield parsed.doc.problem(
                    ("points", i, "number"),
                    f"assignment {parsed.model.id!r}: duplicate point number {point.number}",
                )
            seen.add(point.number)


@check
def _check_workflows_exist(corpus: Corpus) -> Iterator[Problem]:
    known = {w.model.id for w in corpus.workflows}
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            wf = point.workflow
            if wf and wf not in known and not corpus.may_be_workflow(wf):
                yield parsed.doc.problem(
                    ("points", i, "workflow"),
                    f"point {point.number}: unknown workflow {point.workflow!r}",
                )


@check
def _check_overrides_name_steps(corpus: Corpus) -> Iterator[Problem]:
    workflows = workflows_of(corpus)
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            wf = workflows.get(point.workflow or "")
            if wf is None:
                continue
            ids = {s.id for s in wf.steps}
            for step_id in point.override:
                if step_id not in ids:
                    yield parsed.doc.problem(
                        ("points", i, "override", step_id),
                        f"point {point.number}: override names unknown step {step_id!r} "
                        f"of workflow {wf.id!r}",
                        key=True,
                    )


@check
def _check_every_step_has_owner(corpus: Corpus) -> Iterator[Problem]:
    workflows = workflows_of(corpus)
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            if point.owner or point.decision == "rejected":
                continue
            orphans = [s.id for s in effective_steps(point, workflows) if not s.owner]
            if orphans:
                yield parsed.doc.problem(
                    ("points", i, "number"),
                    f"point {point.number}: step(s) {', '.join(orphans)} have no owner; "
                    "give the point an owner: or each step one",
                )


@check
def _check_deadlines_have_due_dates(corpus: Corpus) -> Iterator[Problem]:
    workflows = workflows_of(corpus)
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            if point.due or point.decision == "rejected":
                continue
            for step in effective_steps(point, workflows):
                if step.repeat is None and step.due is None and (step.remind or step.escalate):
                    yield parsed.doc.problem(
                        ("points", i, "number"),
                        f"point {point.number}, step {step.id!r}: reminders and escalations "
                        "need a due date; give the step a due: or the point one",
                    )


@check
def _check_report_back_date(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.assignments:
        spec = parsed.model
        if spec.report_back < spec.decided_on:
            yield parsed.doc.problem(
                ("report_back",),
                f"assignment {spec.id!r}: report_back ({spec.report_back}) is before the "
                f"council's decision ({spec.decided_on})",
            )


@check
def _check_point_dates(corpus: Corpus) -> Iterator[Problem]:
    for parsed in corpus.assignments:
        spec = parsed.model
        for i, point in enumerate(spec.points):
            for name in ("start", "due"):
                value = getattr(point, name)
                if value and value < spec.decided_on:
                    yield parsed.doc.problem(
                        ("points", i, name),
                        f"point {point.number}: {name} ({value}) is before the council's "
                        f"decision ({spec.decided_on})",
                    )


@check
def _check_duties(corpus: Corpus) -> Iterator[Problem]:
    """A recurring duty stands alone: its occurrences are due by its rule, wait on nothing
    and nothing waits on them, and its id leaves room for the period."""
    workflows = workflows_of(corpus)
    for parsed in corpus.assignments:
        for i, point in enumerate(parsed.model.points):
            if point.decision == "rejected":
                continue
            steps = effective_steps(point, workflows)
            duties = {s.id for s in steps if s.repeat is not None}
            where, label = ("points", i, "number"), f"point {point.number}"
            for step in steps:
                for problem in _duty_problems(step, duties, point):
                    yield parsed.doc.problem(where, f"{label}, step {step.id!r}: {problem}")


def _duty_problems(step: StepSpec, duties: set[str], point: PointSpec) -> Iterator[str]:
    waits_on = sorted(duties & set(step.after or ()))
    if waits_on:
        yield (
            f"waits on the recurring duty {', '.join(waits_on)}, which never finishes as "
            "a whole; wait on another step, or make this step recur too"
        )
    if step.repeat is None:
        return
    if step.after:
        yield "a recurring duty cannot wait on other steps (after:); it runs from the start"
    if step.due is not None:
        yield "a recurring duty's occurrences are due by its repeat: rule; remove due:"
    if len(step.id) > MAX_DUTY_ID:
        yield f"a recurring duty's id has at most {MAX_DUTY_ID} characters (it gets @PERIOD)"
    until = step.repeat.until
    if until is not None and point.start is not None and until < point.start:
        yield f"repeat: until ({until}) is before the point's start ({point.start})"


# --- bodies and occasions --------------------------------------------------------


def _declared_bodies(corpus: Corpus) -> dict[str, str]:
    """Body id -> where it is declared."""
    seen: dict[str, str] = {}
    for parsed in corpus.bodies:
        for i, body in enumerate(parsed.model.bodies):
            where = parsed.doc.problem(("bodies", i, "id"), "")
            seen.setdefault(body.id, f"{where.path}:{where.line}")
    return seen


@check
def _check_bodies(corpus: Corpus) -> Iterator[Problem]:
    """Body ids are unique and no person or role; each body's chief is one person."""
    directory = _directory(corpus)
    seen: dict[str, str] = {}
    for parsed in corpus.bodies:
        for i, body in enumerate(parsed.model.bodies):
            where = parsed.doc.problem(("bodies", i, "id"), "")
            if body.id in seen:
                yield parsed.doc.problem(
                    ("bodies", i, "id"), f"duplicate body id {body.id!r} (first at {seen[body.id]})"
                )
                continue
            seen[body.id] = f"{where.path}:{where.line}"
            if body.id in directory.people or body.id in directory.roles() or body.id == SYSTEM:
                yield parsed.doc.problem(
                    ("bodies", i, "id"),
                    f"body {body.id!r} has the same id as a person or role",
                )
            if body.chief in directory.chiefs:
                yield parsed.doc.problem(
                    ("bodies", i, "chief"),
                    f"body {body.id!r}: the chief is a person or a role, not a body",
                )
            elif msg := _resolve_problem(corpus, body.chief, "chief"):
                yield parsed.doc.problem(("bodies", i, "chief"), f"body {body.id!r}: {msg}")


def _unknown_body(corpus: Corpus, name: str, declared: dict[str, str]) -> str | None:
    if name in declared or corpus.may_be_body(name):
        return None
    known = ", ".join(sorted(declared)) or "none"
    return f"unknown body {name!r} (bodies.yaml declares: {known})"


@check
def _check_assignment_bodies(corpus: Corpus) -> Iterator[Problem]:
    """With bodies declared, an assignment names them by id: who decided, leads, co-owns and
    receives the report. Without a bodies file the names are free text, as before 0.4."""
    if not corpus.declares_bodies():
        for parsed in corpus.assignments:
            if parsed.model.report_to is not None:
                message = "report_to: names a body; declare bodies in bodies.yaml"
                yield parsed.doc.problem(("report_to",), message)
        return
    declared = _declared_bodies(corpus)
    for parsed in corpus.assignments:
        spec = parsed.model
        refs: list[tuple[Path, str]] = [
            (("decided_by",), spec.decided_by),
            (("assigned_to", "lead"), spec.assigned_to.lead),
        ]
        owners = spec.assigned_to.co_owners
        refs += [(("assigned_to", "co_owners", j), c) for j, c in enumerate(owners)]
        if spec.report_to is not None:
            refs.append((("report_to",), spec.report_to))
        for path, name in refs:
            if msg := _unknown_body(corpus, name, declared):
                yield parsed.doc.problem(path, msg)
        if spec.assigned_to.lead in spec.assigned_to.co_owners:
            j = spec.assigned_to.co_owners.index(spec.assigned_to.lead)
            message = f"{spec.assigned_to.lead!r} leads; it is no co-owner too"
            yield parsed.doc.problem(("assigned_to", "co_owners", j), message)


@check
def _check_occasions(corpus: Corpus) -> Iterator[Problem]:
    """Occasion ids are unique; their bodies, tags and coordinator exist."""
    declared = _declared_bodies(corpus)
    tags = {t for parsed in corpus.assignments for t in parsed.model.tags}
    seen: dict[str, str] = {}
    for parsed in corpus.occasions:
        for i, occasion in enumerate(parsed.model.occasions):
            where = parsed.doc.problem(("occasions", i, "id"), "")
            label = f"occasion {occasion.id!r}"
            if occasion.id in seen:
                yield parsed.doc.problem(("occasions", i, "id"),
                                         f"duplicate occasion id {occasion.id!r} "
                                         f"(first at {seen[occasion.id]})")  # fmt: skip
                continue
            seen[occasion.id] = f"{where.path}:{where.line}"
            if msg := _resolve_problem(corpus, occasion.coordinator, "coordinator"):
                yield parsed.doc.problem(("occasions", i, "coordinator"), f"{label}: {msg}")
            for j, body in enumerate(occasion.covers.bodies):
                if msg := _unknown_body(corpus, body, declared):
                    yield parsed.doc.problem(("occasions", i, "covers", "bodies", j),
                                             f"{label}: {msg}")  # fmt: skip
            if occasion.report_to is not None and (
                msg := _unknown_body(corpus, occasion.report_to, declared)
            ):
                yield parsed.doc.problem(("occasions", i, "report_to"), f"{label}: {msg}")
            for j, tag in enumerate(occasion.covers.tags):
                if tag not in tags and corpus.assignments:
                    message = f"{label}: no assignment has the tag {tag!r}"
                    yield parsed.doc.problem(("occasions", i, "covers", "tags", j), message)
