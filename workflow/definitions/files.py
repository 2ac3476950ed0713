"""Which files the definitions are: cheap, so the cache can ask without the loader."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def discover(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their YAML files, in a stable order, each file once."""
    found: dict[Path, Path] = {}
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")):
                found.setdefault(file.resolve(), file)
        else:
            found.setdefault(path.resolve(), path)
    return list(found.values())
