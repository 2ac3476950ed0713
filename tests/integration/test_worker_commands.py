"""`council worker` and `council beat` check their settings before Celery starts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SECRET_TOO_SHORT = "tooshort-S3CR3T"


def _run(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    return subprocess.run(
        [str(Path(sys.executable).parent / "council"), *args],
        env={**clean, "COUNCIL_BROKER_URL": "redis://127.0.0.1:1/0", **env},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_invalid_settings_are_one_line_and_never_show_the_secret(
    tmp_path: Path, command: str
) -> None:
    done = _run(tmp_path, command, COUNCIL_REPLY_SECRET=SECRET_TOO_SHORT)
    assert done.returncode == 1
    assert done.stderr.startswith("error: invalid settings: reply_secret (COUNCIL_REPLY_SECRET)")
    assert len(done.stderr.strip().splitlines()) == 1
    assert SECRET_TOO_SHORT not in done.stderr + done.stdout


@pytest.mark.parametrize("command", ["worker", "beat"])
def test_a_var_dir_that_cannot_be_made_is_one_line(tmp_path: Path, command: str) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    done = _run(tmp_path, command, COUNCIL_VAR_DIR=str(blocker / "var"))
    assert done.returncode == 1
    assert done.stderr.startswith(f"error: cannot create var_dir {blocker / 'var'}")
    assert "Traceback" not in done.stderr


def test_an_empty_variable_counts_as_unset(tmp_path: Path) -> None:
    """COUNCIL_X= (as a compose file's ${X:-} gives) is the default, not an invalid value."""
    done = _run(tmp_path, "config", "show", "--json", COUNCIL_REPLY_SECRET="", COUNCIL_SMTP_PORT="")
    assert done.returncode == 0, done.stderr
    settings = json.loads(done.stdout)["settings"]
    assert settings["smtp_port"]["value"] == 587
    assert settings["smtp_port"]["source"] == "default"
    assert settings["reply_secret"]["value"] is None
