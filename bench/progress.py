"""Progress for long benchmark runs: a rich bar on stderr when it is a terminal, else nothing.

Piped or redirected (``make bench > out.txt 2>&1``, CI), a run prints only its tables.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID


class Step(Protocol):
    def advance(self, amount: int = 1) -> None: ...

    def update(self, completed: int) -> None: ...


class _Quiet:
    def advance(self, amount: int = 1) -> None:
        pass

    def update(self, completed: int) -> None:
        pass


class _Bar:
    def __init__(self, bar: Progress, task: TaskID) -> None:
        self._bar = bar
        self._task = task

    def advance(self, amount: int = 1) -> None:
        self._bar.advance(self._task, amount)

    def update(self, completed: int) -> None:
        self._bar.update(self._task, completed=completed)


def interactive() -> bool:
    return sys.stderr.isatty()


@contextmanager
def progress(description: str, total: int | None = None) -> Iterator[Step]:
    """A bar (or a spinner, without a total) while the block runs; quiet when piped."""
    if not interactive():
        yield _Quiet()
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
    )

    columns = [SpinnerColumn(), TextColumn("{task.description}")]
    if total is not None:
        columns += [BarColumn(), MofNCompleteColumn()]
    columns.append(TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield _Bar(bar, task)
