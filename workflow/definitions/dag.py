"""Checking a step graph (``after:``): duplicate ids, unknown steps, cycles, unreachable steps.

Used by :mod:`workflow.definitions.checks` for workflows and for points with their own
steps or overrides; each problem points at the ``after:`` or ``id`` that causes it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from workflow.core.specs import StepSpec
from workflow.definitions.yamlsource import Document, Path
from workflow.errors import Problem

#: Where a step's field is written: (index of the step, path below the step) -> path.
Where = Callable[[int, Path], Path]


def under(base: Path) -> Where:
    return lambda i, rest: (*base, i, *rest)


def dag_problems(
    steps: Sequence[StepSpec], doc: Document, where: Where, label: str
) -> Iterator[Problem]:
    """Duplicate step ids, unknown ``after:`` steps, cycles and unreachable steps."""
    index: dict[str, int] = {}
    for i, step in enumerate(steps):
        if step.id in index:
            yield doc.problem(where(i, ("id",)), f"{label}: duplicate step id {step.id!r}")
        index.setdefault(step.id, i)
    for i, step in enumerate(steps):
        for k, dep in enumerate(step.after or ()):
            if dep not in index:
                yield doc.problem(
                    where(i, ("after", k)),
                    f"{label}: step {step.id!r} is after unknown step {dep!r}",
                )
            elif dep == step.id:
                yield doc.problem(
                    where(i, ("after", k)), f"{label}: step {step.id!r} is after itself"
                )
    yield from _reachability(steps, index, doc, where, label)


def _reachability(
    steps: Sequence[StepSpec], index: dict[str, int], doc: Document, where: Where, label: str
) -> Iterator[Problem]:
    """Kahn's algorithm: what never becomes ready is in a cycle or waits on one."""
    waiting = {s.id: {d for d in (s.after or ()) if d in index and d != s.id} for s in steps}
    ready = [sid for sid, deps in waiting.items() if not deps]
    reached: set[str] = set()
    while ready:
        sid = ready.pop()
        reached.add(sid)
        for other, deps in waiting.items():
            if sid in deps:
                deps.discard(sid)
                if not deps and other not in reached:
                    ready.append(other)
    stuck = [s.id for s in steps if s.id not in reached]
    in_cycle = {sid for sid in stuck if _on_cycle(sid, steps, index)}
    for sid in dict.fromkeys(stuck):
        i = index[sid]
        if sid in in_cycle:
            cycle = " -> ".join(_cycle_from(sid, steps, index))
            yield doc.problem(where(i, ("after",)), f"{label}: cycle in after: {cycle}")
        else:
            yield doc.problem(
                where(i, ("id",)), f"{label}: step {sid!r} can never start (no path reaches it)"
            )


def _deps(sid: str, steps: Sequence[StepSpec], index: dict[str, int]) -> list[str]:
    return [d for d in (steps[index[sid]].after or ()) if d in index]


def _on_cycle(start: str, steps: Sequence[StepSpec], index: dict[str, int]) -> bool:
    return bool(_cycle_from(start, steps, index))


def _cycle_from(start: str, steps: Sequence[StepSpec], index: dict[str, int]) -> list[str]:
    """A path start -> ... -> start through ``after:`` edges, or [] when none exists."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    visited: set[str] = set()
    while stack:
        node, path = stack.pop()
        for dep in _deps(node, steps, index):
            if dep == start:
                return [*path, start]
            if dep not in visited:
                visited.add(dep)
                stack.append((dep, [*path, dep]))
    return []
