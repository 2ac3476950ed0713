"""What a check says: one :class:`Result` per line of the doctor's table, and the exit code."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from typing import Any

from workflow.errors import EXIT_OK, EXIT_UNHEALTHY, EXIT_UNREACHABLE


class Status(StrEnum):
    OK = "ok"
    WARN = "warn"
    FAIL = "fail"
    SKIP = "skip"


@dataclass(frozen=True)
class Result:
    """One line of the doctor's table."""

    check: str
    status: Status
    detail: str
    fix: str = ""
    #: A failure that makes a server unusable: the doctor exits 5.
    unreachable: bool = False

    def as_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["status"] = self.status.value
        return data


def ok(check: str, detail: str) -> Result:
    return Result(check, Status.OK, detail)


def warn(check: str, detail: str, fix: str) -> Result:
    return Result(check, Status.WARN, detail, fix)


def fail(check: str, detail: str, fix: str, *, unreachable: bool = False) -> Result:
    return Result(check, Status.FAIL, detail, fix, unreachable)


def skip(check: str, detail: str) -> Result:
    return Result(check, Status.SKIP, detail)


def exit_code(results: Sequence[Result], *, strict: bool = False) -> int:
    """0 unless something failed: 5 for an unusable server, else 6 (warnings too when strict)."""
    if any(r.status is Status.FAIL and r.unreachable for r in results):
        return EXIT_UNREACHABLE
    bad = {Status.FAIL, Status.WARN} if strict else {Status.FAIL}
    return EXIT_UNHEALTHY if any(r.status in bad for r in results) else EXIT_OK


def first_line(exc: BaseException) -> str:
    """The first meaningful line of a driver's error, without SQLAlchemy's background link."""
    text = str(getattr(exc, "orig", None) or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0]
