"""`python -m bench [NAME ...]`: run the benchmarks, print tables, write bench/results.json.

Without names, every benchmark runs and results.json is written anew; with names
(``python -m bench events``), only those run and their entries in results.json are
replaced, the others kept. A benchmark whose result says ``failed`` (a target it must
not miss) makes the exit status 1, after results.json is written.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import (
    events,
    heal,
    history,
    occurrences,
    register,
    report,
    site,
    spiff,
    startup,
    sweep,
    validate,
)

BENCHMARKS: dict[str, Callable[[], Any]] = {
    "report": report.main,
    "register": register.main,
    "site": site.main,
    "sweep": sweep.main,
    "occurrences": occurrences.main,
    "events": events.main,
    "startup": startup.main,
    "validate": validate.main,
    "heal": heal.main,
    "spiff": spiff.main,
    "history": history.main,
}
RESULTS = Path(__file__).parent / "results.json"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "names", nargs="*", metavar="NAME", help=f"of {', '.join(BENCHMARKS)} (default: all)"
    )
    names = parser.parse_args(argv).names or list(BENCHMARKS)
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    results: dict[str, Any] = {}
    if len(names) < len(BENCHMARKS) and RESULTS.exists():
        results = json.loads(RESULTS.read_text())
    results["machine"] = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        # Other work on the machine skews every figure; this shows if there was any.
        "load_average_before": [round(x, 2) for x in os.getloadavg()],
    }
    started = time.perf_counter()
    for i, name in enumerate(names):
        if i:
            print()
        t0 = time.perf_counter()
        results[name] = BENCHMARKS[name]()
        results[name]["wall_s"] = round(time.perf_counter() - t0, 1)
        sys.stdout.flush()
    total = round(time.perf_counter() - started, 1)
    if len(names) == len(BENCHMARKS):
        results["total_wall_s"] = total
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n{', '.join(names)}: {total} s; wrote {RESULTS}")
    failed = [f"{name}: {results[name]['failed']}" for name in names if results[name].get("failed")]
    for line in failed:
        print(f"FAILED {line}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
