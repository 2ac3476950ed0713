"""Terminal output: rich tables on a terminal, plain aligned text when piped, JSON on request.

Long work shows a progress bar on stderr when stderr is a terminal; piped, nothing.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any


def is_terminal() -> bool:
    return sys.stdout.isatty()


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2, default=str) + "\n")


def print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, title: str | None = None
) -> None:
    """A table: boxed and coloured on a terminal, plain columns when piped."""
    cells = [["" if cell is None else str(cell) for cell in row] for row in rows]
    if is_terminal():
        from rich.console import Console
        from rich.table import Table

        table = Table(title=title, title_justify="left", header_style="bold")
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in cells:
            table.add_row(*row)
        Console().print(table)
        return
    if title:
        sys.stdout.write(title + "\n")
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    for row in [list(columns), *cells]:
        line = "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        sys.stdout.write(line.rstrip() + "\n")


def print_lines(lines: Sequence[str]) -> None:
    for line in lines:
        sys.stdout.write(line + "\n")


#: Below this many items a progress bar would only flicker: none is shown.
PROGRESS_THRESHOLD = 50


def progress_wanted() -> bool:
    """Could a progress bar be shown: is stderr a terminal (not a dumb one)?

    Lets a command skip counting its work when nobody would see a bar.
    """
    return sys.stderr.isatty() and os.environ.get("TERM", "") != "dumb"


def shows_progress(total: int, *, threshold: int = PROGRESS_THRESHOLD) -> bool:
    """A bar only on a terminal (stderr), and only for enough work to be worth one."""
    return total >= threshold and progress_wanted()


@contextmanager
def progress(
    description: str, total: int, *, threshold: int = PROGRESS_THRESHOLD
) -> Iterator[Callable[[int], None]]:
    """Yield ``advance(n)``; a rich progress bar on stderr while the work runs.

    Piped (or for less than ``threshold`` items) nothing at all is printed and
    ``advance`` does nothing, so scripts see exactly the output they always did.
    The bar leaves no trace on the terminal when done; stdout is never touched,
    so print results after the ``with`` block.
    """
    if not shows_progress(total, threshold=threshold):
        yield _nothing
        return
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    with bar:
        task = bar.add_task(description, total=total)

        def advance(n: int = 1) -> None:
            bar.advance(task, n)

        yield advance


def _nothing(n: int = 1) -> None:
    """``advance`` when no bar is shown."""


#: Seconds one database statement may take before the CLI says that it waits.
WAIT_NOTICE = 1.0


def say_when_waiting(engine: Any) -> None:
    """On a terminal, say once on stderr when a database statement has waited a second:
    another council process holds SQLite's write lock (council waits up to 10 s for it),
    or a PostgreSQL row lock, or the server is slow. Scripts reading stderr see nothing."""
    if not sys.stderr.isatty():
        return
    import threading
    import time

    from sqlalchemy import event

    state: dict[str, Any] = {"since": None, "said": False}

    def started(*_: Any, **__: Any) -> None:
        state["since"] = time.monotonic()

    def ended(*_: Any, **__: Any) -> None:
        state["since"] = None

    event.listen(engine, "before_cursor_execute", started)
    event.listen(engine, "after_cursor_execute", ended)
    event.listen(engine, "handle_error", ended)

    def watch() -> None:
        while not state["said"]:
            time.sleep(0.2)
            since = state["since"]
            if since is not None and time.monotonic() - since >= WAIT_NOTICE:
                state["said"] = True
                print(
                    "waiting for the database: another council process is writing "
                    "(or the server is slow) ...",
                    file=sys.stderr,
                    flush=True,
                )

    threading.Thread(target=watch, name="council-wait-notice", daemon=True).start()
