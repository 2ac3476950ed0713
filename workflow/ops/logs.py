"""structlog, configured once per process.

JSON lines when stderr is not a terminal (workers in production), readable
console output on one. The standard library's logging (Celery's, kombu's) and
Python warnings go through the same processors, so every line has a level, an
ISO timestamp (UTC), the logger's name and the process id, and a traceback is
one field (``exception``), never loose lines. Context (task id, event id, assignment,
point, step) is bound with contextvars.

Never log a secret, a note or an e-mail body: log ids. As a second line of
defence, values under keys that name such things (``password``, ``body``,
``note``, ``text``...) are replaced by ``[redacted]``, passwords in URLs are
masked, and SQLAlchemy's ``[parameters: ...]`` (which may hold a note or a
payload) is cut from error messages.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from structlog.typing import EventDict, WrappedLogger

_configured = False
#: The level a command asked for with :func:`configure_when_needed`, until it is needed.
_pending: int | None = None

REDACTED = "[redacted]"
#: Keys whose values are never logged, wherever they appear (also nested, as in Celery's data).
SENSITIVE_KEYS = frozenset(
    {
        "password", "passwd", "secret", "token", "authorization", "api_key", "credentials",
        "body", "html", "text", "note", "notes", "content", "payload", "prompt", "message_body",
    }
)  # fmt: skip
_SENSITIVE_SUFFIXES = ("_password", "_secret", "_token", "_body")
#: ``scheme://user:password@host`` -> ``scheme://user:***@host``
_URL_PASSWORD = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:)[^\s@/]+@")
#: SQLAlchemy appends the statement's parameters (a note, a payload) to its errors.
_SQL_PARAMETERS = re.compile(r"\[parameters: [^\n]*")


def _sensitive(key: str) -> bool:
    lowered = key.lower()
    return lowered in SENSITIVE_KEYS or lowered.endswith(_SENSITIVE_SUFFIXES)


def scrub(text: str) -> str:
    """A string with URL passwords masked and SQL parameters cut."""
    if "://" in text:
        text = _URL_PASSWORD.sub(r"\1***@", text)
    if "[parameters: " in text:
        text = _SQL_PARAMETERS.sub("[parameters: hidden]", text)
    return text


def _clean(value: Any, depth: int = 0) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if depth > 4:
        return value
    if isinstance(value, Mapping):
        return {
            k: REDACTED if isinstance(k, str) and _sensitive(k) else _clean(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_clean(v, depth + 1) for v in value]
    return value


def redact(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A processor: drop what must never be logged (see the module's docstring)."""
    for key, value in event_dict.items():
        if key == "event":
            event_dict[key] = scrub(value) if isinstance(value, str) else value
        elif _sensitive(key):
            event_dict[key] = REDACTED
        else:
            event_dict[key] = _clean(value)
    return event_dict


def _celery_task(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Celery's own task records ("received", "succeeded") carry the task in ``data``."""
    data = event_dict.get("data")
    if isinstance(data, Mapping) and "id" in data and "task_id" not in event_dict:
        event_dict["task_id"] = data["id"]
        event_dict.setdefault("task", data.get("name"))
    return event_dict


def _process(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """The process id: a worker's pool children and its main process write to one stream."""
    event_dict["pid"] = os.getpid()
    return event_dict


def _warning_text(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """A captured warning ends with a newline; drop it (and trailing blanks)."""
    event = event_dict.get("event")
    if event_dict.get("logger") == "py.warnings" and isinstance(event, str):
        event_dict["event"] = event.rstrip()
    return event_dict


def _level(level: int | str | None) -> int:
    if level is None:
        return logging.INFO
    if isinstance(level, int):
        return level
    named = logging.getLevelName(level.upper())
    return named if isinstance(named, int) else logging.INFO


def configure(*, json: bool | None = None, level: int | str | None = logging.INFO) -> None:
    """Set up structlog and route the standard library's logging and warnings through it.

    Once per process: later calls change nothing (a worker's pool children inherit
    the configuration when they fork). ``json`` defaults to "stderr is not a terminal".
    """
    global _configured, _pending
    if _configured:
        return
    import structlog

    _configured = True
    _pending = None
    threshold = _level(level)
    use_json = not sys.stderr.isatty() if json is None else json
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _process,
    ]
    # The traceback becomes a string field before redaction, so it is scrubbed too;
    # on a terminal it is printed as is (no rich traceback: it would show local
    # variables, a password among them).
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.make_filtering_bound_logger(threshold),
        cache_logger_on_first_use=True,
    )
    handler = _StderrHandler()
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.ExtraAdder(), _celery_task, _warning_text],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    # A handler someone's basicConfig left would print the same record a second time.
    root.handlers[:] = [
        h
        for h in root.handlers
        if type(h) is not logging.StreamHandler and not isinstance(h, _Deferred)
    ]
    root.addHandler(handler)
    root.setLevel(threshold)
    # Celery's pool (billiard) logs through "multiprocessing" with propagation off: a pool
    # process that died ("Process 'ForkPoolWorker-1' pid:7 exited with 'signal 15
    # (SIGTERM)'", when a service manager signals every process of the worker) would
    # reach stderr as loose text through logging's last resort.
    logging.getLogger("multiprocessing").addHandler(handler)
    logging.captureWarnings(True)  # warnings.warn() becomes a log line, not loose text


class _StderrHandler(logging.Handler):
    """Writes to whatever ``sys.stderr`` is when a record is emitted, not when configured."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            stream = sys.stderr
            stream.write(self.format(record) + "\n")
            stream.flush()
        except Exception:
            self.handleError(record)


def configure_when_needed(*, level: int | str | None = logging.INFO) -> None:
    """:func:`configure`, done when the first record (or warning) comes, or a logger is
    asked for: importing structlog costs a command about 0.1 s, and most log nothing.
    Until then a stand-in handler on the root logger holds the place and the level."""
    global _pending
    if _configured or _pending is not None:
        return
    _pending = _level(level)
    root = logging.getLogger()
    root.addHandler(_Deferred(_pending))
    root.setLevel(_pending)
    logging.captureWarnings(True)


def settle() -> None:
    """Configure now what :func:`configure_when_needed` left for later (nothing if none):
    for code that reconfigures structlog itself and must not be overridden by the first
    record (tests capturing logs)."""
    if _pending is not None:
        configure(level=_pending)


class _Deferred(logging.Handler):
    """Configures structlog at the first record it sees, then hands it on."""

    def emit(self, record: logging.LogRecord) -> None:
        root = logging.getLogger()
        if _configured:  # configured meanwhile: the real handler had the record too
            if self in root.handlers:
                root.removeHandler(self)
            return
        configure(level=self.level)
        for handler in root.handlers:
            if isinstance(handler, _StderrHandler) and record.levelno >= handler.level:
                handler.handle(record)


def get_logger(name: str) -> Any:
    import structlog

    if _pending is not None:
        configure(level=_pending)
    return structlog.get_logger(name)
