"""Start-up benchmark: ``council --help`` against ``python -c "import click"``.

Both run as fresh processes of the project's Python, RUNS times each, alternating,
after one unmeasured run of each (so the file cache is warm for both); the medians are
compared. The click import is the floor: the CLI is a click group, and --help should
import little more than click (the commands import what they need when they run).
Target: under 2x.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.progress import progress

ROOT = Path(__file__).resolve().parent.parent
RUNS = 15


def commands() -> dict[str, list[str]]:
    script = Path(sys.executable).parent / "council"
    council = [str(script)] if script.exists() else [sys.executable, "-c", "import cli; cli.main()"]
    return {
        "council --help": [*council, "--help"],
        'python -c "import click"': [sys.executable, "-c", "import click"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }


def timed(command: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - started


def run() -> dict[str, object]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    runs: dict[str, list[float]] = {name: [] for name in commands()}
    with progress("startup", RUNS * len(runs)) as bar:
        for command in commands().values():
            timed(command, env)
        for _ in range(RUNS):
            for name, command in commands().items():
                runs[name].append(timed(command, env))
                bar.advance()
    results: dict[str, object] = {"runs": RUNS}
    for name, times in runs.items():
        results[name] = {
            "median_s": round(statistics.median(times), 4),
            "min_s": round(min(times), 4),
        }
    council, click = (statistics.median(runs[k]) for k in list(runs)[:2])
    results["ratio"] = round(council / click, 2)
    return results


def main() -> dict[str, object]:
    results = run()
    print(f"startup: median of {RUNS} fresh processes each (target ratio under 2)")
    print(f"  {'command':<26} {'median s':>9} {'min s':>7}")
    for name in commands():
        r = results[name]
        assert isinstance(r, dict)
        print(f"  {name:<26} {r['median_s']:>9} {r['min_s']:>7}")
    print(f"  ratio council --help / import click: {results['ratio']}")
    return results
