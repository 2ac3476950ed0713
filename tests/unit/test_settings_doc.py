"""docs/configuration.md documents every setting: its variable, type, default and meaning.

Adding a field to ``workflow.settings.Settings`` without a row in the docs (or
leaving a row for a field that is gone, or a default that changed) fails here.
"""

from __future__ import annotations

import enum
import json
import re
from pathlib import Path

import pytest

from tests.support import ROOT
from workflow.settings import Settings

DOC = ROOT / "docs" / "configuration.md"
_ROW = re.compile(r"^\|\s*`(?P<name>[a-z_]+)`\s*\|(?P<rest>.*)\|\s*$")


def documented() -> dict[str, list[str]]:
    """{setting: [environment, type, default, meaning]} from the doc's tables."""
    rows: dict[str, list[str]] = {}
    for line in DOC.read_text(encoding="utf-8").splitlines():
        match = _ROW.match(line)
        if match:
            cells = [cell.strip() for cell in match["rest"].split("|")]
            assert match["name"] not in rows, f"{match['name']} is documented twice"
            rows[match["name"]] = cells
    return rows


def test_every_setting_is_documented_and_nothing_else() -> None:
    """Each Settings field has a row; each row names a field that exists."""
    rows = documented()
    missing = [name for name in Settings.model_fields if name not in rows]
    assert missing == [], f"settings missing from docs/configuration.md: {missing}"
    stale = [name for name in rows if name not in Settings.model_fields]
    assert stale == [], f"docs/configuration.md documents settings that do not exist: {stale}"


@pytest.mark.parametrize("name", list(Settings.model_fields))
def test_row_has_variable_type_default_and_meaning(name: str) -> None:
    """A row: `COUNCIL_NAME`, a type, the default as the code has it, and a meaning."""
    row = documented().get(name)
    if row is None:
        pytest.fail(f"{name} is not documented in docs/configuration.md")
    assert len(row) == 4, f"{name}: expected environment | type | default | meaning, got {row}"
    env, kind, default, meaning = row
    assert env == f"`COUNCIL_{name.upper()}`"
    assert kind, f"{name}: no type"
    assert meaning, f"{name}: no meaning"
    assert _matches(Settings.model_fields[name], default), (
        f"{name}: documented default {default!r} is not the code's"
    )


def _matches(field: object, cell: str) -> bool:
    factory = getattr(field, "default_factory", None)
    if factory is not None:  # a list: written as JSON
        return f"`{json.dumps(factory(), default=str)}`" in cell
    value = getattr(field, "default", None)
    if value is None:
        return cell.startswith("none")
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool):
        return f"`{str(value).lower()}`" in cell
    if isinstance(value, int | float):
        numbers = re.findall(r"`(-?[\d.]+)`", cell)
        return bool(numbers) and float(numbers[0]) == float(value)
    if isinstance(value, Path):
        value = str(value)
    return f"`{value}`" in cell
