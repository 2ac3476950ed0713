"""Spiff benchmark: council's engine commands per second beside SpiffWorkflow 3.2.0's.

The same work on both sides: 500 instances of a process of seven user tasks in a row,
each started and its seven tasks completed one after the other (4,000 commands), every
command its own transaction and commit on SQLite in WAL with ``synchronous=NORMAL``.

- SpiffWorkflow 3.2.0 runs in its own venv under ``var/spiff-3.2.0`` (created with pip on
  the first run and kept), never the project's: ``bench/spiff_worker.py``, the BPMN
  written there. Each command runs the ready user task and the engine steps after it and
  serializes the workflow to its row. Judged on the kindest case for Spiff, the workflow
  objects kept in memory between commands; the stateless case (read and deserialize the
  row first, as a CLI or a mail handler must) is measured beside it.
- council: ``Engine.start(only=N)`` and seven ``CompleteStep`` through the engine, 50
  assignments of 10 points, each command one transaction (events, outbox rows, the
  point's projection and snapshot).

Three rounds, alternating; the median of each side. Target: council at least 2x Spiff's
rate (``failed`` when it misses).
"""

from __future__ import annotations

import datetime as dt
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from bench.progress import progress
from workflow import store
from workflow.core.actions import CompleteStep
from workflow.core.calendar import Calendar
from workflow.definitions.loader import load
from workflow.engine import Engine
from workflow.store import migrate

TZ = ZoneInfo("Europe/Stockholm")
BASE = dt.datetime(2024, 3, 4, 8, tzinfo=TZ)
STEPS = 7
POINTS = 500
PER_ASSIGNMENT = 10
ROUNDS = 3
TARGET = 2.0
SPIFF = "SpiffWorkflow==3.2.0"
VENV = Path(__file__).resolve().parent.parent / "var" / "spiff-3.2.0"
WORKER = Path(__file__).resolve().parent / "spiff_worker.py"


def spiff_python() -> Path:
    """SpiffWorkflow's own venv, created once and kept between runs."""
    python = VENV / "bin" / "python"
    ready = VENV / ".installed"
    if not ready.exists():
        with progress(f"spiff: installing {SPIFF} into {VENV}"):
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(VENV)], check=True)
            subprocess.run([str(python), "-m", "pip", "install", "-q", SPIFF], check=True)
        ready.write_text(SPIFF + "\n")
    return python


def write_definitions(root: Path, points: int = POINTS, per: int = PER_ASSIGNMENT) -> Path:
    """A workflow of seven steps in a row; ``points`` points in assignments of ``per``."""
    (root / "workflows").mkdir(parents=True)
    (root / "assignments").mkdir()
    (root / "people.yaml").write_text(
        "people:\n"
        "  - {id: boss, name: Chef, email: boss@kommun.example}\n"
        "  - {id: owner, name: Ägare, email: owner@kommun.example, manager: boss}\n"
    )
    steps = "".join(
        f"  - id: s{i}\n    title: Steg {i}\n" + (f"    after: [s{i - 1}]\n" if i > 1 else "")
        for i in range(1, STEPS + 1)
    )
    (root / "workflows" / "seven.yaml").write_text(f"id: seven\ntitle: Sju steg\nsteps:\n{steps}")
    for a in range(points // per):
        listed = "\n".join(
            f"  - {{number: {n}, title: Punkt {n}, workflow: seven, owner: owner}}"
            for n in range(1, per + 1)
        )
        (root / "assignments" / f"a{a:03d}.yaml").write_text(
            f"id: a{a:03d}\ntitle: Uppdrag {a}\nreference: KS {a}\ndecided_by: KF\n"
            "decided_on: 2024-01-15\nassigned_to: {lead: KS}\ncoordinator: boss\n"
            f"report_back: 2024-12-16\npoints:\n{listed}\n"
        )
    return root


def normal_sync(db: sa.Engine) -> None:
    """``synchronous=NORMAL`` on every SQLite connection (council's default is FULL)."""

    def pragma(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    sa.event.listen(db, "connect", pragma)


def council_round(tmp: Path, definitions: Path, name: str) -> dict[str, float]:
    db = store.connect(f"sqlite:///{tmp}/{name}.db")
    normal_sync(db)
    try:
        migrate.upgrade(db)
        defs = load([definitions])
        engine = Engine(db=db, definitions=defs, calendar=Calendar(), timezone=TZ)
        plans = [p for a in sorted(defs.assignments) for p in defs.assignment(a).points]
        commands = 0
        started = time.perf_counter()
        for plan in plans:
            engine.start(plan.assignment, actor="boss", now=BASE, only=plan.number)
            commands += 1
        for i in range(1, STEPS + 1):
            now = BASE + dt.timedelta(minutes=i)
            for plan in plans:
                engine.act(plan, CompleteStep(actor="owner", step=f"s{i}"), now=now)
                commands += 1
        elapsed = time.perf_counter() - started
        state, _ = engine.point_state(plans[0])
        assert state.completed_at is not None, state
        return {"commands": commands, "seconds": elapsed}
    finally:
        db.dispose()


def spiff_round(python: Path, tmp: Path, name: str, mode: str) -> dict[str, float]:
    out = subprocess.run(
        [str(python), str(WORKER), str(tmp / f"{name}.db"), str(POINTS), mode],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def rate(result: dict[str, float]) -> float:
    return result["commands"] / result["seconds"]


def run() -> dict[str, Any]:
    python = spiff_python()
    rates: dict[str, list[float]] = {"spiff": [], "spiff_reload": [], "council": []}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        definitions = write_definitions(tmp / "defs")
        with progress("spiff: warm-up"):
            council_round(tmp, write_definitions(tmp / "warm", 20), "warm-up")
        for r in range(ROUNDS):
            with progress(f"spiff: round {r + 1}, SpiffWorkflow"):
                rates["spiff"].append(rate(spiff_round(python, tmp, f"spiff-{r}", "memory")))
                rates["spiff_reload"].append(
                    rate(spiff_round(python, tmp, f"reload-{r}", "reload"))
                )
            with progress(f"spiff: round {r + 1}, council"):
                rates["council"].append(rate(council_round(tmp, definitions, f"council-{r}")))
    results: dict[str, Any] = {
        "points": POINTS,
        "commands": POINTS * (STEPS + 1),
        "rounds": {k: [round(v, 1) for v in vs] for k, vs in rates.items()},
    }
    for key, values in rates.items():
        results[f"{key}_per_s"] = round(statistics.median(values), 1)
    results["ratio"] = round(results["council_per_s"] / results["spiff_per_s"], 3)
    results["ratio_to_reload"] = round(results["council_per_s"] / results["spiff_reload_per_s"], 3)
    if results["ratio"] < TARGET:
        results["failed"] = f"council at {results['ratio']}x SpiffWorkflow (target {TARGET}x)"
    return results


def main() -> dict[str, Any]:
    results = run()
    print(
        f"spiff: {POINTS} points x (start + {STEPS} steps), a commit per command, SQLite WAL "
        "+ synchronous=NORMAL"
    )
    print(f"  {'':<34} {'commands/s':>10}")
    print(f"  {'SpiffWorkflow 3.2.0 (in memory)':<34} {results['spiff_per_s']:>10}")
    print(f"  {'SpiffWorkflow 3.2.0 (deserialized)':<34} {results['spiff_reload_per_s']:>10}")
    print(f"  {'council engine':<34} {results['council_per_s']:>10}")
    print(
        f"  ratio council / Spiff: {results['ratio']} (target >= {TARGET}); "
        f"to the deserializing Spiff: {results['ratio_to_reload']}"
    )
    return results
