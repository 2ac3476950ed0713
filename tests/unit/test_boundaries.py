"""The architecture, checked: who may import whom, where SQL and Celery live, what is pure.

docs/architecture.md says the same in words; each rule here is one test, read off the
source with :mod:`ast` (no module is imported). A rule that a change breaks fails with
the file, the line and what it may not do.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / "workflow"
CORE = WORKFLOW / "core"
STORE = WORKFLOW / "store"
WEB = ROOT / "web"
#: The engine's methods that record something: the web view calls none of them.
WRITING = {"act", "run_in", "start", "start_planned", "request_report",
           "request_occasion_report", "record_version", "open_occurrences"}  # fmt: skip

#: What the pure core may import besides itself and workflow.errors.
CORE_THIRD_PARTY = {"pydantic", "holidays"}
#: Standard modules that do I/O, read a clock or run processes: not in the core.
CORE_FORBIDDEN_STDLIB = {
    "os", "time", "socket", "smtplib", "subprocess", "shutil", "io", "pathlib", "tempfile",
    "asyncio", "threading", "multiprocessing", "urllib", "http", "logging", "random", "uuid",
    "sqlite3", "email", "mailbox", "ssl", "signal", "select", "selectors", "fcntl",
}  # fmt: skip
#: Clock reads: ``dt.datetime.now()``, ``date.today()``, ``time.time()`` and friends.
CLOCK_CALLS = {"now", "today", "utcnow", "time", "monotonic", "perf_counter", "time_ns"}
#: SQLAlchemy constructs that build SQL.
SQL_BUILDERS = {"select", "insert", "update", "delete", "text", "func", "table", "column"}


@dataclass(frozen=True)
class Violation:
    path: str
    line: int
    what: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.what}"


def python_files(*roots: Path) -> list[Path]:
    found: list[Path] = []
    for root in roots:
        found.extend([root] if root.is_file() else sorted(root.rglob("*.py")))
    return [p for p in found if "migrations" not in p.parts]


def imports(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """(line, dotted name) of every import, relative ones made absolute."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = module.split(".")[: -node.level]
                base = ".".join([*parent, base]) if base else ".".join(parent)
            yield node.lineno, base
            for alias in node.names:  # `from workflow import store` imports workflow.store
                yield node.lineno, f"{base}.{alias.name}"


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def check_source(
    source: str, path: str, rule: Callable[[ast.AST, str], Iterator[tuple[int, str]]]
) -> list[Violation]:
    module = module_name(ROOT / path)
    tree = ast.parse(source, filename=path)
    first: dict[int, str] = {}  # one violation a line: `from a import b` names a and a.b
    for line, what in rule(tree, module):
        first.setdefault(line, what)
    return [Violation(path, line, what) for line, what in sorted(first.items())]


def check(paths: list[Path], rule: Callable[[ast.AST, str], Iterator[tuple[int, str]]]) -> str:
    found = [v for p in paths for v in check_source(p.read_text(), str(p.relative_to(ROOT)), rule)]
    return "\n".join(str(v) for v in found)


# --- the rules ------------------------------------------------------------------------


