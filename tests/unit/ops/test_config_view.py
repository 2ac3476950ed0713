"""`council config show`: every setting, where it came from, and never a secret.

Secrets come from the environment and from a council.toml in a temporary
working directory; none may appear anywhere in the output (table, JSON,
errors, --debug tracebacks), only ``***`` in their place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from cli import main
from tests.support import ROOT
from workflow.settings import Settings

SMTP_PASSWORD = "Smtp-Secret-4711-never"
DB_PASSWORD = "Db-Secret-0815-never"
BROKER_PASSWORD = "Broker-Secret-1234-never"
TOML_SMTP_PASSWORD = "Toml-Smtp-Secret-5555-never"
TOML_DB_PASSWORD = "Toml-Db-Secret-6666-never"
SECRETS = (SMTP_PASSWORD, DB_PASSWORD, BROKER_PASSWORD, TOML_SMTP_PASSWORD, TOML_DB_PASSWORD)


@pytest.fixture(autouse=True)
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty working directory, where a test may write council.toml."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def show(*args: str, **env: str | None) -> Result:
    """`council [args] config show` with only the COUNCIL_* variables given."""
    cleared: dict[str, str | None] = {k: None for k in os.environ if k.startswith("COUNCIL_")}
    argv = [a for a in args if a == "--debug"] + ["config", "show"]
    argv += [a for a in args if a != "--debug"]
    result = CliRunner().invoke(main, argv, env={**cleared, **env})
    for secret in SECRETS:
        assert secret not in result.output, f"a secret was printed:\n{result.output}"
        if result.exception is not None:
            assert secret not in repr(result.exception)
    return result


def settings_json(**env: str | None) -> dict[str, Any]:
    result = show("--json", **env)
    assert result.exit_code == 0, result.output
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def test_every_setting_is_listed_with_its_default() -> None:
    """With nothing configured, every Settings field is shown, each from `default`."""
    data = settings_json()
    assert list(data["settings"]) == list(Settings.model_fields)
    assert data["council_toml"] is None
    assert {row["source"] for row in data["settings"].values()} == {"default"}
    rows = data["settings"]
    assert rows["smtp_port"]["value"] == 587
    assert rows["timezone"]["value"] == "Europe/Stockholm"
    assert rows["database_url"] == {
        "value": None,
        "effective": "sqlite:///var/council.db",
        "source": "default",
        "env": "COUNCIL_DATABASE_URL",
        "secret": False,
    }
    assert rows["smtp_password"]["value"] is None
    assert rows["smtp_password"]["secret"] is True
    assert rows["mail_domain"]["effective"] == "kommun.example"
    assert rows["broker_url"]["effective"].startswith("redis+socket://")
    table = show()
    assert table.exit_code == 0
    names = [line.split()[0] for line in table.stdout.splitlines()[2:]]
    assert names == list(Settings.model_fields)


def test_secrets_from_the_environment_are_masked() -> None:
    """The SMTP password and the passwords in database and broker URLs print as ***."""
    env = {
        "COUNCIL_SMTP_PASSWORD": SMTP_PASSWORD,
        "COUNCIL_SMTP_USERNAME": "council",
        "COUNCIL_DATABASE_URL": f"postgresql+psycopg://council:{DB_PASSWORD}@db:5432/council",
        "COUNCIL_BROKER_URL": f"redis://:{BROKER_PASSWORD}@redis:6379/0",
        "COUNCIL_TIMEZONE": "UTC",
    }
    rows = settings_json(**env)["settings"]
    assert rows["smtp_password"]["value"] == "***"
    assert rows["smtp_password"]["source"] == "environment"
    assert rows["database_url"]["value"] == "postgresql+psycopg://council:***@db:5432/council"
    assert rows["broker_url"]["value"] == "redis://:***@redis:6379/0"
    assert rows["smtp_username"]["value"] == "council"
    assert rows["timezone"] == {
        "value": "UTC",
        "effective": "UTC",
        "source": "environment",
        "env": "COUNCIL_TIMEZONE",
        "secret": False,
    }
    table = show(**env)
    assert table.exit_code == 0
    line = next(x for x in table.stdout.splitlines() if x.startswith("smtp_password "))
    assert line.split() == ["smtp_password", "***", "environment", "(COUNCIL_SMTP_PASSWORD)"]
    assert "postgresql+psycopg://council:***@db:5432/council" in table.stdout
    debug = show("--debug", **env)
    assert debug.exit_code == 0


def test_secrets_from_council_toml_are_masked(workdir: Path) -> None:
    """Values from council.toml say so; their secrets print as *** too; env wins over toml."""
    (workdir / "council.toml").write_text(
        f'smtp_password = "{TOML_SMTP_PASSWORD}"\n'
        f'database_url = "postgresql://council:{TOML_DB_PASSWORD}@db/council?sslmode=require"\n'
        'extra_days_off = ["2025-05-02"]\n'
        'timezone = "UTC"\n',
        encoding="utf-8",
    )
    data = settings_json(COUNCIL_TIMEZONE="Europe/Stockholm")
    assert data["council_toml"] == str(workdir / "council.toml")
    rows = data["settings"]
    assert rows["smtp_password"]["value"] == "***"
    assert rows["smtp_password"]["source"] == "council.toml"
    assert rows["database_url"]["value"] == "postgresql://council:***@db/council?sslmode=require"
    assert rows["extra_days_off"]["value"] == ["2025-05-02"]
    assert rows["extra_days_off"]["source"] == "council.toml"
    assert rows["timezone"]["value"] == "Europe/Stockholm"
    assert rows["timezone"]["source"] == "environment"
    table = show()
    assert table.exit_code == 0
    assert f"then {workdir / 'council.toml'}" in table.stdout.splitlines()[0]


def test_password_in_a_url_query_is_masked() -> None:
    """A libpq-style `?password=` is a secret too."""
    url = f"postgresql+psycopg://db/council?user=council&password={DB_PASSWORD}"
    rows = settings_json(COUNCIL_DATABASE_URL=url)["settings"]
    assert rows["database_url"]["value"] == (
        "postgresql+psycopg://db/council?user=council&password=***"
    )


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_invalid_settings_are_one_line_without_the_value(workdir: Path, debug: bool) -> None:
    """A mistyped key holding a secret, or a bad value: one line, exit 1, never the value."""
    (workdir / "council.toml").write_text(
        f'smtp_pasword = "{TOML_SMTP_PASSWORD}"\n', encoding="utf-8"
    )
    args = ("--debug",) if debug else ()
    result = show(*args, COUNCIL_SMTP_PORT="not-a-port")
    assert result.exit_code == 1
    if not debug:
        assert result.stderr.splitlines() == [
            "error: invalid settings: smtp_port (COUNCIL_SMTP_PORT): Input should be a valid "
            "integer, unable to parse string as an integer; smtp_pasword (council.toml): "
            "unknown setting"
        ]
        assert "Traceback" not in result.output


def test_council_toml_that_is_not_toml_is_one_line(workdir: Path) -> None:
    (workdir / "council.toml").write_text('smtp_password = "unterminated\n', encoding="utf-8")
    result = show()
    assert result.exit_code == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("error: council.toml: ")
    assert "unterminated" not in line


def test_debug_traceback_of_invalid_settings_holds_no_secret(workdir: Path) -> None:
    """With --debug the real CLI prints a traceback: it names the setting, not its value."""
    (workdir / "council.toml").write_text(
        f'smtp_pasword = "{TOML_SMTP_PASSWORD}"\n', encoding="utf-8"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    done = subprocess.run(
        [sys.executable, "-c", "import cli; cli.main()", "--debug", "config", "show"],
        cwd=workdir,
        env={**env, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 1
    assert "Traceback (most recent call last)" in done.stderr
    assert "smtp_pasword (council.toml): unknown setting" in done.stderr
    assert TOML_SMTP_PASSWORD not in done.stdout + done.stderr


def test_a_secret_that_fails_validation_is_not_echoed() -> None:
    """pydantic's own message would quote a too-short reply_secret; the CLI's never does."""
    short = "Short-Secret-Never-Shown"
    result = show(COUNCIL_REPLY_SECRET=short)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "error: invalid settings: reply_secret (COUNCIL_REPLY_SECRET): Value should have at "
        "least 32 items after validation, not 24"
    ]
    assert short not in result.output
