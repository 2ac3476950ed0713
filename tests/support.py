"""Helpers shared by tests: paths and the rule for servers that are missing.

A test that needs a server (PostgreSQL, Redis, SMTP) and cannot reach it is
skipped on a developer's machine but fails in CI (``CI=true``), so CI can never
be green by skipping.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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