def core_imports(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    for line, name in imports(tree, module):
        top = name.split(".")[0]
        if name.startswith("workflow."):
            if not (name.startswith("workflow.core") or name.startswith("workflow.errors")):
                yield line, f"the core imports {name} (only workflow.core and workflow.errors)"
        elif top == "workflow" or top == "__future__":
            continue
        elif top in sys.stdlib_module_names:
            if top in CORE_FORBIDDEN_STDLIB:
                yield line, f"the core imports {name}: I/O, clocks and processes stay outside"
        elif top not in CORE_THIRD_PARTY:
            yield line, f"the core imports {name} (only pydantic and holidays besides stdlib)"


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    return node.attr if isinstance(node, ast.Attribute) else None


def clock_reads(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """``datetime.now``, ``date.today``, ``time.time``...: called or passed on (as a
    ``default_factory``), a read of the clock all the same."""
    for node in ast.walk(tree):
        if not isinstance(node, ast.Attribute):
            continue
        owner = _name(node.value)
        if (owner in {"datetime", "date"} and node.attr in CLOCK_CALLS) or (
            owner == "time" and node.attr in CLOCK_CALLS
        ):
            yield node.lineno, f"reads the clock ({owner}.{node.attr}): take `now` as a parameter"


def imports_the_outside(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    for line, name in imports(tree, module):
        if name.split(".")[0] in {"tasks", "worker", "commands", "cli", "web"}:
            yield line, f"workflow/ imports {name}: tasks, worker, commands, cli and web use it"


def imports_celery(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    for line, name in imports(tree, module):
        if name.split(".")[0] in {"celery", "kombu"}:
            yield line, f"imports {name}: Celery lives in tasks/ and worker.py"


def builds_sql(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    sa_names = {"sqlalchemy", "sa"}
    for line, name in imports(tree, module):
        if name.startswith("sqlalchemy.dialects") or name.startswith("sqlalchemy.sql"):
            yield line, f"imports {name}: SQL is written in workflow/store/"
        if name.startswith("sqlalchemy.") and name.rsplit(".", 1)[1] in SQL_BUILDERS:
            yield line, f"imports {name}: SQL is written in workflow/store/"
        if name.startswith("workflow.store.tables"):
            yield line, f"imports {name}: only workflow/store/ touches a table"
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            owner = node.value
            if isinstance(owner, ast.Name) and owner.id in sa_names and node.attr in SQL_BUILDERS:
                yield node.lineno, f"builds SQL (sa.{node.attr}): SQL is written in workflow/store/"
            if node.attr == "exec_driver_sql":
                yield node.lineno, "runs SQL (.exec_driver_sql): SQL is run in workflow/store/"
        # Whatever the connection is called: .execute(statement) runs SQL. (A Redis
        # pipeline's .execute() takes nothing.)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "execute"
            and (node.args or node.keywords)
        ):
            yield node.lineno, "runs SQL (.execute): SQL is run in workflow/store/"


def writes_events(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        name = node.attr if isinstance(node, ast.Attribute) else getattr(node, "id", None)
        if isinstance(node, ast.Attribute | ast.Name) and name == "append_events":
            yield node.lineno, "writes events itself: events go through the engine's EventLog"
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name == "append_events":
                    yield node.lineno, "imports append_events: events go through EventLog"


def web_imports(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """The web view uses workflow/ and the CLI's data views, nothing else of commands."""
    for line, name in imports(tree, module):
        top = name.split(".")[0]
        if top in {"tasks", "worker", "cli"}:
            yield line, f"web/ imports {name}: the web view hands no work to the workers"
        if top == "commands" and name not in {"commands", "commands.views"}:
            yield line, f"web/ imports {name}: of commands/, only the data views (views.py)"


def writes_from_the_web(tree: ast.AST, module: str) -> Iterator[tuple[int, str]]:
    """A call of a recording method of the engine (``engine.run(...)`` too; a waitress
    server's ``.run()`` takes nothing)."""
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name in WRITING or (name == "run" and (node.args or node.keywords)):
            yield node.lineno, f"calls .{name}: the web view writes nothing"


# --- one test per rule ----------------------------------------------------------------


def test_core_imports_only_core_errors_pydantic_holidays_and_pure_stdlib() -> None:
    """The core is pure: workflow.core, workflow.errors, pydantic, holidays and standard
    modules that do no I/O. No SQLAlchemy, no os, time, socket, smtplib or subprocess."""
    assert check(python_files(CORE), core_imports) == ""


def test_core_never_reads_the_clock() -> None:
    """Nothing in the core calls .now(), .today() or time.time(): time is a parameter."""
    assert check(python_files(CORE), clock_reads) == ""


def test_workflow_imports_no_tasks_worker_commands_or_cli() -> None:
    """workflow/ is used by tasks/, worker.py, commands/ and cli.py, never the other way."""
    assert check(python_files(WORKFLOW), imports_the_outside) == ""


def test_celery_only_in_tasks_and_worker() -> None:
    """Celery and kombu are imported only by tasks/ and worker.py: the doctor gets its
    Celery probes from tasks/control.py."""
    paths = python_files(WORKFLOW, ROOT / "commands", ROOT / "cli.py", WEB)
    assert check(paths, imports_celery) == ""


def test_sql_is_built_and_run_only_in_the_store() -> None:
    """Outside workflow/store/, nothing builds a statement or calls conn.execute: the
    application services and adapters call the store's functions."""
    paths = [p for p in python_files(WORKFLOW, ROOT / "commands", ROOT / "tasks", WEB)
             if STORE not in p.parents]  # fmt: skip
    assert check(paths, builds_sql) == ""


def test_events_are_written_only_through_the_engine() -> None:
    """store.append_events is called by the EventLog alone: commands, the sweep, a failed
    delivery and a report request all write events through it."""
    paths = [
        p
        for p in python_files(WORKFLOW, ROOT / "commands", ROOT / "tasks", WEB)
        if STORE not in p.parents and p != WORKFLOW / "eventlog.py"
    ]
    assert check(paths, writes_events) == ""


def test_the_web_view_imports_only_workflow_and_the_data_views() -> None:
    """web/ imports workflow/ and commands.views; no tasks, worker, cli or other command."""
    assert check(python_files(WEB), web_imports) == ""


def test_the_web_view_calls_nothing_that_writes() -> None:
    """web/ never calls the engine's recording methods (act, run, start, ...): it opens the
    database read-only as well, so a slip would fail at the database too."""
    assert check(python_files(WEB), writes_from_the_web) == ""


# --- the rules bite -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "added", "rule", "expected"),
    [
        ("workflow/core/state.py", "import sqlalchemy", core_imports, "imports sqlalchemy"),
        ("workflow/core/state.py", "import os", core_imports, "imports os"),
        ("workflow/core/state.py", "from workflow.store import tables", core_imports,
         "imports workflow.store"),
        ("workflow/core/machine.py", "x = dt.datetime.now()", clock_reads, "reads the clock"),
        ("workflow/core/calendar.py", "x = dt.date.today()", clock_reads, "reads the clock"),
        ("workflow/engine.py", "from tasks import publish", imports_the_outside,
         "imports tasks"),
        ("workflow/ops/doctor/workers.py", "from celery import Celery", imports_celery,
         "imports celery"),
        ("workflow/sweep.py", "q = sa.select(1)", builds_sql, "builds SQL"),
        ("workflow/replies/inbox.py", "def f(conn): conn.execute(1)", builds_sql, "runs SQL"),
        ("workflow/handlers.py", "def f(db):\n    with db.begin() as c: c.execute(q)", builds_sql,
         "runs SQL"),
        ("workflow/engine.py", "from workflow.store.tables import events", builds_sql,
         "only workflow/store/ touches a table"),
        ("workflow/core/events.py", "x = Field(default_factory=dt.datetime.now)", clock_reads,
         "reads the clock"),
        ("workflow/sweep.py", "store.append_events(conn, [], now=now)", writes_events,
         "writes events itself"),
        ("web/reader.py", "import tasks.dispatch", web_imports, "hands no work"),
        ("web/reader.py", "from commands import points", web_imports, "only the data views"),
        ("web/pages.py", "def f(): web().reader.engine.act(1, 2, now=3)", writes_from_the_web,
         "writes nothing"),
        ("workflow/engine.py", "import web.app", imports_the_outside, "imports web.app"),
    ],
)  # fmt: skip
def test_each_rule_fails_on_a_violation(
    path: str,
    added: str,
    rule: Callable[[ast.AST, str], Iterator[tuple[int, str]]],
    expected: str,
) -> None:
    """Adding a forbidden line to a real module makes its rule report file, line and why."""
    source = (ROOT / path).read_text()
    assert check_source(source, path, rule) == []
    found = check_source(f"{source}\n{added}\n", path, rule)
    assert len(found) == 1
    assert found[0].line == len(source.splitlines()) + 1 + added.count("\n") + 1
    assert expected in found[0].what
