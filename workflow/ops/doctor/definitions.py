"""The doctor's look at the definitions: do they load, and what do they hold."""

from __future__ import annotations

from typing import TYPE_CHECKING

from workflow.ops.doctor.results import Result, fail, ok

if TYPE_CHECKING:
    from workflow.settings import Settings


def check_definitions(settings: Settings) -> list[Result]:
    from workflow.definitions.loader import check

    definitions, problems = check([settings.definitions])
    if definitions is None:
        first = str(problems[0]) if problems else "no definitions"
        return [
            fail(
                "definitions",
                f"{len(problems)} problem(s) in {settings.definitions}; first: {first}",
                "run `council validate` and correct the files it names",
            )
        ]
    return [ok("definitions", f"{settings.definitions}: {definitions.summary()}")]
