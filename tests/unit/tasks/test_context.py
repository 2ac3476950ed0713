"""A worker's context reloads changed definitions, looking at most once a second."""

from __future__ import annotations

import shutil
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa

from tasks import context as context_module
from tasks.context import Context
from tests.support import DEFINITIONS
from workflow.settings import Settings


def test_changed_definitions_are_seen_after_the_recheck_interval(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = tmp_path / "definitions"
    shutil.copytree(DEFINITIONS, root)
    clock = [1000.0]
    monkeypatch.setattr(context_module.time, "monotonic", lambda: clock[0])
    ctx = Context(
        settings=Settings(definitions=root, var_dir=tmp_path),
        db=sa.create_engine("sqlite://"),
        tz=ZoneInfo("Europe/Stockholm"),
    )
    first = ctx.definitions()
    people = root / "people.yaml"
    people.write_text(people.read_text().replace("name: Amir Hassan", "name: Amir H. Hassan"))

    clock[0] += context_module.RECHECK_SECONDS / 2
    assert ctx.definitions() is first  # within the interval: not even looked at

    clock[0] += context_module.RECHECK_SECONDS
    reloaded = ctx.definitions()
    assert reloaded is not first
    assert reloaded.directory.people["amir.hassan"].name == "Amir H. Hassan"
    clock[0] += context_module.RECHECK_SECONDS * 2
    assert ctx.definitions() is reloaded  # unchanged files: the same object
