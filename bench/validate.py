"""Validate benchmark: ``council validate`` over 500, 1,000 and 2,000 assignment files.

The repository's people, bodies, occasions and workflows are copied into a temporary
directory, with N assignment files made from the three seed assignments (each its own id
and reference, so every cross-file rule runs as for real files). ``council validate DIR``
runs as a fresh process of the project's Python, with an empty var dir of its own (so no
cache of checked definitions helps), RUNS times per size; the median is kept.
Target: 2,000 files under 10 s, and linear (the 2,000 case within 1.3x of four times the
500 case); ``failed`` when either is missed.
"""

from __future__ import annotations

import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.progress import progress

ROOT = Path(__file__).resolve().parent.parent
SIZES = (500, 1000, 2000)
RUNS = 3
TARGET_S = 10.0
LINEAR = 1.3


def write_definitions(root: Path, count: int) -> Path:
    """The seed's shared files and ``count`` assignments made from the seed's."""
    seed = ROOT / "definitions"
    shutil.copytree(seed, root, ignore=shutil.ignore_patterns("assignments"))
    (root / "assignments").mkdir()
    templates = [p.read_text() for p in sorted((seed / "assignments").glob("*.yaml"))]
    for n in range(count):
        text = templates[n % len(templates)]
        text = re.sub(r"^id: .*$", f"id: bench-{n:05d}", text, count=1, flags=re.M)
        text = re.sub(r"^reference: .*$", f"reference: KS 2024/{n:05d}", text, count=1, flags=re.M)
        (root / "assignments" / f"bench-{n:05d}.yaml").write_text(text)
    return root


def council() -> list[str]:
    """council of this tree (PYTHONPATH is set to it): the venv's console script may be an
    editable install of another checkout."""
    return [sys.executable, "-c", "import cli; cli.main()"]


def tree_env(env: dict[str, str]) -> dict[str, str]:
    return {**env, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


def timed(definitions: Path, var: Path) -> float:
    env = tree_env({k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")})
    env["COUNCIL_VAR_DIR"] = str(var)
    shutil.rmtree(var, ignore_errors=True)
    started = time.perf_counter()
    done = subprocess.run(
        [*council(), "validate", str(definitions)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"council validate failed: {done.stderr.strip()[:500]}")
    return elapsed


def run() -> dict[str, object]:
    results: dict[str, object] = {"runs": RUNS, "sizes": list(SIZES)}
    medians: dict[int, float] = {}
    with (
        tempfile.TemporaryDirectory(prefix="council-bench-validate-") as tmp,
        progress("validate", RUNS * len(SIZES)) as bar,
    ):
        for size in SIZES:
            definitions = write_definitions(Path(tmp) / f"defs-{size}", size)
            times = []
            for _ in range(RUNS):
                times.append(timed(definitions, Path(tmp) / "var"))
                bar.advance()
            medians[size] = statistics.median(times)
            results[str(size)] = {
                "median_s": round(medians[size], 3),
                "min_s": round(min(times), 3),
                "per_file_ms": round(1000 * medians[size] / size, 2),
            }
    largest, smallest = SIZES[-1], SIZES[0]
    ratio = medians[largest] / (medians[smallest] * largest / smallest)
    results["ratio"] = round(ratio, 2)
    failed = []
    if medians[largest] > TARGET_S:
        failed.append(f"{largest} files took {medians[largest]:.1f} s (target {TARGET_S:g})")
    if ratio > LINEAR:
        failed.append(f"not linear: ratio {ratio:.2f} (over {LINEAR})")
    if failed:
        results["failed"] = "; ".join(failed)
    return results


def main() -> dict[str, object]:
    results = run()
    print(f"validate: `council validate DIR`, median of {RUNS} fresh processes per size")
    print(f"  {'files':>6} {'median s':>9} {'min s':>7} {'ms/file':>8}")
    for size in SIZES:
        r = results[str(size)]
        assert isinstance(r, dict)
        print(f"  {size:>6} {r['median_s']:>9} {r['min_s']:>7} {r['per_file_ms']:>8}")
    print(
        f"  {SIZES[-1]} files: {results[str(SIZES[-1])]['median_s']} s "  # type: ignore[index]
        f"(target under {TARGET_S:g} s)"
    )
    print(
        f"  ratio {SIZES[-1]} / ({SIZES[-1] // SIZES[0]} x {SIZES[0]}): {results['ratio']} "
        f"(target within {LINEAR})"
    )
    return results
