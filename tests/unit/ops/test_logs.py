"""workflow.ops.logs: JSON lines when stderr is piped, console lines on a terminal; redaction.

Each case runs a fresh Python process (logging is configured once per process),
with stderr on a pipe or on the slave side of a real pseudo-terminal.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support import DEFINITIONS, ROOT

#: Logs a native structlog line, a standard-library line (as Celery does), a
#: Python warning and an exception, with values that must never be printed.
PROBE = textwrap.dedent(
    """
    import logging, warnings
    from workflow.ops.logs import configure, get_logger
    configure()
    log = get_logger("probe")
    log.info("probe.native", answer=42, note="NOTE-TEXT-1", password="PW-TEXT-2",
             url="redis://user:PW-TEXT-3@host:6379/0")
    logging.getLogger("celery.probe").info("foreign %s", "record",
                                           extra={"data": {"id": "t-1", "name": "council.x"}})
    warnings.warn("careful now", UserWarning)
    try:
        raise RuntimeError("(psycopg) boom\\n[SQL: INSERT]\\n[parameters: ('NOTE-TEXT-4',)]")
    except RuntimeError:
        log.exception("probe.failed")
    """
)
SECRETS = ("NOTE-TEXT-1", "PW-TEXT-2", "PW-TEXT-3", "NOTE-TEXT-4")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COUNCIL_")}
    return {**env, "TERM": "xterm-256color", "COLUMNS": "120"}


def _on_a_terminal(code: str) -> tuple[bytes, bytes]:
    """Run ``code`` with stderr on a pseudo-terminal; return (stdout, what the terminal got)."""
    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
    )  # fmt: skip
    os.close(slave)
    terminal = bytearray()
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        terminal += chunk
    os.close(master)
    assert process.stdout is not None
    with process.stdout:
        stdout = process.stdout.read()
    assert process.wait(timeout=60) == 0, bytes(terminal).decode(errors="replace")
    return stdout, bytes(terminal)


def _piped(code: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=_env(), capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done


def test_piped_every_line_is_json_with_level_time_logger_and_pid() -> None:
    """Piped: native, standard-library and warning records are one JSON object per line."""
    done = _piped(PROBE)
    assert done.stdout == ""
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [line["event"] for line in lines][:2] == ["probe.native", "foreign record"]
    for line in lines:
        assert line["level"] in ("info", "warning", "error")
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z", line["timestamp"])
        assert isinstance(line["pid"], int)
        assert line["logger"]
    native, foreign, warned, failed = lines
    assert native["answer"] == 42
    assert native["note"] == native["password"] == "[redacted]"
    assert native["url"] == "redis://user:***@host:6379/0"
    assert (foreign["logger"], foreign["task_id"], foreign["task"]) == (
        "celery.probe", "t-1", "council.x"
    )  # fmt: skip
    assert warned["logger"] == "py.warnings"
    assert warned["level"] == "warning"
    assert "careful now" in warned["event"]
    assert failed["level"] == "error"
    assert failed["exception"].startswith("Traceback (most recent call last):")
    assert "[parameters: hidden]" in failed["exception"]
    for secret in SECRETS:
        assert secret not in done.stderr


def test_configured_when_needed_the_first_warning_is_the_same_line() -> None:
    """`configure_when_needed` (what a command on the database asks for) imports no
    structlog until a record comes; that record and the ones after it are the same JSON
    lines `configure` gives, each once, and the level holds."""
    code = textwrap.dedent(
        """
        import logging, sys, warnings
        from workflow.ops.logs import configure_when_needed
        configure_when_needed(level="WARNING")
        configure_when_needed(level="DEBUG")
        print("structlog" in sys.modules)
        logging.getLogger("sqlalchemy.probe").info("hidden")
        warnings.warn("careful now", UserWarning)
        logging.getLogger("kombu.probe").warning("url redis://u:PW-TEXT-3@h/0")
        from workflow.ops.logs import get_logger
        get_logger("probe").warning("probe.native", note="NOTE-TEXT-1")
        print(len(logging.getLogger().handlers))
        """
    )
    done = _piped(code)
    assert done.stdout.split() == ["False", "1"]
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert [(line["logger"], line["level"]) for line in lines] == [
        ("py.warnings", "warning"), ("kombu.probe", "warning"), ("probe", "warning"),
    ]  # fmt: skip
    assert "careful now" in lines[0]["event"]
    assert lines[1]["event"] == "url redis://u:***@h/0"
    assert lines[2]["note"] == "[redacted]"


def test_a_logger_asked_for_configures_at_once() -> None:
    code = textwrap.dedent(
        """
        from workflow.ops.logs import configure_when_needed, get_logger
        configure_when_needed(level="INFO")
        get_logger("probe").info("probe.native", answer=42)
        """
    )
    done = _piped(code)
    assert done.stdout == ""
    assert json.loads(done.stderr)["answer"] == 42


def test_on_a_terminal_lines_are_for_people() -> None:
    """On a terminal: the console renderer (aligned, coloured key=value), no JSON."""
    stdout, terminal = _on_a_terminal(PROBE)
    assert stdout == b""
    text = ANSI.sub(b"", terminal).decode()  # drop colours to read the words
    assert ANSI.search(terminal), "a terminal gets colour"
    assert "probe.native" in text
    assert "answer=42" in text
    assert "[info" in text
    assert "foreign record" in text
    assert "careful now" in text
    assert "Traceback (most recent call last):" in text
    assert not any(line.lstrip().startswith("{") for line in text.splitlines())
    for secret in SECRETS:
        assert secret not in text


def test_configured_once_per_process() -> None:
    """A second configure (Celery's setup_logging after celeryd_init) changes nothing."""
    code = textwrap.dedent(
        """
        import logging
        from workflow.ops.logs import configure, get_logger
        configure(level="WARNING")
        configure(level="DEBUG", json=False)
        get_logger("once").info("hidden")
        get_logger("once").warning("shown")
        print(len(logging.getLogger().handlers))
        """
    )
    done = _piped(code)
    assert done.stdout.strip() == "1"
    assert [json.loads(line)["event"] for line in done.stderr.splitlines()] == ["shown"]


def test_the_cli_logs_warnings_to_stderr_only(tmp_path: Path) -> None:
    """A command that reaches the database configures logging: warnings on stderr, one line."""
    code = textwrap.dedent(
        """
        import sys
        sys.argv = ["council", "events"]
        from commands.base import App
        app = App(debug=False)
        app.database(create=True)
        from workflow.ops.logs import get_logger
        get_logger("cli").info("not.shown")
        get_logger("cli").warning("shown.once", note="NOTE-TEXT-5")
        """
    )
    env = {
        **_env(),
        "COUNCIL_DATABASE_URL": f"sqlite:///{tmp_path / 'council.db'}",
        "COUNCIL_DEFINITIONS": str(DEFINITIONS),
        "COUNCIL_VAR_DIR": str(tmp_path / "var"),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["note"]) == (
        "shown.once", "warning", "[redacted]"
    )  # fmt: skip


def test_the_pools_own_logger_is_json_too() -> None:
    """billiard (Celery's pool) logs a pool process that died through the
    "multiprocessing" logger, which does not propagate: that line is JSON as well, not
    the loose text of logging's last resort."""
    code = textwrap.dedent(
        """
        from billiard import util
        from workflow.ops.logs import configure
        configure()
        util.get_logger()  # as the pool does: propagation off
        util.error("Process %r pid:%r exited with %r", "ForkPoolWorker-1", 7, "signal 15")
        """
    )
    done = _piped(code)
    (line,) = [json.loads(line) for line in done.stderr.splitlines()]
    assert line["event"] == "Process 'ForkPoolWorker-1' pid:7 exited with 'signal 15'"
    assert (line["logger"], line["level"]) == ("multiprocessing", "error")
