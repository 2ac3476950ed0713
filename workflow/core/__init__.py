"""The pure domain: what an assignment is, how its points move, when deadlines fire.

No I/O, no clock, no SQLAlchemy: ``now`` and the calendar are parameters, so every
rule is a function a test (or ``council simulate``) can call for any date.

May import: itself, :mod:`workflow.errors`, pydantic, holidays and the standard
library's pure modules. Imported by: every other package.
"""

__all__ = [
    # definitions as written, and resolved into plans
    "values",
    "specs",
    "plan",
    "calendar",
    "privacy",
    # what happens to a point
    "events",
    "state",
    "actions",
    "machine",
    # time
    "deadlines",
    "simulate",
    # a changed definition against running points
    "drift",
]
