"""Helpers shared by tests: paths and the rule for servers that are missing.

A test that needs a server (PostgreSQL, Redis, SMTP) and cannot reach it is
skipped on a developer's machine but fails in CI (``CI=true``), so CI can never
be green by skipping.
"""

from __future__ import annotations

import contextlib
import functools
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from workflow.core.plan import Definitions

ROOT = Path(__file__).resolve().parent.parent
DEFINITIONS = ROOT / "definitions"
FIXTURES = ROOT / "tests" / "fixtures"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing_server(what: str) -> None:
    """Skip locally, fail in CI."""
    if in_ci():
        pytest.fail(f"{what} is not reachable, and CI must not skip it", pytrace=False)
    pytest.skip(f"{what} is not reachable")


#: Set to rewrite the golden files from what the code produces now (then review the diff).
UPDATE_GOLDEN = os.environ.get("COUNCIL_UPDATE_GOLDEN") == "1"


def assert_golden(path: Path, actual: bytes | str) -> None:
    """``actual`` is the golden file's content, byte for byte (text is compared as text,
    for a readable diff); with COUNCIL_UPDATE_GOLDEN=1 the file is written instead."""
    data = actual.encode() if isinstance(actual, str) else actual
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if isinstance(actual, str):
        assert actual == path.read_bytes().decode("utf-8"), f"differs from {path.name}"
    else:
        assert data == path.read_bytes(), f"differs from {path.name}"


def copy_definitions(target: Path, *, occasions: bool = False) -> Path:
    """A copy of the bundled definitions at ``target``; without its reporting occasions
    unless asked for. A worker's beat sweeps at the real clock: on the days around an
    occasion (late April, August, December) it would mail reminders and reports that a test
    about something else does not expect. Occasion tests bring them (``occasions=True``)."""
    import shutil

    ignore = None if occasions else shutil.ignore_patterns("occasions.yaml")
    shutil.copytree(DEFINITIONS, target, ignore=ignore)
    return target


@functools.cache
def write_flow_definitions(root: Path, *, extra_steps: str = "") -> Path:
    """People (a boss over two owners) and the ``flow`` workflow (a, then b and c, then
    d; ``extra_steps`` appended as YAML) under ``root``; the caller adds assignments."""
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    (root / "people.yaml").write_text(
        "people:\n"
        "  - {id: boss, name: Chef, email: boss@kommun.example}\n"
        "  - {id: owner, name: Ägare, email: owner@kommun.example, manager: boss}\n"
        "  - {id: other, name: Annan, email: other@kommun.example, manager: boss}\n"
    )
    (root / "workflows" / "flow.yaml").write_text(
        "id: flow\ntitle: Flöde\nsteps:\n"
        "  - {id: a, title: A, due: 5bd, remind: [-2bd]}\n"
        "  - {id: b, title: B, after: [a], due: 10bd}\n"
        "  - {id: c, title: C, after: [a]}\n"
        "  - {id: d, title: D, after: [b, c], due: 3bd}\n" + extra_steps
    )
    return root


def bundled() -> Definitions:
    """The bundled definitions, loaded once."""
    from workflow.definitions.loader import load

    return load([DEFINITIONS])


def read_terminal(master: int) -> bytes:
    """Everything a child process wrote to its side of a pseudo-terminal, until it closed
    it; then the master side is closed."""
    shown = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side of the terminal
            break
        if not chunk:
            break
        shown += chunk
    os.close(master)
    return bytes(shown)


@contextlib.contextmanager
def captured_logs(monkeypatch: pytest.MonkeyPatch, *modules: Any) -> Iterator[list[dict[str, Any]]]:
    """Every entry the ``modules`` log through their ``log``, as structlog received it.

    Each module gets a fresh logger proxy (one cached by an earlier test keeps the
    processors it was built with, and structlog's ``capture_logs`` would miss it), and
    every level is let through (an in-process CLI test may have configured WARNING).
    """
    import logging

    import structlog
    from structlog.testing import capture_logs

    from workflow.ops import logs

    logs.settle()  # else the first record would configure structlog over the capture
    for module in modules:
        monkeypatch.setattr(module, "log", structlog.get_logger(module.__name__))
    saved = structlog.get_config()
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
                        cache_logger_on_first_use=False)  # fmt: skip
    try:
        with capture_logs() as entries:
            yield entries
    finally:
        structlog.configure(**saved)
