"""Every error council raises on purpose, as one tree under :class:`CouncilError`.

The CLI maps each class to a one-line message and a stable exit code
(:data:`EXIT_CODES`); a user never sees a traceback for their own mistake.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

#: Exit code for success.
EXIT_OK = 0
#: Invalid input: a definition, a note, a date.
EXIT_INVALID = 1
#: Bad command-line usage (click's own code).
EXIT_USAGE = 2
#: An assignment, point, step, person or event that does not exist.
EXIT_NOT_FOUND = 3
#: A command the state does not allow, or a lost race on the same point.
EXIT_CONFLICT = 4
#: A server that cannot be reached: database, broker, SMTP.
EXIT_UNREACHABLE = 5
#: `council doctor` found a problem that is not an unreachable server.
EXIT_UNHEALTHY = 6
#: The database stayed locked by another writer (SQLite) or a lock timed out: nothing was
#: written, and the same command can simply be run again.
EXIT_BUSY = 7


class CouncilError(Exception):
    """Root of every error council raises on purpose."""

    exit_code = EXIT_INVALID


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a definition file, with where it is."""

    path: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.column}: {self.message}"


class DefinitionError(CouncilError):
    """One or more definition files are invalid; carries every problem found."""

    exit_code = EXIT_INVALID

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = tuple(problems)
        super().__init__("\n".join(str(p) for p in self.problems))


class InvalidInput(CouncilError):
    """A value given by a user is not acceptable (a date, a note, a reason)."""

    exit_code = EXIT_INVALID


class PersonalDataRefused(InvalidInput):
    """Free text contained a Swedish personal identity number."""

    def __init__(self, field: str) -> None:
        self.field = field
        super().__init__(
            f"{field} contains what looks like a personal identity number; council tracks "
            "work, never individuals' cases: remove it and try again"
        )


class NotFound(CouncilError):
    """Something named by the user does not exist."""

    exit_code = EXIT_NOT_FOUND

    def __init__(self, kind: str, name: str, hint: str = "") -> None:
        self.kind = kind
        self.name = name
        message = f"no {kind} {name!r}"
        super().__init__(f"{message}: {hint}" if hint else message)


class AmbiguousName(NotFound):
    """A prefix matches more than one thing."""

    def __init__(self, kind: str, name: str, candidates: Sequence[str]) -> None:
        self.candidates = tuple(candidates)
        shown = ", ".join(self.candidates[:5])
        CouncilError.__init__(self, f"{kind} {name!r} is ambiguous: it matches {shown}")
        self.kind = kind
        self.name = name


class TransitionNotAllowed(CouncilError):
    """A command the current state of a step or point does not allow."""

    exit_code = EXIT_CONFLICT

    def __init__(
        self, *, command: str, target: str, state: str, allowed: Sequence[str], reason: str = ""
    ) -> None:
        self.command = command
        self.target = target
        self.state = state
        self.allowed = tuple(allowed)
        allowed_text = ", ".join(self.allowed) if self.allowed else "none"
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"cannot {command} {target}: it is {state}{why}; allowed now: {allowed_text}"
        )


class NotPermitted(CouncilError):
    """A person asked for what only others may do on that point or step."""

    exit_code = EXIT_CONFLICT

    def __init__(self, *, person: str, verb: str, target: str, who: str) -> None:
        self.person = person
        self.verb = verb
        self.target = target
        self.who = who
        super().__init__(f"{person} may not {verb} {target}: only {who} may")


class ConflictError(CouncilError):
    """Another command changed the same point first (optimistic locking)."""

    exit_code = EXIT_CONFLICT

    def __init__(self, point: str) -> None:
        self.point = point
        super().__init__(f"{point} was changed by someone else at the same time; run it again")


class DefinitionDrift(CouncilError):
    """A running assignment was started from a different version of its definition."""

    exit_code = EXIT_CONFLICT


class StaleDefinitions(CouncilError):
    """A worker's definitions are older than the version the database has in force (an
    amendment was just accepted): it reloads them and tries again."""

    exit_code = EXIT_CONFLICT


class NotInitialised(CouncilError):
    """The database has no council schema yet (or an older one)."""

    exit_code = EXIT_UNREACHABLE


class DeliveryError(CouncilError):
    """A message could not be handed over; ``transient`` says whether to try again."""

    exit_code = EXIT_UNREACHABLE

    def __init__(self, message: str, *, transient: bool) -> None:
        self.transient = transient
        super().__init__(message)


class Unreachable(CouncilError):
    """A server (database, broker, SMTP) cannot be reached."""

    exit_code = EXIT_UNREACHABLE


class RefusalReason(StrEnum):
    """Why a received reply changed nothing: a stable code, logged and stored with it."""

    # the message itself
    AUTOMATIC = "automatic"  # sent by a machine: ignored, never answered
    TOO_LARGE = "too-large"
    MALFORMED = "malformed"
    # who sent it, and to which reply address
    UNKNOWN_SENDER = "unknown-sender"
    NO_TOKEN = "no-token"  # noqa: S105 - a reason code, not a secret
    BAD_TOKEN = "bad-token"  # noqa: S105
    EXPIRED = "expired"
    NOT_OWNER = "not-owner"
    # what it says
    EMPTY = "empty"
    NOT_UNDERSTOOD = "not-understood"
    TOO_MANY = "too-many"
    TOO_LONG = "too-long"
    DELAY_NEEDS_DAYS = "delay-needs-days"
    DELEGATE_NEEDS_PERSON = "delegate-needs-person"
    NOTE_NEEDS_TEXT = "note-needs-text"
    NOT_DELEGABLE = "not-delegable"
    UNKNOWN_PERSON = "unknown-person"
    # what the engine said
    NOT_ALLOWED = "not-allowed"


class ReplyRefused(CouncilError):
    """Nothing was done with a received reply, for ``reason``; ``detail`` says more."""

    exit_code = EXIT_INVALID

    def __init__(self, reason: RefusalReason, detail: str | None = None) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.detail = detail
