"""`python -m bench`: run the benchmarks, print tables, write bench/results.json."""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

from bench import report, sweep


def main() -> int:
    results = {
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
        "report": report.main(),
        "sweep": sweep.main(),
    }
    out = Path(__file__).parent / "results.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
