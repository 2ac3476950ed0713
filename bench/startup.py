"""Start-up benchmark: what a command costs before and around its own work.

- ``council --help`` against ``python -c "import click"``: the CLI is a click group and
  its commands import what they need when they run. Target: under 2x.
- ``council status ASSIGNMENT`` and ``council complete ASSIGNMENT/1/analyse`` on a
  prepared SQLite database (the seed's definitions, its assignment started) against
  ``python -c "import sqlalchemy, pydantic, yaml, click"``, the libraries any command on
  the database needs. Target: within 1.5x. ``complete`` runs on a fresh copy of the
  prepared database each time (copied before the clock starts), so every run records
  the same event. The var dir is the temporary one, so the definitions' cache is used
  as a coordinator's would be: the unmeasured first run fills it.

All run as fresh processes of the project's Python, RUNS times each, alternating, after
one unmeasured run of each (so the file cache is warm for all); medians are compared.
``failed`` when a ratio misses its target.

Bytecode: an installed council has its modules compiled (pip compiles them, the Docker
image too), a development checkout under ``PYTHONDONTWRITEBYTECODE=1`` compiles every
module of council's at every start (about 0.15 s of a database command). The children
run as installed: without ``PYTHONDONTWRITEBYTECODE``, with ``PYTHONPYCACHEPREFIX`` in
the temporary directory (the unmeasured first runs write it; the tree gets no
``__pycache__``). ``COUNCIL_BENCH_NO_BYTECODE=1`` measures the checkout's way instead.
"""

from __future__ import annotations

import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.progress import progress

ROOT = Path(__file__).resolve().parent.parent
RUNS = int(os.environ.get("COUNCIL_BENCH_STARTUP_RUNS", "15"))
ASSIGNMENT = "kf-2022-hedersvald"
#: (command, baseline, target ratio)
TARGETS = (
    ("council --help", 'python -c "import click"', 2.0),
    ("council status", 'python -c "import sqlalchemy, pydantic, yaml, click"', 1.5),
    ("council complete", 'python -c "import sqlalchemy, pydantic, yaml, click"', 1.5),
)


def council() -> list[str]:
    """council of this tree (PYTHONPATH is set to it): the venv's console script may be an
    editable install of another checkout."""
    return [sys.executable, "-c", "import cli; cli.main()"]


def tree_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


def commands() -> dict[str, list[str]]:
    return {
        "council --help": [*council(), "--help"],
        'python -c "import click"': [sys.executable, "-c", "import click"],
        "council status": [*council(), "status", ASSIGNMENT, "--now", "2022-12-02T09:00"],
        "council complete": [
            *council(),
            "complete",
            f"{ASSIGNMENT}/1/analyse",
            "--as",
            "anders.berg",
            "--now",
            "2022-12-05T10:00",
        ],
        'python -c "import sqlalchemy, pydantic, yaml, click"': [
            sys.executable,
            "-c",
            "import sqlalchemy, pydantic, yaml, click",
        ],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }


def prepare(tmp: Path, env: dict[str, str]) -> Path:
    """A var dir with the seed's assignment started in SQLite; returns the database."""
    shutil.copytree(ROOT / "definitions", tmp / "definitions")
    env.update(
        COUNCIL_VAR_DIR=str(tmp / "var"),
        COUNCIL_DEFINITIONS=str(tmp / "definitions"),
        COUNCIL_ACTOR="sara.nilsson",
    )
    for args in (["db", "upgrade"], ["start", ASSIGNMENT, "--now", "2022-12-01T09:00"]):
        subprocess.run([*council(), *args], cwd=tmp, env=env, check=True, stdout=subprocess.DEVNULL)
    return tmp / "var" / "council.db"


def timed(command: list[str], cwd: Path, env: dict[str, str], before: Callable[[], None]) -> float:
    before()
    started = time.perf_counter()
    subprocess.run(command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def measure(env: dict[str, str]) -> dict[str, list[float]]:
    """Each command's times, RUNS of each, alternating, in a prepared var dir."""
    runs: dict[str, list[float]] = {name: [] for name in commands()}
    with tempfile.TemporaryDirectory(prefix="council-bench-startup-") as name:
        tmp = Path(name)
        database = prepare(tmp, env)
        prepared = tmp / "prepared.db"
        shutil.copyfile(database, prepared)

        def fresh_database() -> None:
            for suffix in ("-wal", "-shm"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            shutil.copyfile(prepared, database)

        before = {name: fresh_database if "complete" in name else _nothing for name in runs}
        with progress("startup", RUNS * len(runs)) as bar:
            for name, command in commands().items():
                timed(command, tmp, env, before[name])
            for _ in range(RUNS):
                for name, command in commands().items():
                    runs[name].append(timed(command, tmp, env, before[name]))
                    bar.advance()
    return runs


def _nothing() -> None:
    pass


def run() -> dict[str, object]:
    env = tree_env({k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")})
    bytecode = os.environ.get("COUNCIL_BENCH_NO_BYTECODE") != "1"
    with tempfile.TemporaryDirectory(prefix="council-bench-pycache-") as pycache:
        if bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = pycache
        else:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        runs = measure(env)
    results: dict[str, object] = {"runs": RUNS, "bytecode": bytecode}
    for name, times in runs.items():
        results[name] = {
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
        }
    ratios: dict[str, dict[str, object]] = {}
    failed = []
    for command, baseline, target in TARGETS:
        ratio = statistics.median(runs[command]) / statistics.median(runs[baseline])
        ratios[command] = {"baseline": baseline, "ratio": round(ratio, 2), "target": target}
        if ratio > target:
            failed.append(f"{command} {ratio:.2f}x (target {target:g}x)")
    results["ratios"] = ratios
    results["ratio"] = ratios["council --help"]["ratio"]  # as before this benchmark grew
    if failed:
        results["failed"] = "; ".join(failed)
    return results


def main() -> dict[str, object]:
    results = run()
    compiled = "with bytecode" if results["bytecode"] else "without bytecode"
    print(f"startup: median of {RUNS} fresh processes each ({compiled})")
    print(f"  {'command':<54} {'median s':>9} {'min s':>7}")
    for name in commands():
        r = results[name]
        assert isinstance(r, dict)
        print(f"  {name:<54} {r['median_s']:>9} {r['min_s']:>7}")
    ratios = results["ratios"]
    assert isinstance(ratios, dict)
    for command, r in ratios.items():
        print(f"  ratio {command} / {r['baseline']}: {r['ratio']} (target under {r['target']})")
    return results
